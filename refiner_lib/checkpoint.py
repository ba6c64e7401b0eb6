"""Training checkpoints that a killed job resumes from.

Layout: `<dir>/step-000012/` (adapter weights as safetensors, optimizer and RNG
state, progress JSON) and `<dir>/latest.json` naming the newest complete one.
A step folder is renamed into place only once complete, and `latest.json` is
replaced atomically after it, so a kill at any moment leaves the previous
checkpoint usable. A checkpoint resumes a run only if its fingerprint (records,
settings, base weights, training code) matches: after a config edit the job
starts from step 0.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .jsonl import read_json, write_json
from .models import atomic_dir

LOG = logging.getLogger(__name__)
CODE = [Path(__file__).with_name("training.py"), Path(__file__)]


def _file_digest(path: Path, digest) -> None:
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 22), b""):
            digest.update(block)


def fingerprint(base_dir, records, validation_records, settings: dict) -> str:
    """What decides the weights: records, settings, base weights, training code."""
    digest = hashlib.sha256()
    identity = {"records": records, "validation": validation_records, "settings": settings}
    digest.update(json.dumps(identity, sort_keys=True, default=str).encode())
    for path in sorted(Path(base_dir).glob("*.safetensors")) + [Path(base_dir) / "config.json"] + CODE:
        if path.exists():
            _file_digest(path, digest)
    return digest.hexdigest()


def save(folder, fingerprint_value: str, model, optimizer, progress: dict) -> None:
    from peft import get_peft_model_state_dict

    folder = Path(folder)
    name = f"step-{progress['step']:06d}"
    with atomic_dir(folder / name) as staging:
        weights = {k: v.detach().contiguous() for k, v in get_peft_model_state_dict(model).items()}
        save_file(weights, staging / "adapter.safetensors")
        torch.save(optimizer.state_dict(), staging / "optimizer.pt")
        save_file({"torch_rng": torch.get_rng_state()}, staging / "rng.safetensors")
        write_json(staging / "progress.json", {**progress, "fingerprint": fingerprint_value})
    write_json(folder / "latest.json", {"checkpoint": name})
    for old in folder.glob("step-*"):
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    LOG.info("checkpoint saved at step %d", progress["step"])


def restore(folder, fingerprint_value: str, model, optimizer) -> dict | None:
    """The saved progress, with model, optimizer and RNG state restored; None
    when there is no usable checkpoint."""
    from peft import set_peft_model_state_dict

    latest = Path(folder) / "latest.json"
    if not latest.exists():
        return None
    saved = Path(folder) / read_json(latest)["checkpoint"]
    progress = read_json(saved / "progress.json")
    if progress.pop("fingerprint") != fingerprint_value:
        LOG.info("checkpoint %s was made with other records or settings: starting from step 0", saved)
        discard(folder)
        return None
    set_peft_model_state_dict(model, load_file(saved / "adapter.safetensors"))
    optimizer.load_state_dict(torch.load(saved / "optimizer.pt", weights_only=True))
    torch.set_rng_state(load_file(saved / "rng.safetensors")["torch_rng"])
    LOG.info("resuming from checkpoint %s (step %d)", saved, progress["step"])
    return progress


def discard(folder) -> None:
    shutil.rmtree(folder, ignore_errors=True)

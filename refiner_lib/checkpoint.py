"""Training checkpoints that a killed job resumes from.

Layout: the Trainer's `<dir>/checkpoint-12/` (adapter weights as safetensors,
optimizer, scheduler and RNG state, trainer state with the log so far) and
`<dir>/latest.json` naming the newest complete one. `latest.json` is replaced
atomically once the Trainer has written a checkpoint in full, and older ones
are removed only after it, so a kill at any moment leaves a usable checkpoint. A checkpoint resumes a run only if its fingerprint (records,
settings, base weights, training code) matches: after a config edit the job
starts from step 0.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

from .jsonl import read_json, write_json

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


def mark_complete(folder, name: str, fingerprint_value: str) -> None:
    """Name the checkpoint `name` (written in full) in latest.json, with the
    fingerprint of the run that made it; then remove the older ones."""
    folder = Path(folder)
    write_json(folder / "latest.json", {"checkpoint": name, "fingerprint": fingerprint_value})
    for old in folder.glob("checkpoint-*"):
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    LOG.info("checkpoint saved: %s", name)


def resumable(folder, fingerprint_value: str) -> Path | None:
    """The checkpoint a run with this fingerprint resumes from, if any; a
    checkpoint of other records or settings is removed."""
    latest = Path(folder) / "latest.json"
    if not latest.exists():
        discard(folder)  # a checkpoint never named complete (killed while saving the first one)
        return None
    named = read_json(latest)
    saved = Path(folder) / named["checkpoint"]
    if named.get("fingerprint") != fingerprint_value or not saved.is_dir():
        LOG.info("checkpoint %s was made with other records or settings: starting from step 0", saved)
        discard(folder)
        return None
    step = int(read_json(saved / "trainer_state.json")["global_step"])
    LOG.info("resuming from checkpoint %s (step %d)", saved, step)
    return saved


def discard(folder) -> None:
    shutil.rmtree(folder, ignore_errors=True)

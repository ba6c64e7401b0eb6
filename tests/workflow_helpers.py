"""Running the workflow from tests: the tiny config, snakemake in a subprocess,
a private copy of the sources (for tests that edit library code), and the
job counts of a dry run."""
from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from conftest import ROOT

PTQ_VARIANTS = {"lora_ptq_int8": {"quantization": None, "ptq": {"bits": 8}},
                "lora_ptq_int4": {"quantization": None, "ptq": {"bits": 4, "quant_type": "nf4", "double_quant": True,
                                                                 "compute_dtype": "float32"}}}
SOURCES = ["Snakefile", "rules", "workflow_scripts", "schemas", "envs", "refiner_lib", "profiles", "report"]


def tiny_config(model_path: Path) -> dict:
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["models"] = {"tiny": {"source": str(model_path)}}
    config["roles"] = {"student": "tiny", "generator": "tiny", "teacher": "tiny"}
    config["data"]["synthetic"].update(num_articles=9, num_questions=40, min_words=500, max_words=700)
    config["data"]["split"] = {"num_train": 12, "num_eval": 6}
    config["training"]["validation"] = {"num_records": 4, "every_steps": 1}
    config["training"]["schedule"].update(max_steps=2, batch_size=2, max_seq_len=256)
    config["refinement"].update(budget_tokens=96, max_new_tokens={"doc_structuring": 16})
    # one prompt per generator call, as the demo app answers: its browser test compares the two
    config["generation"].update(max_new_tokens=4, max_context_tokens=160, batch_size=1)
    config["teacher"]["max_new_tokens"] = {"doc_structuring": 16, "global_selection": 8}
    config["training"]["variants"].update(PTQ_VARIANTS)
    return config


def copy_sources(destination: Path) -> Path:
    """A private copy of the workflow and library; run() with source= imports
    refiner_lib from it, so a test may edit a module without touching the repo."""
    for name in SOURCES:
        origin = ROOT / name
        if origin.is_dir():
            shutil.copytree(origin, destination / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            destination.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, destination / name)
    return destination


def snakemake_command(workdir: Path, source: Path = ROOT, cores: int = 2) -> list[str]:
    return [sys.executable, "-m", "snakemake", "--snakefile", str(source / "Snakefile"), "--cores", str(cores),
            "--directory", str(workdir)]


@functools.cache
def no_slurm_probe() -> str:
    """A folder holding an `scontrol` that fails at once. Snakemake's SLURM plugin
    runs `scontrol show config` when it is imported (for a help text), and on a
    machine with SLURM's client but no controller that call waits 9 s: every
    local snakemake command of the tests would pay it."""
    folder = Path(tempfile.mkdtemp(prefix="no-slurm-probe-"))
    probe = folder / "scontrol"
    probe.write_text("#!/bin/sh\nexit 1\n")
    probe.chmod(0o755)
    return str(folder)


def source_env(source: Path = ROOT) -> dict:
    """The environment of a local snakemake command: the library from `source`,
    and no wait for a SLURM controller (the SLURM test runs with its own)."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([no_slurm_probe(), env.get("PATH", "")])
    if source != ROOT:
        env["PYTHONPATH"] = os.pathsep.join([str(source), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def write_config(workdir: Path, config: dict) -> None:
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def run(workdir: Path, config: dict, *extra: str, source: Path = ROOT) -> subprocess.CompletedProcess:
    write_config(workdir, config)
    # cwd: `python -m` puts the current folder first on sys.path, before PYTHONPATH
    return subprocess.run(snakemake_command(workdir, source) + list(extra), capture_output=True, text=True,
                          env=source_env(source), cwd=workdir)


def dry_run_jobs(workdir: Path, config: dict, source: Path = ROOT, extra: tuple = ()) -> dict[str, int]:
    """rule -> number of jobs a dry run would run (the target rule 'all' left out)."""
    result = run(workdir, config, *extra, "--dry-run", "--quiet", "rules", source=source)
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    if "Nothing to be done" in output:
        return {}
    table = output[output.index("Job stats:"):]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.M))
    return {rule: int(n) for rule, n in counts.items() if rule not in ("all", "total")}

"""Faults: a training job killed with SIGKILL midway resumes from its last
checkpoint (within the same run through `retries:`, or on the next run) and
ends with the adapter an uninterrupted run makes; nothing half-written is
consumed downstream."""
import csv
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from workflow_helpers import run, snakemake_command, source_env, tiny_config, write_config

TARGET = "results/students/global_selection/lora/adapter"
STEPS, EVERY = 30, 3


def fault_config(tiny_model, retries: int) -> dict:
    config = tiny_config(tiny_model)
    config["training"]["stages"] = ["global_selection"]
    config["training"]["variants"] = {"lora": {"quantization": None}}
    config["training"]["schedule"].update(max_steps=STEPS, warmup_steps=2)
    config["training"]["checkpoint_every_steps"] = EVERY
    config["retries"] = retries
    return config


def training_process(workdir: Path) -> int | None:
    """PID of the train_student job script running in workdir, if any."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().decode(errors="replace")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if "train_student" in command and ".snakemake/scripts" in command and Path(cwd) == workdir:
            return int(entry.name)
    return None


def kill_training_midway(workdir: Path, process: subprocess.Popen, timeout: float = 300) -> int:
    """SIGKILL the training job once it has saved a checkpoint; the step saved."""
    latest = workdir / "results/students/global_selection/lora/checkpoint/latest.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        pid = training_process(workdir)
        if pid and latest.exists():
            os.kill(pid, signal.SIGKILL)
            name = json.loads(latest.read_text())["checkpoint"]
            return int(name.split("-")[1])
        time.sleep(0.02)
    raise AssertionError("the training job never reached a checkpoint")


def same_adapter(first: Path, second: Path) -> None:
    a = load_file(first / "adapter_model.safetensors")
    b = load_file(second / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)  # the stated tolerance


def losses(workdir: Path) -> list[float]:
    rows = csv.DictReader((workdir / "results/students/global_selection/lora/loss.csv").open())
    return [float(r["loss"]) for r in rows]


@pytest.fixture(scope="module")
def uninterrupted(tiny_model, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("uninterrupted")
    result = run(workdir, fault_config(tiny_model, 0), TARGET)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir


@pytest.mark.parametrize("retries", [1, 0], ids=["retried-in-the-same-run", "resumed-by-the-next-run"])
def test_killed_training_resumes_from_its_checkpoint(tiny_model, uninterrupted, tmp_path, retries):
    config = fault_config(tiny_model, retries)
    write_config(tmp_path, config)
    process = subprocess.Popen(snakemake_command(tmp_path) + [TARGET], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=source_env(), cwd=tmp_path)
    killed_at = kill_training_midway(tmp_path, process)
    output = process.communicate(timeout=600)[0]
    assert 0 < killed_at < STEPS
    adapter = tmp_path / TARGET
    if retries:
        assert process.returncode == 0, output[-3000:]
    else:
        assert process.returncode != 0 and not adapter.exists()  # no half-written adapter is left to consume
        assert "Nothing to be done" not in run(tmp_path, config, TARGET, "--dry-run").stdout
        again = run(tmp_path, config, TARGET)
        assert again.returncode == 0, again.stderr[-3000:]
    log = (tmp_path / "results/logs/train_student/global_selection/lora.log").read_text()
    resumed = [line for line in log.splitlines() if "resuming from checkpoint" in line]
    assert resumed and f"(step {killed_at})" in resumed[0]  # not from step 0
    same_adapter(adapter, uninterrupted / TARGET)
    assert losses(tmp_path) == pytest.approx(losses(uninterrupted), rel=1e-5)
    assert not (adapter.parent / "checkpoint").exists()  # removed once the adapter is written

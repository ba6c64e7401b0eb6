"""The workflow through the SLURM executor plugin on a real single-node SLURM
on localhost (tests/slurm/localhost.sh): the tiny config submitted with the
shipped profile, its outputs equal to a local run's, the model rules given a
GPU by the scheduler and the others none. Only the processes the test started
are stopped afterwards."""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from conftest import ROOT
from workflow_helpers import run, tiny_config, write_config

SCRIPT = ROOT / "tests" / "slurm" / "localhost.sh"
ALREADY_RUNNING = 3  # localhost.sh's exit status when a SLURM it did not start is up


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("a local SLURM needs root (to install and start slurmctld, slurmd, slurmdbd, munge)")
    if not shutil.which("apt-get"):
        pytest.skip("a local SLURM is installed from Debian's packages: no apt-get here")
    state = tmp_path_factory.mktemp("slurm")
    try:
        started = subprocess.run(["bash", str(SCRIPT), "up", str(state)], capture_output=True, text=True,
                                 timeout=600)
        if started.returncode == ALREADY_RUNNING:
            pytest.skip(started.stderr.strip())
        assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-3000:]
        yield state
    finally:
        subprocess.run(["bash", str(SCRIPT), "down", str(state)], timeout=180)


def ci_profile(folder: Path) -> Path:
    """The shipped SLURM profile, sized for a 2-core node: same rules, same GPU
    requests; less memory, time and CPUs; this cluster's partition and account."""
    profile = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    for resources in profile["set-resources"].values():
        resources.update(mem_mb=min(resources["mem_mb"], 3000), runtime=min(resources["runtime"], 30),
                         cpus_per_task=1)
    profile["set-threads"] = {rule: 1 for rule in profile["set-threads"]}
    profile.update({"jobs": 8, "latency-wait": 5, "slurm-init-seconds-before-status-checks": 2,
                    "default-resources": {"slurm_partition": "debug", "slurm_account": "ci"}})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return folder


def without_timings(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.open()]
    return [{k: v for k, v in row.items() if not k.endswith("_seconds")} for row in rows]


# what a run computes, as opposed to how long it took or how much memory its process peaked at
DETERMINED = ("variant", "questions", "em", "f1", "accuracy", "dqa_accuracy", "dqa_alpha_error", "adr_recall", "adr_precision", "adr_auc",
              "context_answer_recall", "compression", "context_tokens",
              "refiner_parameters", "generator_parameters", "refine_flops_per_query", "generate_flops_per_query",
              "refiner_memory_mb", "adapter_mb", "refiner_disk_mb")


def quality_columns(path: Path) -> list[dict]:
    return [{k: row[k] for k in DETERMINED} for row in csv.DictReader(path.open())]


def allocations(snakemake_output: str) -> dict[str, list[str]]:
    """rule[:method] -> sacct's AllocTRES of each of its SLURM jobs."""
    seen: dict[str, list[str]] = {}
    for job_id, rule, rest in re.findall(r"SLURM jobid (\d+) \(log: \S*/slurm_logs/rule_(\w+)/(\S*)\)",
                                         snakemake_output):
        # the plugin names a job's log folder by its wildcards' values joined by "_": dataset, method
        key = f"{rule}:{rest.split('/')[0].removeprefix('encyclopedia_')}" if rule == "refine" else rule
        tres = subprocess.run(["sacct", "-n", "-X", "-P", "-j", job_id, "--format=AllocTRES"],
                              capture_output=True, text=True, check=True).stdout
        seen.setdefault(key, []).append(tres)
    return seen


def test_the_workflow_on_a_real_slurm_matches_a_local_run(slurm, tiny_model, tmp_path):
    config = tiny_config(tiny_model)
    config["training"]["variants"] = {"lora": {"quantization": None}}
    local, on_slurm = tmp_path / "local", tmp_path / "slurm"
    local.mkdir()
    on_slurm.mkdir()
    reference = run(local, config, "--cores", "1")  # one thread per job, as the SLURM jobs below
    assert reference.returncode == 0, reference.stderr[-3000:]

    write_config(on_slurm, config)
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory",
               str(on_slurm), "--profile", str(ci_profile(tmp_path / "profile"))]
    started = time.monotonic()
    # the plugin polls sacct and ignores SIGTERM while it waits: bound it from outside
    result = subprocess.run(["timeout", "-k", "10", "900", *command], capture_output=True, text=True)
    print(f"workflow on SLURM: {time.monotonic() - started:.0f} s")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]

    for name in ("datasets/encyclopedia/data/questions.jsonl", "datasets/encyclopedia/data/train.jsonl",
                 "datasets/encyclopedia/data/eval.jsonl", "datasets/encyclopedia/retrieval/train.jsonl",
                 "datasets/encyclopedia/retrieval/eval.jsonl", "teacher/global_selection/train.json",
                 "datasets/encyclopedia/teacher/query_analysis/eval_labels.jsonl"):
        assert (on_slurm / "results" / name).read_bytes() == (local / "results" / name).read_bytes(), name
    for method in ("full", "local_only", "selection_only", "teacher", "lora"):
        for folder in ("refined", "answers"):
            path = Path("results/datasets/encyclopedia") / folder / f"{method}.jsonl"
            assert without_timings(on_slurm / path) == without_timings(local / path), path
    for stage in config["training"]["stages"]:
        adapter = Path("results/students") / stage / "lora/adapter/adapter_model.safetensors"
        ours, theirs = load_file(on_slurm / adapter), load_file(local / adapter)
        for key in ours:
            torch.testing.assert_close(ours[key], theirs[key], rtol=1e-5, atol=1e-6)
    assert quality_columns(on_slurm / "results/summary.csv") == quality_columns(local / "results/summary.csv")

    allocated = allocations(result.stdout + result.stderr)
    # the oracle teacher and the baselines' refinement run no model
    model_jobs = {"train_student", "refine:lora", "generate"}
    baselines = [f"refine:{method}" for method in ("full", "local_only", "selection_only", "teacher")]
    assert set(allocated) == {"materialize_model", "prepare_corpus", "prepare_data", "split_questions",
                              "build_bm25_index", "retrieve", "query_analysis", "doc_structuring", "global_selection",
                              "merge_training_records", "train_student", *baselines,
                              "refine:lora", "time_refine", "generate", "time_generate", "evaluate",
                              "summarize", "plot_results"}
    cpus = subprocess.run(["sinfo", "-h", "-o", "%c"], capture_output=True, text=True, check=True).stdout.split()[0]
    node_cpus = f"cpu={cpus}"  # every CPU of the node
    for job, tres in allocated.items():
        if job.startswith("time_"):  # timed jobs hold the whole node (--exclusive): every CPU, whatever they asked
            assert all(node_cpus in t.split(",") for t in tres), (job, tres)
        else:
            assert {"gres/gpu=1" in t for t in tres} == {job in model_jobs}, (job, tres)

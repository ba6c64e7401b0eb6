"""Running the workflow from tests: the tiny config, snakemake in a subprocess,
a private copy of the sources (for tests that edit library code), and the
job counts of a dry run."""
from __future__ import annotations

import csv
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from conftest import ROOT
from refiner_lib import data, report, stage_times
from refiner_lib.config import BASELINES
from refiner_lib.tasks import CALIBRATION_FILES

CRITERIA = {"global_selection": "micro_f1", "query_analysis": "soft_cross_entropy"}  # what each calibration fits

PTQ_VARIANTS = {"lora_ptq_int8": {"quantization": None, "ptq": {"bits": 8}},
                "lora_ptq_int4": {"quantization": None, "ptq": {"bits": 4, "quant_type": "nf4", "double_quant": True,
                                                                 "compute_dtype": "float32"}}}
SOURCES = ["Snakefile", "rules", "workflow_scripts", "schemas", "envs", "refiner_lib", "profiles", "report"]


def tiny_config(model_path: Path) -> dict:
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["models"] = {"tiny": {"source": str(model_path)}}
    config["roles"] = {"student": "tiny", "generator": "tiny", "teacher": "tiny"}
    dataset = config["datasets"]["encyclopedia"]
    dataset["synthetic"].update(num_articles=9, num_questions=40, min_words=500, max_words=700)
    dataset["split"] = {"num_train": 12, "num_eval": 6}
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


def blank_by_definition(method: str) -> set[str]:
    """Summary columns a method has no value for: `full` runs no stage, the
    ablations drop query analysis (and local_only global selection too),
    ADR precision is undefined where a selection chose nothing, and only a
    student scores titles (ADR ranking AUC)."""
    dqa = ("dqa_accuracy", "dqa_alpha_error")
    dropped = {"full": (*dqa, "adr_recall", "adr_precision"), "local_only": (*dqa, "adr_recall", "adr_precision"),
               "selection_only": dqa}.get(method, ())
    dropped += ("adr_precision",)
    if method in BASELINES:  # the teacher's selections are chosen, not scored
        dropped += ("adr_auc",)
    return {f"{name}{suffix}" for name in dropped for suffix in ("", "_ci_low", "_ci_high")}


def dataset_rows(rows: list[dict], config: dict) -> list[dict]:
    """summary.csv's rows of each dataset: every method, in order, dataset after dataset."""
    datasets, methods = list(config["datasets"]), list(BASELINES) + list(config["training"]["variants"])
    assert [(r["dataset"], r["variant"]) for r in rows[:len(datasets) * len(methods)]] == \
        [(d, m) for d in datasets for m in methods]
    return rows[:len(datasets) * len(methods)]


def check_outputs(workdir: Path, config: dict) -> list[dict]:
    results = workdir / "results"
    rows = list(csv.DictReader((results / "summary.csv").open()))
    variants = list(config["training"]["variants"])
    long_form = set(report.LONG_FORM)
    for row in dataset_rows(rows, config):
        assert row["questions"] == str(config["datasets"][row["dataset"]]["split"]["num_eval"])
        named = config["datasets"][row["dataset"]].get("metrics") or data.DEFAULT_METRICS.get(
            config["datasets"][row["dataset"]]["layout"], data.SHORT_FORM)
        unscored = {f"{m}{s}" for m in long_form - set(named) for s in ("", "_ci_low", "_ci_high")}
        if config["datasets"][row["dataset"]]["layout"] not in data.ANNOTATED:  # no gold sections to score ADR on
            unscored |= {f"adr_{m}{s}" for m in ("recall", "precision", "auc") for s in ("", "_ci_low", "_ci_high")}
        if "global_selection" not in config["training"]["stages"]:  # no student scores titles
            unscored |= {f"adr_auc{s}" for s in ("", "_ci_low", "_ci_high")}
        for column in set(report.SUMMARY_COLUMNS) - {"dataset", "variant"} - blank_by_definition(row["variant"]) - \
                unscored:
            assert row[column] != "" and float(row[column]) >= 0, (row["variant"], column)  # every metric filled
        for column in ("generate_latency_mean_s", "generate_peak_memory_mb", "generate_flops_per_query",
                       "generator_parameters", "refine_peak_memory_mb"):
            assert float(row[column]) > 0, (row["variant"], column)
        assert float(row["refine_latency_p50_s"]) <= float(row["refine_latency_p95_s"])
        student = row["variant"] not in BASELINES
        assert (float(row["refine_flops_per_query"]) > 0) == student, row["variant"]
        assert (float(row["refiner_parameters"]) > 0) == student and (float(row["refiner_disk_mb"]) > 0) == student
        if row["variant"] != "full":
            assert float(row["context_tokens"]) <= config["refinement"]["budget_tokens"]
    qlora = next((r for r in rows if r["variant"] == "qlora"), None)
    lora = next((r for r in rows if r["variant"] == "lora"), None)
    if qlora and lora:  # the NF4 base takes less memory than the float32 one, with as many parameters
        assert float(qlora["refiner_memory_mb"]) < float(lora["refiner_memory_mb"])
        assert qlora["refiner_parameters"] == lora["refiner_parameters"]
    summary = (results / "summary.md").read_text()
    assert re.search(r"\| variant +\| refiner parameters +\| EM +\| F1 +\|", summary)
    assert re.search(r"\| stage +\| variant +\| peak memory \(MB\) +\|", summary)
    for stage in config["training"]["stages"]:
        for variant, settings in config["training"]["variants"].items():
            folder = results / "students" / stage / variant
            if settings.get("ptq"):  # no training of its own: the quantized merge of its sibling's adapter
                assert not (folder / "adapter").exists()
                sizes = json.loads((folder / "quantized" / "sizes.json").read_text())
                assert sizes["quantized_bytes"] < sizes["merged_bytes"]
                if stage in CALIBRATION_FILES:  # its own, from the quantized model's scores of the held-out records
                    calibration = json.loads((folder / "quantized" / CALIBRATION_FILES[stage]).read_text())
                    assert calibration["records"] == config["training"]["validation"]["num_records"]
                    assert calibration["criterion"] == CRITERIA[stage]
                continue
            if stage in CALIBRATION_FILES:
                assert json.loads((folder / "adapter" / CALIBRATION_FILES[stage]).read_text())["criterion"] == \
                    CRITERIA[stage]
            assert (folder / "adapter" / "adapter_model.safetensors").exists()
            losses = list(csv.DictReader((folder / "loss.csv").open()))
            assert len(losses) == config["training"]["schedule"]["max_steps"]
            metrics = json.loads((folder / "metrics.json").read_text())
            assert metrics["flops_measured"] > 0 and metrics["tokens_per_second"] > 0
            assert metrics["validation_records"] == config["training"]["validation"]["num_records"]
            assert metrics["final_validation_loss"] is not None
    for stage in ("query_analysis", "doc_structuring", "global_selection"):
        parts = [json.loads((results / "datasets" / name / "teacher" / stage / "train.json").read_text())
                 for name in config["datasets"]]
        assert all(part and set(part[0]) == {"instruction", "input", "output"} for part in parts)
        if stage in config["training"]["stages"]:  # students train on every dataset's records, in order
            assert json.loads((results / "teacher" / stage / "train.json").read_text()) == sum(parts, [])
    for name, dataset in config["datasets"].items():
        for method in list(BASELINES) + variants:
            answers = [json.loads(line) for line in (results / "datasets" / name / "answers" / f"{method}.jsonl").open()]
            assert len(answers) == dataset["split"]["num_eval"]
    timed = stage_times.read_benchmarks(results)
    expected = {"materialize_model", "prepare_corpus", "prepare_data", "split_questions", "build_bm25_index", "retrieve", "query_analysis",
                "doc_structuring", "global_selection", "merge_training_records", "train_student", "refine", "generate",
                "time_refine", "time_generate", "evaluate", "summarize", "plot_results"}
    if any(s.get("ptq") for s in config["training"]["variants"].values()):
        expected.add("quantize_student")
    assert set(timed) == expected
    assert all(job["seconds"] > 0 for jobs in timed.values() for job in jobs)
    assert "| train_student | " in stage_times.table(results)
    return rows

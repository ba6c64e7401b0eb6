"""Execution profiles and the resources each job asks for: every rule sized in
the SLURM profile; one GPU for each model job, none for the others."""
import re

import pytest
import yaml

from conftest import ROOT
from workflow_helpers import run


def workflow_rules() -> set[str]:
    return {name for smk in (ROOT / "rules").glob("*.smk")
            for name in re.findall(r"^rule (\w+):", smk.read_text(), re.M)}


def test_slurm_profile_sizes_every_rule():
    profile = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    assert profile["executor"] == "slurm"
    resources = profile["set-resources"]
    assert set(resources) == workflow_rules()
    for rule, needs in resources.items():
        assert {"mem_mb", "runtime", "cpus_per_task"} <= set(needs), rule
        assert "gpu" not in needs, f"{rule}: GPUs are the rules' own resources"
        assert profile["set-threads"].get(rule, 1) == needs["cpus_per_task"], rule
    # partition and account come from the command line (--default-resources), not from this file
    assert "default-resources" not in profile


def test_local_profile_runs_on_this_machine():
    profile = yaml.safe_load((ROOT / "profiles" / "local" / "config.yaml").read_text())
    assert "executor" not in profile and profile["cores"] >= 1 and profile["rerun-incomplete"] is True


def planned_gpus(workdir, config) -> dict[str, set[int]]:
    """rule[:wildcards] -> the gpu resource of its planned jobs, from a dry run."""
    result = run(workdir, config, "--dry-run")
    assert result.returncode == 0, result.stderr[-3000:]
    gpus: dict[str, set[int]] = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", result.stdout + result.stderr):
        name = re.match(r"(?:local)?rule (\w+):", block)
        if not name or name.group(1) == "all":
            continue
        method = re.search(r"wildcards:.*method=(\w+)", block)
        key = name.group(1) + (f":{method.group(1)}" if method and name.group(1) == "refine" else "")
        found = re.search(r"resources:.*\bgpu=(\d+)", block)
        gpus.setdefault(key, set()).add(int(found.group(1)) if found else 0)
    return gpus


@pytest.mark.parametrize("teacher", ["oracle", "llm"])
def test_model_jobs_ask_for_one_gpu_and_the_others_none(tmp_path, teacher):
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["teacher"]["kind"] = teacher
    gpus = planned_gpus(tmp_path, config)
    teacher_gpu = {1} if teacher == "llm" else {0}
    expected = {"materialize_model": {0}, "prepare_corpus": {0}, "prepare_data": {0}, "split_questions": {0},
                "build_bm25_index": {0}, "retrieve": {0}, "query_analysis": teacher_gpu, "doc_structuring": teacher_gpu,
                "global_selection": teacher_gpu, "merge_training_records": {0}, "train_student": {1}, "quantize_student": {1}, "generate": {1},
                "time_refine": {1}, "time_generate": {1}, "evaluate": {0}, "summarize": {0}, "plot_results": {0}}
    # the baselines run no refiner model
    expected.update({f"refine:{method}": {0} for method in ("full", "local_only", "selection_only", "teacher")})
    expected.update({f"refine:{method}": {1} for method in ("lora", "qlora", "lora_ptq_int8", "lora_ptq_int4")})
    assert gpus == expected

"""The execution profiles: the SLURM profile gives every rule its resources,
one GPU to the model rules and none to the others."""
import re

import yaml

from conftest import ROOT

GPU_RULES = {"query_analysis", "doc_structuring", "global_selection", "train_student", "quantize_student", "refine",
             "generate"}


def workflow_rules() -> set[str]:
    return {name for smk in (ROOT / "rules").glob("*.smk")
            for name in re.findall(r"^rule (\w+):", smk.read_text(), re.M)}


def test_slurm_profile_sizes_every_rule_and_gives_gpus_to_model_rules_only():
    profile = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    assert profile["executor"] == "slurm"
    resources = profile["set-resources"]
    assert set(resources) == workflow_rules()
    for rule, needs in resources.items():
        assert {"mem_mb", "runtime", "cpus_per_task"} <= set(needs), rule
        assert needs.get("gpu", 0) == (1 if rule in GPU_RULES else 0), rule
        assert profile["set-threads"].get(rule, 1) == needs["cpus_per_task"], rule
    # partition and account come from the command line (--default-resources), not from this file
    assert "default-resources" not in profile


def test_local_profile_runs_on_this_machine():
    profile = yaml.safe_load((ROOT / "profiles" / "local" / "config.yaml").read_text())
    assert "executor" not in profile and profile["cores"] >= 1 and profile["rerun-incomplete"] is True

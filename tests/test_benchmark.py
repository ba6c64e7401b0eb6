"""The training-cost benchmark at a model shape (the GPU measurement script),
run here at the tiny shape on the CPU with the tiny workflow config's settings."""
import copy

from refiner_lib import benchmark
from refiner_lib.config import validate
from workflow_helpers import tiny_config


def test_benchmark_times_the_workflows_step_for_every_variant(tiny_model, tmp_path):
    config = validate(copy.deepcopy(tiny_config(tiny_model)))
    config["training"]["schedule"].update(batch_size=1, gradient_accumulation_steps=2)
    workload = benchmark.Workload(steps=2, seq_len=32, answer_tokens=8)
    rows = benchmark.run(config, "tiny", workload, str(tmp_path / "model"), ["lora", "qlora", "lora_ptq_int4"])
    assert [r["variant"] for r in rows] == ["lora", "qlora", "lora_ptq_int4"]
    for row in rows:
        assert row["tokens_per_second"] > 0 and row["training_peak_memory_mb"] > 0 and row["seconds_per_step"] > 0
        assert row["global_batch"] == 2  # the config's schedule: batch 1 x 2 accumulation steps
    # tokens per step: 2 records of 32 tokens
    assert abs(rows[0]["tokens_per_second"] * rows[0]["seconds_per_step"] - 64) < 1
    assert rows[2]["inference_weights_mb"] > 0 and "inference_weights_mb" not in rows[0]


def test_the_paper_config_loads_for_the_benchmark():
    from refiner_lib.config import load

    config = load("config/paper.yaml")
    assert config["training"]["schedule"]["gradient_accumulation_steps"] == 8

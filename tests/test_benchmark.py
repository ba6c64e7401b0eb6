"""The training-cost benchmark at a model shape (the GPU measurement script),
run here at the tiny shape on the CPU."""
from refiner_lib import benchmark


def test_benchmark_measures_every_variant(tmp_path):
    rows = benchmark.run("tiny", benchmark.Workload(steps=2, batch_size=2, seq_len=32), dtype_name="float32",
                         folder=str(tmp_path / "model"), variants=["lora", "qlora", "lora_ptq_int4"])
    assert [r["variant"] for r in rows] == ["lora", "qlora", "lora_ptq_int4"]
    for row in rows:
        assert row["tokens_per_second"] > 0 and row["training_peak_memory_mb"] > 0 and row["seconds_per_step"] > 0
    assert rows[2]["inference_weights_mb"] > 0 and "inference_weights_mb" not in rows[0]

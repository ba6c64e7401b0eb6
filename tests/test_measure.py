"""The latency pass's sampling and the interleaved generator timing."""
from refiner_lib import measure
from refiner_lib.tasks import generator_timing

TIMING = measure.TimingSettings(latency_questions=3, warmup_questions=1, seed=5)


def test_the_sample_is_the_same_for_every_method_and_warm_up_is_apart():
    questions = [{"id": f"q{i}"} for i in range(10)]
    warmup, timed = measure.latency_sample(questions, TIMING)
    assert measure.latency_sample(list(reversed(questions)), TIMING) == (warmup, timed)
    assert len(timed) == 3 and len(warmup) == 1 and warmup[0] not in timed


def test_methods_are_timed_interleaved_in_rotating_order():
    calls = []
    seconds = measure.time_interleaved(calls.append, {"a": ["a-warm"], "b": ["b-warm"]},
                                       {"a": ["a0", "a1", "a2"], "b": ["b0", "b1", "b2"], "c": ["c0", "c1", "c2"]})
    assert calls == ["a-warm", "b-warm", "a0", "b0", "c0", "b1", "c1", "a1", "c2", "a2", "b2"]
    assert {key: len(values) for key, values in seconds.items()} == {"a": 3, "b": 3, "c": 3}
    assert all(s >= 0 for values in seconds.values() for s in values)


def test_a_method_reads_its_row_of_the_shared_generator_timing():
    cost = {"generator_parameters": 7, "peak_memory_mb": 1.0,
            "methods": {"lora": {"latency_seconds": {"mean": 0.5}, "seconds": [0.5]}}}
    assert generator_timing(cost, "lora") == {"generator_parameters": 7, "peak_memory_mb": 1.0,
                                              "latency_seconds": {"mean": 0.5}, "seconds": [0.5]}


def test_a_method_missing_from_the_generator_timing_is_named():
    import pytest

    from refiner_lib.errors import InputError

    with pytest.raises(InputError, match="no row for method 'qlora'"):
        generator_timing({"methods": {"lora": {}}}, "qlora")

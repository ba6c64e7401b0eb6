"""The latency pass's sampling and the interleaved generator timing."""
from refiner_lib import measure
from refiner_lib.tasks import method_timing

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


def test_a_method_reads_its_row_of_a_latency_pass_of_every_method():
    cost = {"generator_parameters": 7, "peak_memory_mb": 1.0,
            "methods": {"lora": {"latency_seconds": {"mean": 0.5}, "seconds": [0.5]}}}
    assert method_timing(cost, "lora", "time_generate") == {"generator_parameters": 7, "peak_memory_mb": 1.0,
                                              "latency_seconds": {"mean": 0.5}, "seconds": [0.5]}


def test_a_method_missing_from_a_latency_pass_is_named():
    import pytest

    from refiner_lib.errors import InputError

    with pytest.raises(InputError, match="time_refine: no row for method 'qlora'"):
        method_timing({"methods": {"lora": {}}}, "qlora", "time_refine")


def child_peak_memory(megabytes: int) -> tuple[int, float]:
    import os

    block = bytearray(megabytes * 2**20)
    block[::4096] = b"x" * len(block[::4096])  # touch every page
    return os.getpid(), measure.peak_memory_mb()[0]


def test_a_step_in_its_own_process_reports_its_own_peak_memory():
    """Steps timed one after another each report their own peak: a small step
    after a large one is not charged the large one's memory (as it would be in
    one process, whose peak RSS cannot be reset). Its result comes back; an
    error it raises is raised in the parent."""
    import os

    import pytest

    from refiner_lib.errors import InputError

    pid, large = measure.in_own_process(child_peak_memory, 300)
    _, small = measure.in_own_process(child_peak_memory, 20)
    assert pid != os.getpid()
    assert large - small > 250
    with pytest.raises(InputError, match="bad record"):
        measure.in_own_process(raise_input_error, "bad record")


def raise_input_error(message: str):
    from refiner_lib.errors import InputError

    raise InputError(message)

"""Cost measurements shared by training and inference: peak memory, real
parameter counts (4-bit weights unpacked), forward FLOPs from counted tokens,
latency percentiles and sizes on disk."""
from __future__ import annotations

import math
import random
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path


def peak_memory_mb() -> tuple[float, str]:
    """CUDA max allocated on a GPU, the process' peak RSS on the CPU."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20, "cuda_max_allocated"
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "peak_rss"


def in_own_process(function, *args):
    """function(*args) in a child process, its result sent back: what a step
    reports as its peak memory is then its own (a process' peak RSS cannot be
    reset). Forked on Linux, so the child starts with the parent's imports and
    no CUDA context; spawned elsewhere (macOS' system libraries are not fork-safe)."""
    import multiprocessing

    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=send_result, args=(sender, function, args))
    child.start()
    sender.close()
    try:
        succeeded, value = receiver.recv()
    except EOFError:
        child.join()
        raise RuntimeError(f"{function.__name__}: its process ended (exit code {child.exitcode}) "
                           "before sending a result") from None
    finally:
        receiver.close()
    child.join()
    if not succeeded:
        raise value
    return value


def send_result(sender, function, args) -> None:
    """A child's side of in_own_process: the result, or the error it raised
    (its traceback kept in the message when the error cannot be sent as is)."""
    try:
        sender.send((True, function(*args)))
    except BaseException as error:  # noqa: BLE001 - every failure goes back to the parent
        try:
            sender.send((False, error))
        except Exception:  # noqa: BLE001
            sender.send((False, RuntimeError("".join(traceback.format_exception(error)))))
    finally:
        sender.close()


def tensor_parameters(tensor) -> int:
    """Weights a tensor stands for: a bitsandbytes 4-bit tensor packs two per byte
    and keeps its real shape in its quant_state."""
    state = getattr(tensor, "quant_state", None)
    if state is not None and getattr(state, "shape", None) is not None:
        return math.prod(state.shape)
    return tensor.numel()


def parameter_count(model, adapter: str | None = None) -> int:
    """Parameters one forward pass uses: the base weights plus the active LoRA
    adapter's (other loaded adapters are idle)."""
    total = 0
    for name, tensor in model.named_parameters():
        if "lora_" in name and (adapter is None or f".{adapter}." not in name):
            continue
        total += tensor_parameters(tensor)
    return total


def forward_flops(parameters: int, tokens: int) -> int:
    """2 FLOPs per parameter per token processed (prompt and generated tokens),
    the standard dense-decoder estimate without the attention-score term."""
    return 2 * parameters * tokens


@dataclass(frozen=True)
class TimingSettings:
    """How the latency pass samples and warms up (config block `measurement`)."""
    latency_questions: int  # questions timed one at a time
    warmup_questions: int  # questions run untimed first (caches, lazy initialization)
    seed: int  # picks the sample; every method is timed on the same questions


def latency_sample(questions: list[dict], timing: TimingSettings) -> tuple[list[dict], list[dict]]:
    """(warm-up, timed) questions: a seeded sample, the same for every method,
    warm-up questions taken from outside the timed ones when there are enough."""
    order = sorted(questions, key=lambda q: q["id"])
    random.Random(timing.seed).shuffle(order)
    timed = order[: timing.latency_questions]
    rest = order[timing.latency_questions:] or timed
    return rest[: timing.warmup_questions], timed


def time_each(run, warmup: list, timed: list) -> list[float]:
    """Seconds `run` takes on each timed item, one at a time, after running the
    warm-up items untimed (lazy initialization, caches)."""
    return time_interleaved(run, {"items": warmup}, {"items": timed})["items"]


def time_interleaved(run, warmup: dict[str, list], timed: dict[str, list]) -> dict[str, list[float]]:
    """Seconds `run` takes on each timed item of every key (a method), one at a
    time after the warm-up items: item i of every key in turn, the order of the
    keys rotated by one at each i, so that no key always runs first or last and
    a slow spell of the machine is shared instead of landing on one key."""
    keys = list(timed)
    for key in keys:
        for item in warmup.get(key, []):
            run(item)
    seconds: dict[str, list[float]] = {key: [] for key in keys}
    for index in range(max((len(items) for items in timed.values()), default=0)):
        shift = index % len(keys)
        for key in keys[shift:] + keys[:shift]:
            if index < len(timed[key]):
                started = time.perf_counter()
                run(timed[key][index])
                seconds[key].append(time.perf_counter() - started)
    return seconds


def timing_summary(seconds: list[float], timing: TimingSettings, question_ids: list[str]) -> dict:
    memory, kind = peak_memory_mb()
    return {"latency_seconds": latency_summary(seconds), "seconds": seconds, "peak_memory_mb": round(memory, 1),
            "peak_memory_kind": kind, "warmup_questions": timing.warmup_questions, "timed_questions": question_ids}


def latency_summary(seconds: list[float]) -> dict:
    if not seconds:
        return {"mean": None, "p50": None, "p95": None, "count": 0}
    ordered = sorted(seconds)

    def percentile(q: float) -> float:  # linear interpolation, as numpy's default
        position = (len(ordered) - 1) * q
        low, high = math.floor(position), math.ceil(position)
        return ordered[low] + (ordered[high] - ordered[low]) * (position - low)

    return {"mean": sum(ordered) / len(ordered), "p50": percentile(0.5), "p95": percentile(0.95),
            "count": len(ordered)}


def folder_bytes(folder: str | Path) -> int:
    path = Path(folder)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def weight_bytes(folder: str | Path) -> int:
    """Bytes of a model folder's weights on disk (safetensors files only)."""
    return sum(p.stat().st_size for p in Path(folder).glob("*.safetensors"))

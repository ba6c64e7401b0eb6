"""Cost measurements shared by training and inference: peak memory, real
parameter counts (4-bit weights unpacked), forward FLOPs from counted tokens,
latency percentiles and sizes on disk."""
from __future__ import annotations

import math
from pathlib import Path

import torch


def peak_memory_mb() -> tuple[float, str]:
    """CUDA max allocated on a GPU, the process' peak RSS on the CPU."""
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20, "cuda_max_allocated"
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "peak_rss"


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


def average(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


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

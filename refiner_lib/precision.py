"""The floating-point type models load and compute in (config key `precision`).

`auto` picks bfloat16 where the hardware multiplies it natively and float32
elsewhere: a CUDA GPU that supports it; a CPU with AMX tiles (an Intel Xeon,
where a SmolLM2-135M forward pass ran 3.6x faster than in float32) or with
AVX512-BF16 dot products (an AMD EPYC: forward 3.0x, training step 2.6x
faster, one thread, measured side by side). The choice is made on the machine
that runs the job, so a laptop and a GPU node each get their own."""
from __future__ import annotations

from pathlib import Path

import torch

NAMES = ("auto", "bfloat16", "float16", "float32")
# the kernel's CPU flags for bf16 arithmetic in hardware (oneDNN uses either)
NATIVE_BF16_FLAGS = {"amx_bf16", "avx512_bf16"}


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """AMX bf16 tiles or AVX512-BF16 instructions, from the kernel's CPU flags
    (Linux; elsewhere: no)."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text() if path.exists() else ""
    return bool(NATIVE_BF16_FLAGS & set(cpuinfo.split()))


def auto_dtype(cuda: bool | None = None, cpuinfo: str | None = None) -> torch.dtype:
    cuda = torch.cuda.is_available() if cuda is None else cuda
    if cuda:
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return torch.bfloat16 if cpu_has_native_bf16(cpuinfo) else torch.float32


def resolve(name: str | None) -> torch.dtype:
    """A torch dtype from a config name (None: float32)."""
    if name in (None, "float32"):
        return torch.float32
    if name == "auto":
        return auto_dtype()
    if name not in NAMES:
        raise ValueError(f"precision: '{name}' is not one of {list(NAMES)}")
    return getattr(torch, name)

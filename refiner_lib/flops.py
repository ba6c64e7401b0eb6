"""FLOP counting with torch.utils.flop_counter, taught bitsandbytes' matmuls.

FlopCounterMode knows aten's matmuls only; a 4-bit or 8-bit bitsandbytes layer
runs its own op, which would otherwise count as zero and make quantized
models look cheaper than they are.
"""
from __future__ import annotations

from math import prod

from torch.utils.flop_counter import FlopCounterMode


def gemm_4bit_flops(a_shape, b_shape, shape_b, *args, out_shape=None, **kwargs) -> int:
    """A [..., in] times the unpacked weight shape_b [out, in]."""
    return 2 * prod(a_shape[:-1]) * shape_b[0] * shape_b[1]


def int8_matmul_flops(a_shape, b_shape, *args, out_shape=None, **kwargs) -> int:
    """A [..., in] int8 times B [out, in] int8."""
    return 2 * prod(a_shape[:-1]) * a_shape[-1] * b_shape[0]


def bitsandbytes_formulas() -> dict:
    try:
        import torch
        import bitsandbytes  # noqa: F401  (registers torch.ops.bitsandbytes)
    except ImportError:
        return {}
    ops = torch.ops.bitsandbytes
    formulas = {}
    for name, formula in (("gemm_4bit", gemm_4bit_flops), ("int8_linear_matmul", int8_matmul_flops),
                          ("int8_scaled_mm", int8_matmul_flops)):
        if hasattr(ops, name):
            formulas[getattr(ops, name)] = formula  # the counter keys formulas by overload packet
    return formulas


def counter() -> FlopCounterMode:
    return FlopCounterMode(display=False, custom_mapping=bitsandbytes_formulas())

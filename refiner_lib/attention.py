"""The attention kernel of inference on a CPU, chosen by query length.

PyTorch's CPU kernel for scaled_dot_product_attention (a flash-attention
loop) is fast on long queries and slow on short ones: one thread, SmolLM2-135M's
heads (9 query, 3 key/value, 64 wide), bfloat16, batch 8 over 1,000 cached
positions, it took 6.4 ms for a one-token query where two matmuls and a softmax
took 0.9 ms, and 3.3 ms against 1.4 ms for a 4-token one; from 64 query tokens
on it is the faster one (17 ms against 29 ms). Decoding (one token per step)
and scoring a short question with its two labels after a cached instruction
(packing.py) are exactly the short case. So on a CPU the model runs transformers' `sdpa` attention, except on
queries of at most SHORT_QUERY_TOKENS, which take the eager path that
transformers' own `eager_attention_forward` computes. On a GPU the model keeps
transformers' default (its SDPA kernels serve short queries well)."""
from __future__ import annotations

import torch

NAME = "sdpa_short_query_eager"
SHORT_QUERY_TOKENS = 32


def short_query_attention(module, query, key, value, attention_mask, **options):
    """transformers' attention-function signature: (batch, heads, positions,
    width) tensors in, (batch, positions, heads, width) out and no weights.
    The mask is the `sdpa` one: boolean (True attends) or None. `options` are
    transformers' (dropout, scaling, ...), passed on to SDPA."""
    from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward

    queries = query.shape[2]
    # None with several queries means "causal", which only the SDPA path applies
    if queries > SHORT_QUERY_TOKENS or (attention_mask is None and queries > 1) or \
            (options.get("dropout") and module.training):
        return sdpa_attention_forward(module, query, key, value, attention_mask, **options)
    groups = getattr(module, "num_key_value_groups", 1)
    key, value = repeat_kv(key, groups), repeat_kv(value, groups)
    scaling = options.get("scaling")
    scale = query.shape[-1] ** -0.5 if scaling is None else scaling
    weights = torch.matmul(query, key.transpose(2, 3)) * scale
    if attention_mask is not None:
        attention_mask = attention_mask[:, :, :, :key.shape[2]]
        if attention_mask.dtype == torch.bool:
            weights = weights.masked_fill(~attention_mask, torch.finfo(weights.dtype).min)
        else:
            weights = weights + attention_mask
    weights = torch.softmax(weights, dim=-1, dtype=torch.float32).to(query.dtype)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), None


def register() -> str:
    """Make NAME an `attn_implementation` of transformers (with SDPA's masks)."""
    from transformers import AttentionInterface, AttentionMaskInterface
    from transformers.masking_utils import sdpa_mask

    AttentionInterface.register(NAME, short_query_attention)
    AttentionMaskInterface.register(NAME, sdpa_mask)
    return NAME


def implementation(cuda: bool | None = None) -> dict:
    """from_pretrained options for inference: NAME on a CPU, transformers'
    default on a GPU."""
    cuda = torch.cuda.is_available() if cuda is None else cuda
    return {} if cuda else {"attn_implementation": register()}

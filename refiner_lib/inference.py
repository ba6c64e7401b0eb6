"""The interface every inference backend implements (Hugging Face transformers
in backend.py, vLLM in vllm_backend.py) and the code they share. Light: no torch."""
from __future__ import annotations

from abc import ABC, abstractmethod

from .prompts import chat_prompt, record_messages


class Prompt(str):
    """A prompt text whose first `shared` characters recur across calls (an
    instruction and worked examples, a document before its question). A
    backend may keep that part's key/value cache instead of recomputing it for
    every prompt; the text, and so every result, is the same either way up to
    float rounding. Everywhere else it is a plain string."""

    shared: int

    def __new__(cls, text: str, shared: int = 0):
        prompt = super().__new__(cls, text)
        prompt.shared = shared
        return prompt

    @classmethod
    def shared_before(cls, text: str, marker: str) -> "Prompt":
        """`text`, its shared part ending where the last `marker` starts."""
        return cls(text, max(text.rfind(marker), 0))

    @classmethod
    def shared_through(cls, text: str, marker: str) -> "Prompt":
        """`text`, its shared part ending where the last `marker` ends."""
        at = text.rfind(marker)
        return cls(text, at + len(marker) if at >= 0 else 0)


class Backend(ABC):
    """One base model with optional per-stage adapters: greedy generation and
    choice probabilities for the refinement stages, with a running count of the
    forward FLOPs of every call (`flops`)."""

    tokenizer = None  # the model's tokenizer, with its chat template
    stage: str | None = None  # the stage whose adapter answers (None or no adapter: the base)
    flops: int = 0

    @abstractmethod
    def use(self, stage: str | None) -> "Backend":
        """Let `stage`'s adapter answer the next calls (the base model without one)."""

    @abstractmethod
    def active_parameters(self) -> int:
        """Parameters a forward pass of the active stage uses (base + its adapter)."""

    @abstractmethod
    def weights(self) -> dict:
        """Every loaded parameter and the weights' bytes in memory: {parameters, memory_bytes}."""

    @abstractmethod
    def generate_counted(self, prompts: list[str], max_new_tokens: int, stop: str | None = None,
                         fixed_length: bool = False) -> tuple[list[str], list[int]]:
        """Greedy completions (each ended at `stop` when given) and the tokens each
        row processed (prompt and generated). fixed_length: exactly max_new_tokens
        each, past any stop or end-of-text (a latency measurement)."""

    @abstractmethod
    def choice_probabilities(self, prompts: list[str], choices) -> list[dict[str, float]]:
        """P(choice | prompt) renormalized over the choices; `choices` is one list
        for every prompt, or one list per prompt."""

    def prompt(self, messages: list[dict]) -> str:
        return chat_prompt(self.tokenizer, messages)

    def forget_prefixes(self) -> None:
        """Drop the key/value caches of prompt prefixes kept so far (see Prompt):
        the next call computes its prompts whole, as a cold start would."""

    def generate(self, prompts: list[str], max_new_tokens: int, stop: str | None = None,
                 fixed_length: bool = False) -> list[str]:
        return self.generate_counted(prompts, max_new_tokens, stop, fixed_length)[0]

    def generate_records(self, records: list[dict], max_new_tokens: int) -> list[str]:
        return self.generate([self.prompt(record_messages(r)) for r in records], max_new_tokens)

    def choice_records(self, records: list[dict], choices) -> list[dict[str, float]]:
        return self.choice_probabilities([self.prompt(record_messages(r)) for r in records], choices)

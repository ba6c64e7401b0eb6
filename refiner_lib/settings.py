"""Typed settings, in the style of peft's LoraConfig: frozen, one line of doc per
field, checks across fields in __post_init__. They are built from the validated
config (schemas/config.schema.yaml holds every default), so a field has a
default only where leaving it out means "none of this" (no distillation, no
held-out records). Light: no torch."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path


class SettingsError(ValueError):
    """Settings that contradict each other (the schema checks each value alone)."""


@dataclass(frozen=True)
class LoraSettings:
    """The low-rank update every variant trains (config `training.lora`)."""

    r: int  # rank of the update matrices
    alpha: float  # the update is scaled by alpha / r
    dropout: float  # dropout on the adapter's input while training
    target_modules: tuple[str, ...]  # names of the linear layers that get an update

    def __post_init__(self):
        object.__setattr__(self, "target_modules", tuple(self.target_modules))
        if self.r < 1 or self.alpha <= 0 or not 0 <= self.dropout <= 1 or not self.target_modules:
            raise SettingsError(f"training.lora: r >= 1, alpha > 0, 0 <= dropout <= 1 and a target module "
                                f"are needed, got {self}")


@dataclass(frozen=True)
class Schedule:
    """The optimization every variant runs (config `training.schedule`)."""

    epochs: int  # passes over the training records (capped by max_steps)
    max_steps: int  # optimizer steps; 0: no cap
    batch_size: int  # records per forward pass on each process (per device)
    learning_rate: float  # peak AdamW learning rate (linear warm-up, then linear decay)
    warmup_steps: int  # steps of linear warm-up
    weight_decay: float  # AdamW weight decay
    max_grad_norm: float  # gradient clipping norm
    max_seq_len: int  # a longer record is left out of training
    gradient_accumulation_steps: int = 1  # forward passes summed into one optimizer step
    gradient_checkpointing: bool = False  # recompute activations in backward: less memory, about a third more time
    processes: int = 1  # data-parallel processes (GPUs on one node; CPU processes with gloo)

    def __post_init__(self):
        for name in ("epochs", "batch_size", "gradient_accumulation_steps", "processes"):
            if getattr(self, name) < 1:
                raise SettingsError(f"training.schedule.{name}: must be at least 1, got {getattr(self, name)}")

    @property
    def global_batch(self) -> int:
        """Records per optimizer step, over every process."""
        return self.batch_size * self.gradient_accumulation_steps * self.processes

    def steps_per_epoch(self, records: int) -> int:
        # as Trainer counts: each process' batches, then their groups of accumulation steps (the last may be short)
        batches = -(-records // (self.batch_size * self.processes))
        return -(-batches // self.gradient_accumulation_steps)

    def total_steps(self, records: int) -> int:
        every_epoch = self.steps_per_epoch(records) * self.epochs
        return min(self.max_steps, every_epoch) if self.max_steps else every_epoch


@dataclass(frozen=True)
class Objective:
    """What the student learns from: the teacher's outputs (sft) and, with kd,
    its scores as well (config `training.objective` and `training.distillation`)."""

    kind: str = "sft"  # sft: cross-entropy on the teacher's outputs; kd: plus distillation
    temperature: float | None = None  # kd: softmax temperature of both distributions
    weight: float | None = None  # kd: share of the distillation term in the loss

    def __post_init__(self):
        if self.kind not in ("sft", "kd"):
            raise SettingsError(f"objective: kind must be sft or kd, got '{self.kind}'")
        if self.kind == "kd" and (self.temperature is None or self.temperature <= 0
                                  or self.weight is None or not 0 <= self.weight <= 1):
            raise SettingsError(f"objective: kd needs temperature > 0 and 0 <= weight <= 1, got {self}")

    @property
    def distilled(self) -> bool:
        return self.kind == "kd"


@dataclass(frozen=True)
class Validation:
    """Held-out training records (config `training.validation`)."""

    num_records: int = 0  # records held out of training; 0: none
    every_steps: int = 1  # validation loss every this many steps (and at the last)


@dataclass(frozen=True)
class Quantization:
    """A base model's bitsandbytes quantization (config: a variant's
    `quantization` while training, its `ptq` after training)."""

    bits: int  # 4 (NF4 or FP4) or 8 (LLM.int8)
    quant_type: str | None = None  # 4 bits: nf4 or fp4
    double_quant: bool | None = None  # 4 bits: quantize the quantization constants too
    compute_dtype: str | None = None  # 4 bits: the matmuls' dtype; auto: the run's precision

    def __post_init__(self):
        if self.bits not in (4, 8):
            raise SettingsError(f"quantization: bits must be 4 or 8, got {self.bits}")
        if self.bits == 4 and (self.quant_type not in ("nf4", "fp4") or self.double_quant is None
                               or self.compute_dtype is None):
            raise SettingsError(f"quantization: 4 bits needs quant_type (nf4 or fp4), double_quant and "
                                f"compute_dtype, got {self}")

    @classmethod
    def from_dict(cls, block: "dict | Quantization | None") -> "Quantization | None":
        """None (or an empty block): full precision. A Quantization is kept as it is."""
        if isinstance(block, Quantization) or not block:
            return block or None
        return cls(**block)


@dataclass(frozen=True)
class TrainingSettings:
    """Everything that decides a trained adapter besides its base model and
    records; variants differ only in `quantization`."""

    lora: LoraSettings
    schedule: Schedule
    quantization: Quantization | None  # the base's quantization while training (QLoRA); None: full precision
    seed: int  # Python and torch seeds, and the order of the records
    objective: Objective = field(default_factory=Objective)
    validation: Validation = field(default_factory=Validation)
    precision: str | None = None  # the base's dtype; None or auto: the machine's choice (precision.py)

    @classmethod
    def from_dict(cls, settings: dict) -> "TrainingSettings":
        """From plain values (a rule's params, JSON): lora, schedule, quantization,
        seed, and optionally objective, validation, precision."""
        nested = {"lora": LoraSettings, "schedule": Schedule, "objective": Objective, "validation": Validation}
        values = {name: nested[name](**value) if name in nested else value for name, value in settings.items()
                  if value is not None or name == "quantization"}
        return cls(**{**values, "quantization": Quantization.from_dict(settings.get("quantization"))})

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TrainingOutputs:
    """Where training writes; how often it saves a checkpoint (which changes no result)."""

    adapter_dir: Path  # the trained adapter (PEFT folder)
    loss_csv: Path  # training and validation loss per step
    metrics_path: Path | None = None  # throughput, memory and FLOPs (JSON)
    checkpoint_dir: Path | None = None  # resumable state; None: no checkpoints
    checkpoint_every: int = 0  # steps between checkpoints; 0: none
    tensorboard_dir: Path | None = None  # TensorBoard event files; None: none
    log_every: int = 10  # a progress line in the log every this many steps
    report_to: tuple[str, ...] = ()  # further Trainer integrations, e.g. ("wandb",)

    def as_dict(self) -> dict:
        return {name: str(value) if isinstance(value, Path) else value
                for name, value in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict) -> "TrainingOutputs":
        paths = {"adapter_dir", "loss_csv", "metrics_path", "checkpoint_dir", "tensorboard_dir"}
        return cls(**{name: Path(value) if name in paths and value is not None else value
                      for name, value in values.items()})


@dataclass(frozen=True)
class BackendLimits:
    """What an inference backend takes and gives per call."""

    batch_size: int = 8  # prompts per forward pass
    max_input_tokens: int = 2048  # a longer prompt keeps its last tokens
    max_new_tokens: int = 512  # the longest generation (vLLM sizes its context window with it)


@dataclass(frozen=True)
class BackendSettings:
    """The engine a model is served with (config `precision`, `inference.vllm`)."""

    kind: str = "hf"  # hf: Hugging Face transformers; vllm: vLLM
    precision: str | None = None  # hf: the dtype models load and compute in; None or auto: the machine's choice
    dtype: str | None = None  # vllm: the engine's dtype
    kv_cache_gb: int | None = None  # vllm on a CPU: its KV cache (VLLM_CPU_KVCACHE_SPACE, GiB)

    def __post_init__(self):
        if self.kind not in ("hf", "vllm"):
            raise SettingsError(f"backend: kind must be hf or vllm, got '{self.kind}'")
        if self.kind == "vllm" and (self.dtype is None or self.kv_cache_gb is None):
            raise SettingsError(f"backend: vllm needs dtype and kv_cache_gb (config inference.vllm), got {self}")

    @classmethod
    def from_dict(cls, settings: dict | None) -> "BackendSettings":
        return cls(**settings) if settings else cls()


@dataclass(frozen=True)
class GenerationSettings:
    """How the generator answers (config `generation`)."""

    max_new_tokens: int  # the longest answer
    max_context_tokens: int  # the generator's context window (the `full` baseline is cut to it)
    batch_size: int  # prompts per forward pass in the quality pass
    prompt_allowance_tokens: int  # room beside the context for the instruction, the worked example and the question

    def __post_init__(self):
        if min(self.max_new_tokens, self.max_context_tokens, self.batch_size, self.prompt_allowance_tokens) < 1:
            raise SettingsError(f"generation: every limit must be positive, got {self}")

    @property
    def window(self) -> int:
        """The generator's input limit: the context and the room beside it."""
        return self.max_context_tokens + self.prompt_allowance_tokens


@dataclass(frozen=True)
class TeacherSettings:
    """Who labels the training records (config `teacher`, as one stage's job reads it)."""

    kind: str  # oracle: the data set's annotations; llm: a model with an optional LoRA adapter per stage
    oracle_confidence: float | None = None  # oracle, query analysis: the probability on the annotated label
    adapters: dict = field(default_factory=dict)  # llm: stage -> LoRA adapter (folder or hf: name), or None
    batch_size: int | None = None  # llm: prompts per forward pass
    max_input_tokens: int | None = None  # llm: a longer prompt keeps its last tokens
    max_new_tokens: dict = field(default_factory=dict)  # llm: stage -> generation limit (stages that generate)
    precision: str | None = None  # llm: the model's dtype; None or auto: the machine's choice

    def __post_init__(self):
        if self.kind not in ("oracle", "llm"):
            raise SettingsError(f"teacher: kind must be oracle or llm, got '{self.kind}'")
        if self.oracle_confidence is not None and not 0.5 < self.oracle_confidence <= 1:
            raise SettingsError(f"teacher: 0.5 < oracle_confidence <= 1, got {self.oracle_confidence}")
        if self.kind == "llm" and (self.batch_size is None or self.max_input_tokens is None):
            raise SettingsError(f"teacher: an LLM teacher needs batch_size and max_input_tokens, got {self}")

    def generation_limit(self, stage: str) -> int | None:
        """An LLM teacher's token limit for `stage`; the oracle generates nothing."""
        return self.max_new_tokens[stage] if self.kind == "llm" else None


@dataclass(frozen=True)
class RefinementSettings:
    """LongRefiner's refinement (config `refinement`, as a method's job reads it)."""

    budget_tokens: int | None = None  # the refined context's size in generator tokens; None: `full` (no budget)
    batch_size: int | None = None  # a student's prompts per forward pass (None: no student)
    max_input_tokens: int | None = None  # a student's longer prompt keeps its last tokens (None: no student)
    max_new_tokens: dict = field(default_factory=dict)  # a doc-structuring student's outline limit

    @classmethod
    def from_dict(cls, settings: dict | None) -> "RefinementSettings":
        return cls(**settings) if settings else cls()


@dataclass(frozen=True)
class MethodSettings:
    """What decides one method's refined contexts (the `refine` rule's params):
    its refinement, the local scorer, and a student variant's models."""

    max_context_tokens: int  # the generator's window, to which `full` cuts the retrieved text
    refinement: RefinementSettings = field(default_factory=RefinementSettings)
    local_scorer: dict | None = None  # BM25's k1, b, epsilon (config `retrieval`); None: `full`
    quantization: Quantization | None = None  # a variant's bitsandbytes base while serving (qlora: NF4)
    ptq: Quantization | None = None  # a PTQ variant's quantization of its merged models
    trained_stages: tuple[str, ...] = ()  # the stages a student runs its own models for; () for a baseline
    backend: BackendSettings = field(default_factory=BackendSettings)

    @classmethod
    def from_dict(cls, settings: dict) -> "MethodSettings":
        return cls(max_context_tokens=settings["max_context_tokens"],
                   refinement=RefinementSettings.from_dict(settings.get("refinement")),
                   local_scorer=settings.get("local_scorer"),
                   quantization=Quantization.from_dict(settings.get("quantization")),
                   ptq=Quantization.from_dict(settings.get("ptq")), trained_stages=tuple(settings.get("trained_stages") or ()),
                   backend=BackendSettings.from_dict(settings.get("backend")))

"""Supervised fine-tuning of a LoRA adapter on Alpaca records, in full precision
(`lora`) or on a bitsandbytes-quantized base (`qlora`). Every variant takes the
same records, LoRA settings and schedule; only `quantization` differs."""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
import tempfile
import time
from functools import partial
from pathlib import Path

import torch
from transformers import PrinterCallback, Trainer, TrainerCallback

from . import checkpoint, distillation, launch, packing
from .backend import linear4bit_modules, load_causal_lm
from .precision import resolve as resolve_precision
from .flops import counter as flop_counter
from .errors import InputError
from .jsonl import write_csv, write_json
from .measure import peak_memory_mb
from .models import atomic_dir, load_tokenizer
from .prompts import record_messages
from .settings import LoraSettings, Objective, Quantization, TrainingOutputs, TrainingSettings

LOG = logging.getLogger(__name__)
LOSS_COLUMNS = ["step", "epoch", "loss", "validation_loss", "learning_rate", "grad_norm", "tokens", "seconds"]
# A record longer than max_seq_len is cut, never in a way that hides what it asks:
ANSWER_SHARE = 0.5  # an answer keeps at most this share of the sequence (a document tree can be long)
PROMPT_TAIL_TOKENS = 64  # the prompt's end (the question and the assistant header) is always kept


def encode_record(tokenizer, record: dict, max_length: int) -> tuple[list[int], list[int]] | None:
    """Token ids and labels (-100 on the prompt): the loss covers the answer only.
    A prompt too long for max_length is cut in its input text, never in the answer."""
    prompt = tokenizer.apply_chat_template(record_messages(record), add_generation_prompt=True, tokenize=False)
    full = tokenizer.apply_chat_template(record_messages(record, with_output=True), tokenize=False)
    if not full.startswith(prompt):
        raise InputError("the chat template does not extend the prompt with the answer; cannot mask the prompt")
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(full[len(prompt):].rstrip("\n"), add_special_tokens=False)["input_ids"]
    answer_ids = answer_ids[: int(max_length * ANSWER_SHARE)]
    overflow = len(prompt_ids) + len(answer_ids) - max_length
    if overflow > 0:
        if len(prompt_ids) - overflow <= PROMPT_TAIL_TOKENS:
            return None
        prompt_ids = prompt_ids[: len(prompt_ids) - overflow - PROMPT_TAIL_TOKENS] + prompt_ids[-PROMPT_TAIL_TOKENS:]
    return prompt_ids + answer_ids, [-100] * len(prompt_ids) + answer_ids


def collate(batch: list[tuple], pad_id: int) -> dict:
    """Right-padded tensors of (ids, labels, ...) items; soft targets ride along."""
    input_ids, attention = right_padded([torch.tensor(item[0]) for item in batch], pad_id)
    labels = torch.full_like(input_ids, -100)
    for row, (_, labs, *_) in enumerate(batch):
        labels[row, : len(labs)] = torch.tensor(labs)
    return {"input_ids": input_ids, "labels": labels, "attention_mask": attention, "pad_id": pad_id,
            "soft_targets": [item[2] if len(item) > 2 else None for item in batch]}


def prepare_model(base_dir: str | Path, lora: LoraSettings, quantization: Quantization | None,
                  precision: str | None = None, gradient_checkpointing: bool = False):
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    model = load_causal_lm(base_dir, quantization, precision)
    # non-reentrant checkpointing: gradients reach LoRA weights without the inputs requiring grad
    checkpointing = {"use_reentrant": False}
    if quantization:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing,
                                                gradient_checkpointing_kwargs=checkpointing)
    elif gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=checkpointing)
    config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                        target_modules=list(lora.target_modules), bias="none", task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def answer_loss(model, batch: dict) -> torch.Tensor:
    """Causal-LM loss over the answer tokens."""
    causal_lm = model.get_base_model()
    hidden = causal_lm.get_decoder()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    return answer_loss_from_hidden(causal_lm, hidden, batch["labels"])


def answer_loss_from_hidden(causal_lm, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The answer loss with the output layer computed on the answer positions
    only: with a 49k vocabulary the full logits cost about a fifth of a small
    model's step, and the prompt's logits are never used."""
    targets, keep = labels[:, 1:], predicted_answer(labels)
    logits = causal_lm.get_output_embeddings()(hidden[:, : targets.shape[1]][keep])
    return torch.nn.functional.cross_entropy(logits.float(), targets[keep])


def training_loss(model, batch: dict, objective: Objective | None = None) -> torch.Tensor:
    """SFT: the answer loss. KD: (1 - w) x answer loss + w x T^2 x the mean
    distillation term over the batch (KL to the teacher's Local/Global
    probabilities for DQA, ListNet over the teacher's section scores for ADR)."""
    targets = [(row, t) for row, t in enumerate(batch["soft_targets"]) if t] if objective and \
        objective.distilled else []
    if not targets:
        return answer_loss(model, batch)
    # one row per record, its candidates packed after its answer (packing.py)
    rows = [distillation.packed_row(ids[mask.bool()].tolist(), target)
            for ids, mask, target in zip(batch["input_ids"], batch["attention_mask"], batch["soft_targets"])]
    causal_lm = model.get_base_model()
    input_ids, positions, attention = packing.packed_inputs(rows, batch["pad_id"], causal_lm.config._attn_implementation)
    device = batch["input_ids"].device
    hidden = causal_lm.get_decoder()(input_ids=input_ids.to(device), position_ids=positions.to(device),
                                     attention_mask=attention.to(device)).last_hidden_state
    labels = torch.nn.functional.pad(batch["labels"], (0, input_ids.shape[1] - batch["labels"].shape[1]), value=-100)
    loss = answer_loss_from_hidden(causal_lm, hidden, labels)
    terms = [distillation.loss(distillation.candidate_scores(causal_lm, hidden[row], target, rows[row].reads),
                               target, objective.temperature) for row, target in targets]
    weight = objective.weight
    return (1 - weight) * loss + weight * objective.temperature ** 2 * torch.stack(terms).mean()


def right_padded(rows: list[torch.Tensor], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of token ids as one right-padded tensor and its attention mask."""
    width = max(len(row) for row in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        input_ids[i, : len(row)] = row
        attention[i, : len(row)] = 1
    return input_ids, attention


def learning_rate_at(step: int, total: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * max(0.0, (total - step) / max(1, total - warmup))


@torch.no_grad()
def validation_loss(model, batches: list[dict]) -> float:
    """Mean answer loss per answer token (the same however the records are
    batched) with dropout off, leaving the model ready to train on.
    bitsandbytes (0.50) repacks a Linear4bit's weight into an inference-only CPU
    layout (`_convert_weight_packed_for_cpu`, on AVX512-BF16 CPUs) the first time it
    runs in eval mode without grad, and train() never undoes it: backward then goes
    through gemv_4bit, which has no autograd kernel, so LoRA weights silently lose
    their gradients (or a biased layer crashes). So those layers stay in training
    mode here: their `training` flag gates nothing else, so the loss is computed as
    in training (compute dtype, not the packed bf16 kernel). Unpacking afterwards
    with `_convert_weight_packed_for_cpu_inverse` would be lossy: it requantizes the
    double-quant scales from bf16, drifting the frozen base at every validation.
    (Linear8bitLt only picks its matmul per call from `training`: no lasting state.)"""
    model.eval()
    for module in linear4bit_modules(model):
        module.train()
    try:
        losses = [(answer_loss(model, batch).item(), answer_tokens(batch)) for batch in batches]
    finally:
        model.train()
    return sum(loss * tokens for loss, tokens in losses) / sum(tokens for _, tokens in losses)


def answer_tokens(batch: dict) -> int:
    return int(predicted_answer(batch["labels"]).sum())


def predicted_answer(labels: torch.Tensor) -> torch.Tensor:
    """Which positions predict an answer token (the next one is labelled)."""
    return labels[:, 1:] != -100


SOFT_TARGET = "_soft_target"  # key of a record's teacher distribution, when distilling


def encode_all(tokenizer, records: list[dict], max_length: int) -> list:
    """(ids, labels, soft target or None) per record that fits max_length."""
    encoded = []
    for record in records:
        pair = encode_record(tokenizer, record, max_length)
        if pair:
            target = record.get(SOFT_TARGET)
            encoded.append((*pair, distillation.encode_target(tokenizer, pair[1], target) if target else None))
    return encoded


def train_adapter(base_dir: str | Path, records: list[dict], settings: TrainingSettings, outputs: TrainingOutputs,
                  validation_records: list[dict] | None = None) -> dict:
    """Train with transformers' Trainer, then write the adapter folder, the
    per-step loss CSV and the training metrics JSON, each atomically (on the
    main process of a data-parallel run). With a checkpoint folder, the
    Trainer's state is saved every `outputs.checkpoint_every` steps and a killed
    run resumes from it, only when the records, settings and base model are the
    same (checkpoint.py)."""
    if not records:
        raise InputError("training: no records to train on")
    schedule = settings.schedule
    random.seed(settings.seed)
    torch.manual_seed(settings.seed)  # LoRA's initial weights
    tokenizer = load_tokenizer(base_dir)
    encoded = encode_all(tokenizer, records, schedule.max_seq_len)
    if not encoded:
        raise InputError(f"training: every record is longer than max_seq_len={schedule.max_seq_len}")
    validation = encode_all(tokenizer, validation_records or [], schedule.max_seq_len)
    student = prepare_model(base_dir, settings.lora, settings.quantization, settings.precision,
                            schedule.gradient_checkpointing)
    # the dtype `auto` resolves to on this machine decides the weights, so it is part of the identity
    identity = {**settings.as_dict(), "precision": str(resolve_precision(settings.precision))}
    fingerprint = checkpoint.fingerprint(base_dir, records, validation_records, identity)
    resume = checkpoint.resumable(outputs.checkpoint_dir, fingerprint) if outputs.checkpoint_dir else None
    with contextlib.ExitStack() as stack:
        work_dir = outputs.checkpoint_dir or stack.enter_context(tempfile.TemporaryDirectory(prefix="trainer-"))
        trainer = build_trainer(student, settings, outputs, work_dir, (encoded, validation), tokenizer.pad_token_id,
                                trainer_callbacks(outputs, fingerprint))
        trainer.train(resume_from_checkpoint=str(resume) if resume else None)
        trainer.accelerator.wait_for_everyone()
    if not trainer.is_world_process_zero():
        return {}
    rows = loss_rows(trainer.state.log_history)
    with atomic_dir(outputs.adapter_dir) as staging:
        student.save_pretrained(staging, safe_serialization=True)
    write_csv(outputs.loss_csv, rows, LOSS_COLUMNS)
    metrics = training_metrics(student, rows, schedule.steps_per_epoch(len(encoded)),
                               {"train": len(encoded), "validation": len(validation)}, settings)
    if outputs.metrics_path:
        write_json(outputs.metrics_path, metrics)
    if outputs.checkpoint_dir:
        checkpoint.discard(outputs.checkpoint_dir)
    return metrics


class StudentObjective(torch.nn.Module):
    """The student's training loss as a module's forward pass: Trainer (and
    DistributedDataParallel around it, whose gradient all-reduce is armed by
    its own forward) calls it, and the loss computes the output layer on the
    answer positions only and adds the distillation term (training_loss)."""

    def __init__(self, student, objective: Objective | None):
        super().__init__()
        self.student = student
        self.objective = objective
        placed = getattr(student.get_base_model(), "hf_device_map", None)
        if placed is not None:  # a quantized base where from_pretrained put it: Trainer then leaves it there
            self.hf_device_map = placed

    def forward(self, **batch) -> torch.Tensor:
        return training_loss(self.student, batch, self.objective)


def build_trainer(student, settings: TrainingSettings, outputs: TrainingOutputs, work_dir, datasets: tuple,
                  pad_id: int, callbacks: list) -> "StudentTrainer":
    """The Trainer of one student: `datasets` are the encoded training and
    validation records; `callbacks` include a LiveProgress (it times the steps)."""
    encoded, validation = datasets
    trainer = StudentTrainer(
        model=StudentObjective(student, settings.objective),
        args=trainer_arguments(settings, outputs, work_dir, settings.schedule.total_steps(len(encoded)),
                               validating=bool(validation)),
        train_dataset=encoded, eval_dataset=validation or None, data_collator=partial(collate, pad_id=pad_id),
        callbacks=callbacks,
    )
    trainer.remove_callback(PrinterCallback)  # LiveProgress writes the log's progress lines
    return trainer


VALIDATION_BATCH = 8  # rows per validation forward pass, at least (24 records: 3 passes, not 12)


def trainer_arguments(settings: TrainingSettings, outputs: TrainingOutputs, work_dir, total: int, validating: bool):
    from transformers import TrainingArguments

    schedule = settings.schedule
    checkpoints = bool(outputs.checkpoint_dir and outputs.checkpoint_every)
    return TrainingArguments(
        output_dir=str(work_dir), max_steps=total, per_device_train_batch_size=schedule.batch_size,
        gradient_accumulation_steps=schedule.gradient_accumulation_steps,
        learning_rate=schedule.learning_rate, weight_decay=schedule.weight_decay,
        max_grad_norm=schedule.max_grad_norm, warmup_steps=schedule.warmup_steps, seed=settings.seed, data_seed=settings.seed,
        # the base already loads in the run's precision (precision.py): no autocast on top of it
        bf16=False, fp16=False,
        eval_strategy="steps" if validating else "no", eval_steps=settings.validation.every_steps,
        # no gradients, so no activations kept: validation batches rows more widely than training
        per_device_eval_batch_size=max(VALIDATION_BATCH, schedule.batch_size),
        save_strategy="steps" if checkpoints else "no", save_steps=max(1, outputs.checkpoint_every),
        logging_strategy="steps", logging_steps=1, include_num_input_tokens_seen="non_padding",
        report_to=list(outputs.report_to), disable_tqdm=True, remove_unused_columns=False,
        dataloader_pin_memory=False, ddp_backend=launch.ddp_backend(), use_cpu=launch.cpu_processes(),
        ddp_find_unused_parameters=False,
    )


def trainer_callbacks(outputs: TrainingOutputs, fingerprint: str) -> list:
    callbacks = [LiveProgress(outputs.log_every), CheckpointBookkeeping(fingerprint)]
    if outputs.tensorboard_dir and launch.is_main_process():  # the writer makes its file at once
        from torch.utils.tensorboard import SummaryWriter
        from transformers.integrations import TensorBoardCallback

        callbacks.append(TensorBoardCallback(SummaryWriter(log_dir=str(outputs.tensorboard_dir))))
    return callbacks


class StudentTrainer(Trainer):
    """Trainer with the project's loss, validation, schedule and adapter-only
    checkpoints."""

    # each forward pass' loss is its own mean over answer tokens: Trainer divides it by the accumulation steps
    loss_is_scaled_for_ga = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.flops_per_token = None

    @property
    def student(self):
        return self.accelerator.unwrap_model(self.model).student

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss = model(**inputs)
        return (loss, None) if return_outputs else loss

    def training_step(self, model, inputs, num_items_in_batch=None):
        if self.state.global_step > 0 or self.flops_per_token is not None:
            return super().training_step(model, inputs, num_items_in_batch)
        # the counter's dispatch overhead is large on a CPU: count the first forward and backward only
        counter = flop_counter()
        with counter:
            loss = super().training_step(model, inputs, num_items_in_batch)
        self.flops_per_token = counter.get_total_flops() / int(inputs["attention_mask"].sum())
        return loss

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
        """The mean answer loss over the held-out records, computed so that the
        model can go on training (validation_loss)."""
        records, size = eval_dataset or self.eval_dataset, self.args.per_device_eval_batch_size
        batches = [self.data_collator(records[i:i + size]) for i in range(0, len(records), size)]
        metrics = {f"{metric_key_prefix}_loss": validation_loss(self.student, batches)}
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        """The project's schedule: linear warm-up from peak/warmup (the first
        step learns), then linear decay to zero at the last step."""
        if self.lr_scheduler is None:
            peak, warmup = self.args.learning_rate, min(self.args.warmup_steps or 0, num_training_steps)
            self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(
                optimizer or self.optimizer,
                lambda step: learning_rate_at(step, num_training_steps, peak, warmup) / peak)
        return self.lr_scheduler

    def log(self, logs: dict, start_time: float | None = None) -> None:
        if "loss" in logs:  # a training step's row: the rate it ran at and its own wall time
            step = self.state.global_step - 1
            logs["learning_rate"] = learning_rate_at(step, self.state.max_steps, self.args.learning_rate,
                                                     min(self.args.warmup_steps or 0, self.state.max_steps))
            logs["step_seconds"] = round(self.step_seconds, 4)
            if self.flops_per_token is not None and step == 0:
                logs["flops_per_token"] = self.flops_per_token
        super().log(logs, start_time)

    @property
    def step_seconds(self) -> float:
        return next(c.last_step_seconds for c in self.callback_handler.callbacks if isinstance(c, LiveProgress))

    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        """A checkpoint holds the adapter only, never the frozen base."""
        if self.args.should_save:
            self.student.save_pretrained(output_dir, safe_serialization=True)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        weights = load_file(Path(resume_from_checkpoint) / "adapter_model.safetensors")
        set_peft_model_state_dict(self.student, weights)


class LiveProgress(TrainerCallback):
    """Times each optimizer step (validation and checkpoints left out) and
    writes a progress line to the job's log every `every` steps and at the last."""

    def __init__(self, every: int):
        self.every = max(1, every)
        self.started = 0.0
        self.last_step_seconds = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self.started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.last_step_seconds = time.perf_counter() - self.started

    def on_log(self, args, state, control, logs=None, **kwargs):
        step = state.global_step
        if not state.is_world_process_zero or "loss" not in (logs or {}) or \
                (step % self.every and step != state.max_steps):
            return
        rows = loss_rows(state.log_history)
        seconds = rows[-1]["seconds"]
        tokens = sum(row["tokens"] for row in rows)
        per_step = seconds / len(rows)
        LOG.info("step %d/%d  epoch %.2f  loss %.4f  lr %.2e  %.0f tokens/s  ETA %s", step, state.max_steps,
                 state.epoch or 0.0, logs["loss"], logs["learning_rate"], tokens / max(seconds, 1e-9),
                 _duration(per_step * (state.max_steps - step)))


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes // 60}h{minutes % 60:02d}m{seconds:02d}s" if minutes >= 60 else f"{minutes}m{seconds:02d}s"


class CheckpointBookkeeping(TrainerCallback):
    """After the Trainer has written a checkpoint in full, names it in
    latest.json with the run's fingerprint and removes the older ones, so a
    kill at any moment leaves one usable checkpoint; no checkpoint at the last
    step (the adapter is written then)."""

    def __init__(self, fingerprint: str):
        self.fingerprint = fingerprint

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= state.max_steps:
            control.should_save = False

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            checkpoint.mark_complete(args.output_dir, f"checkpoint-{state.global_step}", self.fingerprint)


def loss_rows(log_history: list[dict]) -> list[dict]:
    """One row per optimizer step from the Trainer's log (which checkpoints
    keep, so a resumed run's rows are whole): its loss, validation loss,
    learning rate, gradient norm, tokens, and training seconds so far."""
    validation = {entry["step"]: entry["eval_loss"] for entry in log_history if "eval_loss" in entry}
    rows, seconds, tokens_seen = [], 0.0, 0
    for entry in (e for e in log_history if "loss" in e):
        seconds += entry["step_seconds"]
        rows.append({"step": entry["step"], "epoch": round(entry["epoch"], 4), "loss": round(entry["loss"], 6),
                     "validation_loss": round(validation[entry["step"]], 6) if entry["step"] in validation else "",
                     "learning_rate": entry["learning_rate"], "grad_norm": round(float(entry["grad_norm"]), 6),
                     "tokens": int(entry["num_input_tokens_seen"]) - tokens_seen, "seconds": round(seconds, 3),
                     "flops_per_token": entry.get("flops_per_token")})
        tokens_seen = int(entry["num_input_tokens_seen"])
    return rows


def training_metrics(model, rows: list[dict], steps_per_epoch: int, record_counts: dict,
                     settings: TrainingSettings) -> dict:
    """Throughput, memory, FLOPs and losses of a finished run; record_counts:
    the records trained on and held out ({train, validation})."""
    seconds = rows[-1]["seconds"]
    flops_per_token = rows[0]["flops_per_token"] or 0.0
    tokens = sum(r["tokens"] for r in rows)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    # num_parameters unpacks 4-bit tensors (two weights per byte); the LoRA weights are not the base's
    base_parameters = model.get_base_model().num_parameters() - trainable
    memory, memory_kind = peak_memory_mb()
    epochs = len(rows) / steps_per_epoch
    # every epoch sees each record once; the last, partial epoch a global batch per step
    full, partial_steps = divmod(len(rows), steps_per_epoch)
    samples = record_counts["train"] * full + min(record_counts["train"], partial_steps * settings.schedule.global_batch)
    return {
        "steps": len(rows), "epochs": round(epochs, 4), "train_records": record_counts["train"],
        "validation_records": record_counts["validation"], "seconds": round(seconds, 3),
        "seconds_per_epoch": round(seconds / epochs, 3), "samples_per_second": round(samples / seconds, 4),
        "tokens_per_second": round(tokens / seconds, 2), "tokens": tokens,
        "global_batch": settings.schedule.global_batch, "processes": settings.schedule.processes,
        "peak_memory_mb": round(memory, 1), "peak_memory_kind": memory_kind,
        # flop_counter on the first step, per token, times every step's tokens
        "flops_measured": int(flops_per_token * tokens), "flops_measured_per_token": round(flops_per_token, 1),
        "flops_analytic_6nd": int(6 * base_parameters * tokens),
        "base_parameters": int(base_parameters),
        "trainable_parameters": int(trainable),
        "final_train_loss": rows[-1]["loss"],
        "final_validation_loss": next((r["validation_loss"] for r in reversed(rows) if r["validation_loss"] != ""), None),
        "quantization": settings.quantization and dataclasses.asdict(settings.quantization),
        "objective": {k: v for k, v in dataclasses.asdict(settings.objective).items() if v is not None},
    }

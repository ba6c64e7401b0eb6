"""Supervised fine-tuning of a LoRA adapter on Alpaca records, in full precision
(`lora`) or on a bitsandbytes-quantized base (`qlora`). Every variant takes the
same records, LoRA settings and schedule; only `quantization` differs."""
from __future__ import annotations

import contextlib
import dataclasses
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import checkpoint, distillation
from .backend import linear4bit_modules, load_causal_lm
from .precision import resolve as resolve_precision
from .flops import counter as flop_counter
from .errors import InputError
from .jsonl import write_csv, write_json
from .measure import peak_memory_mb
from .models import atomic_dir, load_tokenizer
from .prompts import record_messages
from .settings import LoraSettings, Objective, Quantization, TrainingOutputs, TrainingSettings

LOSS_COLUMNS = ["step", "epoch", "loss", "validation_loss", "learning_rate", "tokens", "seconds"]
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
                  precision: str | None = None):
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    model = load_causal_lm(base_dir, quantization, precision)
    if quantization:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
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
    targets = labels[:, 1:]
    keep = targets != -100
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
    # The answer rows and every record's candidate rows go through the decoder
    # in one pass: rows this short cost mostly per-layer overhead, so three
    # passes per step took about three times as long as one.
    candidates = [distillation.candidate_rows(batch["input_ids"][row][: t["prompt_length"]], t) for row, t in targets]
    rows = [ids[mask.bool()] for ids, mask in zip(batch["input_ids"], batch["attention_mask"])]
    rows += [row for group in candidates for row in group]
    input_ids, attention = right_padded(rows, batch["pad_id"])
    causal_lm = model.get_base_model()
    hidden = causal_lm.get_decoder()(input_ids=input_ids, attention_mask=attention).last_hidden_state
    answers = len(batch["input_ids"])
    loss = answer_loss_from_hidden(causal_lm, hidden[:answers], batch["labels"])
    terms, offset = [], answers
    for (_, target), group in zip(targets, candidates):
        scores = distillation.candidate_scores(causal_lm, hidden[offset: offset + len(group)], target)
        terms.append(distillation.loss(scores, target, objective.temperature))
        offset += len(group)
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
    """Mean answer loss with dropout off, leaving the model ready to train on.
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
        losses = [answer_loss(model, batch).item() for batch in batches]
    finally:
        model.train()
    return sum(losses) / len(losses)


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


@dataclass
class Progress:
    """The training loop's state, saved in every checkpoint."""

    step: int = 0
    order: list = field(default_factory=list)  # record indices left in this epoch's shuffled order
    rows: list = field(default_factory=list)  # one loss row per step
    samples: int = 0  # records trained on so far
    seconds: float = 0.0  # time in training steps (validation and checkpoints left out)
    flops_per_token: float = 0.0  # counted on the first step


def train_adapter(base_dir: str | Path, records: list[dict], settings: TrainingSettings, outputs: TrainingOutputs,
                  validation_records: list[dict] | None = None) -> dict:
    """Train, then write the adapter folder, the per-step loss CSV and the
    training metrics JSON, each atomically. With a checkpoint folder, the state is
    saved every `outputs.checkpoint_every` steps and a killed run resumes from it
    (only when the records, settings and base model are the same)."""
    if not records:
        raise InputError("training: no records to train on")
    schedule = settings.schedule
    random.seed(settings.seed)
    torch.manual_seed(settings.seed)
    tokenizer = load_tokenizer(base_dir)
    encoded = encode_all(tokenizer, records, schedule.max_seq_len)
    if not encoded:
        raise InputError(f"training: every record is longer than max_seq_len={schedule.max_seq_len}")
    validation = encode_all(tokenizer, validation_records or [], schedule.max_seq_len)
    validation_batches = [collate(validation[i:i + schedule.batch_size], tokenizer.pad_token_id)
                          for i in range(0, len(validation), schedule.batch_size)]
    model = prepare_model(base_dir, settings.lora, settings.quantization, settings.precision)
    model.train()
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=schedule.learning_rate, weight_decay=schedule.weight_decay)
    steps_per_epoch = math.ceil(len(encoded) / schedule.batch_size)
    total = schedule.total_steps(len(encoded))
    # the dtype `auto` resolves to on this machine decides the weights, so it is part of the identity
    identity = {**settings.as_dict(), "precision": str(resolve_precision(settings.precision))}
    fingerprint = checkpoint.fingerprint(base_dir, records, validation_records, identity)
    progress = Progress()
    if outputs.checkpoint_dir:
        progress = Progress(**(checkpoint.restore(outputs.checkpoint_dir, fingerprint, model, optimizer) or {}))
    while progress.step < total:
        if not progress.order:
            progress.order = list(range(len(encoded)))
            random.Random(settings.seed + progress.step).shuffle(progress.order)
        batch_ids = progress.order[: schedule.batch_size]
        progress.order = progress.order[schedule.batch_size:]
        batch = collate([encoded[i] for i in batch_ids], tokenizer.pad_token_id)
        rate = learning_rate_at(progress.step, total, schedule.learning_rate, min(schedule.warmup_steps, total))
        loss = optimizer_step(model, optimizer, batch, rate, settings, progress)
        progress.samples += len(batch_ids)
        progress.step += 1
        row = {"step": progress.step, "epoch": round(progress.step / steps_per_epoch, 4),
               "loss": round(loss.item(), 6), "learning_rate": rate, "tokens": int(batch["attention_mask"].sum()),
               "seconds": round(progress.seconds, 3), "validation_loss": ""}
        if validation_batches and (progress.step % settings.validation.every_steps == 0 or progress.step == total):
            row["validation_loss"] = round(validation_loss(model, validation_batches), 6)
        progress.rows.append(row)
        if outputs.checkpoint_dir and outputs.checkpoint_every and progress.step % outputs.checkpoint_every == 0 \
                and progress.step < total:
            checkpoint.save(outputs.checkpoint_dir, fingerprint, model, optimizer, dataclasses.asdict(progress))
    with atomic_dir(outputs.adapter_dir) as staging:
        model.save_pretrained(staging, safe_serialization=True)
    write_csv(outputs.loss_csv, progress.rows, LOSS_COLUMNS)
    metrics = training_metrics(model, progress, steps_per_epoch, {"train": len(encoded), "validation": len(validation)},
                               settings)
    if outputs.metrics_path:
        write_json(outputs.metrics_path, metrics)
    if outputs.checkpoint_dir:
        checkpoint.discard(outputs.checkpoint_dir)
    return metrics


def optimizer_step(model, optimizer, batch: dict, rate: float, settings: TrainingSettings,
                   progress: Progress) -> torch.Tensor:
    """One step at learning rate `rate`; its time (and on the first step, its
    FLOPs per token) go into `progress`."""
    for group in optimizer.param_groups:
        group["lr"] = rate
    started = time.perf_counter()
    # the counter's dispatch overhead is large on a CPU: count the first step only
    counter = flop_counter() if progress.step == 0 else contextlib.nullcontext()
    with counter:
        loss = training_loss(model, batch, settings.objective)
        loss.backward()
    if progress.step == 0:
        progress.flops_per_token = counter.get_total_flops() / int(batch["attention_mask"].sum())
    # the optimizer holds exactly the trainable parameters: no walk over the whole model each step
    trainable = [p for group in optimizer.param_groups for p in group["params"]]
    torch.nn.utils.clip_grad_norm_(trainable, settings.schedule.max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    progress.seconds += time.perf_counter() - started
    return loss


def training_metrics(model, progress: Progress, steps_per_epoch: int, record_counts: dict,
                     settings: TrainingSettings) -> dict:
    """Throughput, memory, FLOPs and losses of a finished run; record_counts:
    the records trained on and held out ({train, validation})."""
    rows, seconds, flops_per_token = progress.rows, progress.seconds, progress.flops_per_token
    tokens = sum(r["tokens"] for r in rows)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    # num_parameters unpacks 4-bit tensors (two weights per byte); the LoRA weights are not the base's
    base_parameters = model.get_base_model().num_parameters() - trainable
    memory, memory_kind = peak_memory_mb()
    epochs = len(rows) / steps_per_epoch
    return {
        "steps": len(rows), "epochs": round(epochs, 4), "train_records": record_counts["train"],
        "validation_records": record_counts["validation"], "seconds": round(seconds, 3),
        "seconds_per_epoch": round(seconds / epochs, 3), "samples_per_second": round(progress.samples / seconds, 4),
        "tokens_per_second": round(tokens / seconds, 2), "tokens": tokens,
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

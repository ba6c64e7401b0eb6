"""Supervised fine-tuning of a LoRA adapter on Alpaca records, in full precision
(`lora`) or on a bitsandbytes-quantized base (`qlora`). Every variant takes the
same records, LoRA settings and schedule; only `quantization` differs."""
from __future__ import annotations

import math
import random
import time
from pathlib import Path

import torch

from .backend import load_causal_lm
from .jsonl import InputError, write_csv, write_json
from .models import atomic_dir, load_tokenizer
from .prompts import record_messages

LOSS_COLUMNS = ["step", "epoch", "loss", "learning_rate", "tokens", "seconds"]


def encode_record(tokenizer, record: dict, max_length: int) -> tuple[list[int], list[int]] | None:
    """Token ids and labels (-100 on the prompt): the loss covers the answer only.
    A prompt too long for max_length is cut in its input text, never in the answer."""
    prompt = tokenizer.apply_chat_template(record_messages(record), add_generation_prompt=True, tokenize=False)
    full = tokenizer.apply_chat_template(record_messages(record, with_output=True), tokenize=False)
    if not full.startswith(prompt):
        raise InputError("the chat template does not extend the prompt with the answer; cannot mask the prompt")
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(full[len(prompt):].rstrip("\n"), add_special_tokens=False)["input_ids"]
    answer_ids = answer_ids[: max_length // 2] if len(answer_ids) > max_length // 2 else answer_ids
    overflow = len(prompt_ids) + len(answer_ids) - max_length
    if overflow > 0:
        keep_tail = 64  # the question and the assistant header sit at the end of the prompt
        if len(prompt_ids) - overflow <= keep_tail:
            return None
        prompt_ids = prompt_ids[: len(prompt_ids) - overflow - keep_tail] + prompt_ids[-keep_tail:]
    return prompt_ids + answer_ids, [-100] * len(prompt_ids) + answer_ids


def collate(batch: list[tuple[list[int], list[int]]], pad_id: int) -> dict:
    width = max(len(ids) for ids, _ in batch)
    input_ids = torch.full((len(batch), width), pad_id)
    labels = torch.full((len(batch), width), -100)
    attention = torch.zeros((len(batch), width), dtype=torch.long)
    for row, (ids, labs) in enumerate(batch):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, : len(labs)] = torch.tensor(labs)
        attention[row, : len(ids)] = 1
    return {"input_ids": input_ids, "labels": labels, "attention_mask": attention}


def prepare_model(base_dir: str | Path, lora: dict, quantization: dict | None):
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    model = load_causal_lm(base_dir, quantization)
    if quantization:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    config = LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"],
                        target_modules=list(lora["target_modules"]), bias="none", task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def answer_loss(model, batch: dict) -> torch.Tensor:
    """Causal-LM loss over the answer tokens, computing the output layer on those
    positions only: with a 49k vocabulary the full logits cost about a fifth of
    a small model's step, and the prompt's logits are never used."""
    causal_lm = model.get_base_model()
    hidden = causal_lm.get_decoder()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    targets = batch["labels"][:, 1:]
    keep = targets != -100
    logits = causal_lm.get_output_embeddings()(hidden[:, :-1][keep])
    return torch.nn.functional.cross_entropy(logits.float(), targets[keep])


def learning_rate_at(step: int, total: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * max(0.0, (total - step) / max(1, total - warmup))


def train_adapter(base_dir: str | Path, records: list[dict], adapter_dir: str | Path, loss_csv: str | Path,
                  lora: dict, schedule: dict, quantization: dict | None, seed: int) -> dict:
    """Train, then write the adapter folder and the per-step loss CSV atomically."""
    if not records:
        raise InputError("training: no records to train on")
    random.seed(seed)
    torch.manual_seed(seed)
    tokenizer = load_tokenizer(base_dir)
    encoded = [e for e in (encode_record(tokenizer, r, schedule["max_seq_len"]) for r in records) if e]
    if not encoded:
        raise InputError(f"training: every record is longer than max_seq_len={schedule['max_seq_len']}")
    model = prepare_model(base_dir, lora, quantization)
    model.train()
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=schedule["learning_rate"], weight_decay=schedule["weight_decay"])
    steps_per_epoch = math.ceil(len(encoded) / schedule["batch_size"])
    total = min(schedule["max_steps"], steps_per_epoch * schedule["epochs"]) if schedule["max_steps"] else \
        steps_per_epoch * schedule["epochs"]
    warmup = min(schedule["warmup_steps"], total)
    rows, step, order = [], 0, []
    started = time.perf_counter()
    while step < total:
        if not order:
            order = list(range(len(encoded)))
            random.Random(seed + step).shuffle(order)
        batch_ids, order = order[: schedule["batch_size"]], order[schedule["batch_size"]:]
        batch = collate([encoded[i] for i in batch_ids], tokenizer.pad_token_id)
        rate = learning_rate_at(step, total, schedule["learning_rate"], warmup)
        for group in optimizer.param_groups:
            group["lr"] = rate
        loss = answer_loss(model, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, schedule["max_grad_norm"])
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        rows.append({"step": step, "epoch": round(step / steps_per_epoch, 4), "loss": round(loss.item(), 6),
                     "learning_rate": rate, "tokens": int(batch["attention_mask"].sum()),
                     "seconds": round(time.perf_counter() - started, 3)})
    with atomic_dir(adapter_dir) as staging:
        model.save_pretrained(staging, safe_serialization=True)
        write_json(Path(staging) / "training_summary.json", {
            "records": len(records), "records_used": len(encoded), "steps": total, "seconds": rows[-1]["seconds"],
            "final_loss": rows[-1]["loss"], "quantization": quantization, "lora": lora, "schedule": schedule})
    write_csv(loss_csv, rows, LOSS_COLUMNS)
    return {"steps": total, "final_loss": rows[-1]["loss"]}


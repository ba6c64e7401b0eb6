"""Training cost of the four variants at a real model shape, without trained
weights: a model built from its config (random weights), LoRA on every linear
layer, random token batches. Memory and throughput do not depend on the
weights' values, so this measures what a GPU run of the study would cost.

  python -m refiner_lib.benchmark --shape qwen2.5-0.5b --steps 20 --batch-size 4 --seq-len 512

Prints one row per variant (peak memory, tokens/s, seconds per step) and writes
them as JSON with --output. Peak memory is CUDA max allocated, reset per
variant; on a CPU it is the process' peak RSS so far, so there run one
variant per process (--variants lora). `lora_ptq_int8` / `lora_ptq_int4` train as `lora`
does; their rows add the merged model quantized for inference (weights in memory).
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass

import torch

from .measure import peak_memory_mb
from .settings import Quantization

SHAPES = {  # the published configs' sizes (Qwen2.5 model cards)
    "qwen2.5-0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                         num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                 num_key_value_heads=2, vocab_size=1000, tie_word_embeddings=True),
}
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
NF4 = Quantization(bits=4, quant_type="nf4", double_quant=True, compute_dtype="auto")  # computes in the run's dtype
VARIANTS = {
    "lora": {"train": None, "ptq": None},
    "qlora": {"train": NF4, "ptq": None},
    "lora_ptq_int8": {"train": None, "ptq": Quantization(bits=8)},
    "lora_ptq_int4": {"train": None, "ptq": NF4},
}


def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def reset_peak() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def build(shape: str, quantization: Quantization | None, dtype: torch.dtype, folder: str):
    """The shape's model saved once with random weights, loaded as the variant needs."""
    from pathlib import Path

    from transformers import AutoModelForCausalLM, Qwen2Config

    from .backend import quantization_config

    if not (Path(folder) / "config.json").exists():
        torch.manual_seed(0)
        config = Qwen2Config(**SHAPES[shape], max_position_embeddings=4096)
        AutoModelForCausalLM.from_config(config, dtype=dtype).save_pretrained(folder, safe_serialization=True)
    options = {"dtype": dtype, "use_safetensors": True}
    if quantization:
        options["quantization_config"] = quantization_config(quantization, str(dtype).removeprefix("torch."))
        options["device_map"] = device()
    model = AutoModelForCausalLM.from_pretrained(folder, **options)
    return model if quantization else model.to(device())


@dataclass(frozen=True)
class Workload:
    """The training steps each variant is timed on: random tokens, one shape."""

    steps: int  # timed steps (one more warms up untimed)
    batch_size: int  # sequences per step
    seq_len: int  # tokens per sequence


def train_steps(model, workload: Workload, vocab: int) -> dict:
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if getattr(model, "is_loaded_in_4bit", False):
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=LORA_TARGETS, task_type="CAUSAL_LM"))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    generator = torch.Generator().manual_seed(0)
    timings = []
    for step in range(workload.steps + 1):  # the first step warms up and is not timed
        batch = torch.randint(0, vocab, (workload.batch_size, workload.seq_len), generator=generator).to(device())
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        started = time.perf_counter()
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        if step:
            timings.append(time.perf_counter() - started)
    seconds = sum(timings) / len(timings)
    return {"seconds_per_step": round(seconds, 4),
            "tokens_per_second": round(workload.batch_size * workload.seq_len / seconds, 1),
            "samples_per_second": round(workload.batch_size / seconds, 3)}


def run(shape: str, workload: Workload, dtype_name: str, folder: str, variants: list[str] | None = None) -> list[dict]:
    dtype = getattr(torch, dtype_name)
    rows = []
    for name in variants or list(VARIANTS):
        variant = VARIANTS[name]
        reset_peak()
        model = build(shape, variant["train"], dtype, folder)
        row = {"variant": name, "shape": shape, "dtype": dtype_name, "device": device(),
               **train_steps(model, workload, SHAPES[shape]["vocab_size"])}
        memory, kind = peak_memory_mb()
        row.update(training_peak_memory_mb=round(memory, 1), memory_kind=kind)
        del model
        if variant["ptq"]:
            reset_peak()
            quantized = build(shape, variant["ptq"], dtype, folder)
            row["inference_weights_mb"] = round(quantized.get_memory_footprint() / 2**20, 1)
            del quantized
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="qwen2.5-0.5b")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="bfloat16")
    parser.add_argument("--model-folder", default="benchmark-model")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS))
    parser.add_argument("--output")
    args = parser.parse_args(argv)
    rows = run(args.shape, Workload(args.steps, args.batch_size, args.seq_len), args.dtype, args.model_folder,
               args.variants)
    if args.output:
        with open(args.output, "w") as stream:
            json.dump(rows, stream, indent=1)


if __name__ == "__main__":
    main()

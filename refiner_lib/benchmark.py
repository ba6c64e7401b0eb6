"""Training cost of the study's variants at a real model shape, without trained
weights: a model built from its config (random weights) and random token
records. Memory and throughput do not depend on the weights' values, so this
measures what a GPU run of the study would cost.

  python -m refiner_lib.benchmark --config config/paper.yaml --shape qwen2.5-0.5b --steps 20 --seq-len 512

The step timed is the workflow's own: `training.build_trainer` (transformers'
Trainer, the loss on answer positions only) with the config's LoRA settings,
schedule (per-device batch, gradient accumulation and checkpointing) and
precision, and each variant's quantization; nothing is copied by hand. Prints
one row per variant (peak memory, tokens/s, seconds per optimizer step) and
writes them as JSON with --output. Peak memory is CUDA max allocated, reset per
variant; on a CPU it is the process' peak RSS so far, so there run one variant
per process (--variants lora). A PTQ variant trains as its full-precision
sibling does; its row adds the merged model quantized for inference (weights
in memory).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from . import config as config_module
from .measure import peak_memory_mb
from .settings import Objective, Quantization, TrainingOutputs, TrainingSettings

SHAPES = {  # the published configs' sizes (Qwen2.5 model cards)
    "qwen2.5-0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                         num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                 num_key_value_heads=2, vocab_size=1000, tie_word_embeddings=True),
}
def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def reset_peak() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def shape_model(shape: str, folder: str) -> str:
    """The shape's model with random weights, saved once (in float32: each variant loads it in its own precision)."""
    from transformers import AutoModelForCausalLM, Qwen2Config

    if not (Path(folder) / "config.json").exists():
        torch.manual_seed(0)
        config = Qwen2Config(**SHAPES[shape], max_position_embeddings=4096)
        AutoModelForCausalLM.from_config(config).save_pretrained(folder, safe_serialization=True)
    return folder


@dataclass(frozen=True)
class Workload:
    """The training steps each variant is timed on: random tokens, one shape."""

    steps: int  # timed optimizer steps (one more warms up untimed)
    seq_len: int  # tokens per record
    answer_tokens: int  # of which the loss covers the last this many (the teacher's output)


def random_records(count: int, workload: Workload, vocab: int) -> list[tuple]:
    """(ids, labels, no soft target) as training.encode_all makes them: the prompt masked out."""
    generator = torch.Generator().manual_seed(0)
    prompt = workload.seq_len - workload.answer_tokens
    records = []
    for _ in range(count):
        ids = torch.randint(0, vocab, (workload.seq_len,), generator=generator).tolist()
        records.append((ids, [-100] * prompt + ids[prompt:], None))
    return records


def train_steps(base_dir: str, settings: TrainingSettings, workload: Workload, vocab: int) -> dict:
    """Time `workload.steps` optimizer steps of the workflow's Trainer (after one untimed)."""
    from . import training

    schedule = dataclasses.replace(settings.schedule, epochs=1, max_steps=workload.steps + 1)
    # random tokens carry no teacher scores: the answer loss (a kd step adds the candidates' rows)
    settings = dataclasses.replace(settings, schedule=schedule, objective=Objective())
    student = training.prepare_model(base_dir, settings.lora, settings.quantization, settings.precision,
                                     schedule.gradient_checkpointing)
    records = random_records((workload.steps + 1) * schedule.global_batch, workload, vocab)
    with tempfile.TemporaryDirectory(prefix="benchmark-") as work:
        outputs = TrainingOutputs(Path(work) / "adapter", Path(work) / "loss.csv")
        trainer = training.build_trainer(student, settings, outputs, work, (records, []), 0,
                                         [training.LiveProgress(every=workload.steps + 1)])
        trainer.train()
    rows = training.loss_rows(trainer.state.log_history)
    timed = rows[1:]  # the first step warms up
    seconds = (rows[-1]["seconds"] - rows[0]["seconds"]) / len(timed)
    tokens = sum(row["tokens"] for row in timed) / len(timed)
    return {"seconds_per_step": round(seconds, 4), "tokens_per_second": round(tokens / seconds, 1),
            "samples_per_second": round(schedule.global_batch / seconds, 3), "global_batch": schedule.global_batch}


def run(config: dict, shape: str, workload: Workload, folder: str, variants: list[str] | None = None) -> list[dict]:
    """One row per variant of `config` (a validated config): its training step
    and, for a PTQ variant, its quantized weights' memory."""
    from .backend import load_causal_lm
    from .precision import resolve

    base_dir = shape_model(shape, folder)
    stage = config["training"]["stages"][0]
    rows = []
    for name in variants or list(config["training"]["variants"]):
        trained = config_module.trained_variant(config, name)
        settings = TrainingSettings.from_dict(config_module.student_training(config, stage, trained))
        reset_peak()
        row = {"variant": name, "shape": shape, "precision": str(resolve(settings.precision)).removeprefix("torch."),
               "device": device(), **train_steps(base_dir, settings, workload, SHAPES[shape]["vocab_size"])}
        memory, kind = peak_memory_mb()
        row.update(training_peak_memory_mb=round(memory, 1), memory_kind=kind)
        ptq = config["training"]["variants"][name].get("ptq")
        if ptq:
            reset_peak()
            quantized = load_causal_lm(base_dir, Quantization.from_dict(ptq), settings.precision)
            row["inference_weights_mb"] = round(quantized.get_memory_footprint() / 2**20, 1)
            del quantized
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="config/paper.yaml", help="the study's settings (LoRA, schedule, variants)")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="qwen2.5-0.5b")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--answer-tokens", type=int, default=128)
    parser.add_argument("--model-folder", default="benchmark-model")
    parser.add_argument("--variants", nargs="+")
    parser.add_argument("--output")
    args = parser.parse_args(argv)
    rows = run(config_module.load(args.config), args.shape, Workload(args.steps, args.seq_len, args.answer_tokens),
               args.model_folder, args.variants)
    if args.output:
        with open(args.output, "w") as stream:
            json.dump(rows, stream, indent=1)


if __name__ == "__main__":
    main()

"""How far a query-analysis student's DQA figures move with the training seed
alone. The bootstrap intervals of summary.csv resample questions, not
trainings; this measures the part they leave out. Each seed trains the student
as train_student does (the config's records, LoRA settings, schedule and
variant, the seed also splitting off the held-out records it is calibrated
on), then scores one dataset's eval questions, raw and calibrated.

  .venv/bin/python -m refiner_lib.seed_spread --variant lora --seeds 13 14 15 16

Reads a finished run's model, teacher files and eval questions (`--results`,
`--config`, `--dataset`: the config's first by default); prints one row per
seed: DQA accuracy and mean alpha error (|P(Global) - the teacher's|), raw and
calibrated.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from . import config as config_module
from . import metrics, stages, tasks
from .jsonl import load_jsonl, read_json
from .settings import TrainingOutputs, TrainingSettings

STAGE = "query_analysis"


def seed_row(config: dict, results: Path, dataset: str, variant: str, seed: int, work: Path) -> dict:
    from .backend import HFBackend

    settings = TrainingSettings.from_dict(config_module.student_training(dict(config, seed=seed), STAGE, variant))
    model = results / "models" / config["roles"]["student"]
    adapter = work / f"seed{seed}" / "adapter"
    tasks.train({"model": model, "records": results / "teacher" / STAGE / "train.json",
                 "labels": results / "teacher" / STAGE / "train_labels.jsonl"},
                TrainingOutputs(adapter, work / f"seed{seed}" / "loss.csv"), settings, STAGE)
    backend = HFBackend(model, adapters={STAGE: str(adapter)}, quantization=settings.quantization,
                        precision=settings.precision)
    questions = load_jsonl(results / "datasets" / dataset / "data" / "eval.jsonl")
    teacher = tasks.by_id(load_jsonl(results / "datasets" / dataset / "teacher" / STAGE / "eval_labels.jsonl"))
    row = {"seed": seed}
    for name, calibration in (("raw", None), ("calibrated", read_json(adapter / stages.ANALYSIS_FILE))):
        # one question at a time, as the refiner asks (a batch pads, and moves the last digits)
        analysed = [stages.model_query_analysis(backend, [q], calibration)[0] for q in questions]
        gold = [q.get("label") or teacher[q["id"]]["label"] for q in questions]
        errors = [metrics.alpha_error(a, teacher[q["id"]]) for a, q in zip(analysed, questions)]
        row[f"{name}_dqa_accuracy"] = sum(a["label"] == g for a, g in zip(analysed, gold)) / len(questions)
        row[f"{name}_alpha_error"] = sum(errors) / len(errors)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--results", default=None, help="the run's results folder (default: the config's)")
    parser.add_argument("--dataset", default=None, help="whose eval questions score the students")
    parser.add_argument("--variant", default="lora", help="a trained (not PTQ) variant of the config")
    parser.add_argument("--seeds", type=int, nargs="+", default=[13, 14, 15, 16])
    args = parser.parse_args()
    config = config_module.load(args.config)
    results = Path(args.results or config["results"])
    dataset = args.dataset or next(iter(config["datasets"]))
    print("seed | raw DQA accuracy | raw alpha error | calibrated DQA accuracy | calibrated alpha error")
    with tempfile.TemporaryDirectory() as work:
        for seed in args.seeds:
            row = seed_row(config, results, dataset, args.variant, seed, Path(work))
            print(f"{seed} | {row['raw_dqa_accuracy']:.3f} | {row['raw_alpha_error']:.4f} | "
                  f"{row['calibrated_dqa_accuracy']:.3f} | {row['calibrated_alpha_error']:.4f}", flush=True)


if __name__ == "__main__":
    main()

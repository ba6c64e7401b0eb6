"""How far a student's refinement moves with its training seed alone. The
bootstrap intervals of summary.csv resample questions, not trainings; this
measures the part they leave out. Each seed trains one stage's student as
train_student does (the config's records, LoRA settings, schedule and variant,
the seed also splitting off the held-out records it is calibrated on), then
refines one dataset's eval questions as the run's `refine` job for the variant
did (its saved settings and files, this seed's student in place of the run's).

  .venv/bin/python -m refiner_lib.seed_spread --stage global_selection --variant qlora --seeds 13 14 15 16

Reads a finished run's model, teacher files, eval questions and refine
settings (`--results`, `--config`, `--dataset`: the config's first by
default); prints one row per seed, then each column's mean, standard deviation
and range over the seeds: context answer recall and the stage's own figures
(query analysis: DQA accuracy and alpha error, also before calibration;
global selection: ADR recall and precision, and its ranking AUC).
"""
from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean, stdev

from . import config as config_module
from . import manifest, metrics, stages, tasks
from .errors import InputError
from .jsonl import load_jsonl
from .settings import MethodSettings, TrainingOutputs, TrainingSettings

COLUMNS = {  # the figures per stage, as summary.csv names them
    "query_analysis": ("context_answer_recall", "dqa_accuracy", "dqa_alpha_error",
                       "raw_dqa_accuracy", "raw_dqa_alpha_error"),
    "global_selection": ("context_answer_recall", "adr_recall", "adr_precision", "adr_auc"),
}


@dataclass(frozen=True)
class RunStudent:
    """One student of a finished run: the run's config and results folder, the
    dataset whose eval questions it refines, its stage and its variant."""

    config: dict
    results: Path
    dataset: str
    stage: str
    variant: str

    def training(self, seed: int) -> TrainingSettings:
        return TrainingSettings.from_dict(
            config_module.student_training(dict(self.config, seed=seed), self.stage, self.variant))

    @property
    def base_model(self) -> Path:
        return self.results / "models" / self.config["roles"]["student"]


def train_seed(student: RunStudent, seed: int, work: Path) -> Path:
    """The student trained with `seed`: its adapter folder."""
    adapter = work / f"{student.stage}-{student.variant}-seed{seed}" / "adapter"
    teacher = student.results / "teacher" / student.stage
    tasks.train({"model": student.base_model, "records": teacher / "train.json",
                 "labels": teacher / "train_labels.jsonl"},
                TrainingOutputs(adapter, adapter.parent / "loss.csv"), student.training(seed), student.stage)
    return adapter


def refined_with(student: RunStudent, adapter: Path) -> list[dict]:
    """The eval questions refined as the run refined them for the student's
    variant, with `adapter` in the student's place: the rows of refined/{variant}.jsonl."""
    path = student.results / "datasets" / student.dataset / "refined" / f"{student.variant}.settings.json"
    if not path.exists():
        raise InputError(f"{path}: missing; --variant must be a trained (not PTQ) variant this run refined")
    settings, files = manifest.read(path)
    method = settings.pop("method")
    files[student.stage] = str(adapter)
    spec = tasks.refiner_spec(method, MethodSettings.from_dict(settings), files)
    output = adapter.parent / "refined.jsonl"
    tasks.refine_variant(spec, files["questions"], files["generator"], output)
    return load_jsonl(output)


def raw_analysis(student: RunStudent, adapter: Path, questions: list[dict], teacher: dict) -> dict:
    """A query-analysis student's DQA accuracy and alpha error before
    calibration: what the seed does to its own probabilities."""
    from .backend import HFBackend

    settings = student.training(student.config["seed"])
    backend = HFBackend(student.base_model, adapters={"query_analysis": str(adapter)},
                        quantization=settings.quantization, precision=settings.precision)
    # one question at a time, as the refiner asks (a batch pads, and moves the last digits)
    analysed = [stages.model_query_analysis(backend, [q])[0] for q in questions]
    gold = [q.get("label") or teacher[q["id"]]["label"] for q in questions]
    errors = [metrics.alpha_error(a, teacher[q["id"]]) for a, q in zip(analysed, questions)]
    return {"raw_dqa_accuracy": metrics.mean([float(a["label"] == g) for a, g in zip(analysed, gold)]),
            "raw_dqa_alpha_error": metrics.mean(errors)}


def seed_row(student: RunStudent, seed: int, work: Path) -> dict:
    """One seed's figures (COLUMNS[stage]) over the dataset's eval questions."""
    adapter = train_seed(student, seed, work)
    folder = student.results / "datasets" / student.dataset
    questions = load_jsonl(folder / "data" / "eval.jsonl")
    teacher = tasks.by_id(load_jsonl(folder / "teacher" / "query_analysis" / "eval_labels.jsonl"))
    refined = tasks.by_id(refined_with(student, adapter))
    row = metrics.means([metrics.refinement_metrics(q, refined[q["id"]], teacher.get(q["id"])) for q in questions])
    if student.stage == "query_analysis":
        row.update(raw_analysis(student, adapter, questions, teacher))
    return {"seed": seed, **{column: row[column] for column in COLUMNS[student.stage]}}


def spread(rows: list[dict], columns) -> list[str]:
    """Per column: mean, sample standard deviation and range over the seeds."""
    lines = []
    for column in columns:
        values = [r[column] for r in rows if r[column] is not None]
        if values:
            deviation = stdev(values) if len(values) > 1 else 0.0
            lines.append(f"{column}: mean {fmean(values):.4f}, sd {deviation:.4f}, "
                         f"range {min(values):.4f} to {max(values):.4f} ({len(values)} seeds)")
    return lines


def figure(value) -> str:
    return "" if value is None else f"{value:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--results", default=None, help="the run's results folder (default: the config's)")
    parser.add_argument("--dataset", default=None, help="whose eval questions the students refine")
    parser.add_argument("--stage", default="query_analysis", choices=sorted(COLUMNS))
    parser.add_argument("--variant", default="lora", help="a trained (not PTQ) variant of the config")
    parser.add_argument("--seeds", type=int, nargs="+", default=[13, 14, 15, 16])
    args = parser.parse_args()
    config = config_module.load(args.config)
    if args.stage not in config["training"]["stages"]:
        raise SystemExit(f"--stage {args.stage}: the config trains {config['training']['stages']} only")
    dataset = args.dataset or next(iter(config["datasets"]))
    student = RunStudent(config, Path(args.results or config["results"]), dataset, args.stage, args.variant)
    columns = COLUMNS[args.stage]
    print(" | ".join(("seed",) + columns))
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for seed in args.seeds:
            rows.append(seed_row(student, seed, Path(work)))
            print(" | ".join([str(seed)] + [figure(rows[-1][c]) for c in columns]), flush=True)
    print("\n".join(spread(rows, columns)))


if __name__ == "__main__":
    main()

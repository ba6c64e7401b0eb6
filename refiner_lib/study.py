"""A finished run's per-question results as pandas tables, with no model
loaded: the study browser of the demo app (refiner_lib.demo) and a way to list
the questions on which methods disagree.

    python -m refiner_lib.study results --disagree lora qlora [--dataset NAME]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from .errors import InputError
from .jsonl import load_jsonl, read_json

# the order methods are shown in: the teacher, the paradigms, then the baselines
PREFERRED_ORDER = ("teacher", "lora", "qlora", "lora_ptq_int8", "lora_ptq_int4", "full", "local_only",
                   "selection_only")
# per-question 0/1 metrics that mark an answer right or wrong (or a context as holding the answer)
CORRECTNESS = ("em", "accuracy", "context_answer_recall")


def ordered(methods) -> list[str]:
    rank = {name: index for index, name in enumerate(PREFERRED_ORDER)}
    return sorted(methods, key=lambda m: (rank.get(m.split("@")[0], len(rank)), m))


def dataset_names(results: str | Path) -> list[str]:
    """The datasets a run's results folder holds (results/datasets/NAME)."""
    return sorted(p.name for p in (Path(results) / "datasets").glob("*") if p.is_dir())


def dataset_folder(results: str | Path, dataset: str | None = None) -> Path:
    """One dataset's outputs in a run's results folder (data, retrieval,
    refined, answers, metrics): the named one, or the run's only one."""
    names = dataset_names(results)
    if not names:
        raise InputError(f"{Path(results) / 'datasets'}: no dataset folder (is {results} a finished run's results?)")
    if dataset is None and len(names) > 1:
        raise InputError(f"{results} holds {len(names)} datasets ({', '.join(names)}): name one with --dataset")
    if dataset is not None and dataset not in names:
        raise InputError(f"{results}: no dataset '{dataset}' (it has {', '.join(names)})")
    return Path(results) / "datasets" / (dataset or names[0])


def run_methods(folder: str | Path) -> list[str]:
    """The methods the run evaluated on a dataset (a metrics file each)."""
    return ordered(path.stem for path in (Path(folder) / "metrics").glob("*.json"))


def selection_text(selections: dict | None) -> str:
    if not selections:
        return ""
    return "; ".join(f"{doc}: {', '.join(titles) or '-'}" for doc, titles in selections.items())


def question_table(folder: str | Path) -> pd.DataFrame:
    """One row per (eval question, method) of a dataset (its folder, from
    dataset_folder): the question, its golden answers, the method's DQA label
    and P(Global), its selections, its refined context's size and answer
    recall, its answer and the per-question metrics."""
    results = Path(folder)
    questions = pd.DataFrame(load_jsonl(results / "data" / "eval.jsonl"))[["id", "question", "golden_answers"]]
    frames = []
    for method in run_methods(results):
        metrics = pd.DataFrame(read_json(results / "metrics" / f"{method}.json")["per_question"])
        refined = pd.DataFrame(load_jsonl(results / "refined" / f"{method}.jsonl"))
        answers = pd.DataFrame(load_jsonl(results / "answers" / f"{method}.jsonl"))[["id", "prediction", "generation"]]
        outputs = pd.DataFrame({
            "id": refined["id"],
            "label": refined.get("label"),
            "p_global": [round(p["Global"], 3) if isinstance(p, dict) else None
                         for p in refined.get("probabilities", pd.Series([None] * len(refined)))],
            "selection": [selection_text(s if isinstance(s, dict) else None)
                          for s in refined.get("selections", pd.Series([None] * len(refined)))],
        })
        frame = metrics.drop(columns=[c for c in ("label",) if c in metrics]).merge(outputs, on="id").merge(answers, on="id")
        frames.append(frame.assign(method=method))
    table = questions.merge(pd.concat(frames, ignore_index=True), on="id")
    table["golden_answers"] = table["golden_answers"].map(" | ".join)
    return table


def disagreements(table: pd.DataFrame, metric: str = "em", methods: list[str] | None = None) -> pd.DataFrame:
    """The questions on which the chosen methods are not all right or all wrong."""
    chosen = table[table["method"].isin(methods)] if methods else table
    spread = chosen.groupby("id")[metric].nunique()
    return chosen[chosen["id"].isin(spread[spread > 1].index)]


# what a method's cell may show, beside its mark
CELL_FIELDS = ("prediction", "label", "p_global", "selection", "context_tokens", "generation")


def answers_side_by_side(table: pd.DataFrame, metric: str = "em", field: str = "prediction") -> pd.DataFrame:
    """One row per question, one column per method: its answer (or another
    field of its outputs), marked by `metric` (✓ for 1)."""
    marked = table.assign(cell=[f"{'✓' if value == 1 else '✗'} {'' if shown is None or shown != shown else shown}"
                                for value, shown in zip(table[metric], table[field])])
    wide = marked.pivot(index=["id", "question", "golden_answers"], columns="method", values="cell")
    return wide[ordered(wide.columns)].reset_index()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", default="results")
    parser.add_argument("--dataset", help="which dataset of the run (needed when it has several)")
    parser.add_argument("--metric", choices=CORRECTNESS, default="em")
    parser.add_argument("--disagree", nargs="*", metavar="METHOD",
                        help="only questions where these methods (all when none are named) disagree")
    args = parser.parse_args(argv)
    table = question_table(dataset_folder(args.results, args.dataset))
    if args.disagree is not None:
        table = disagreements(table, args.metric, args.disagree or None)
    print(answers_side_by_side(table, args.metric).to_string(index=False) if len(table) else "no such questions")


if __name__ == "__main__":
    main()

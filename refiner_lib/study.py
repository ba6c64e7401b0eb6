"""A finished run's per-question results as pandas tables, with no model
loaded: the study browser of the demo app (refiner_lib.demo) and a way to list
the questions on which methods disagree.

    python -m refiner_lib.study results --disagree lora qlora
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from .jsonl import load_jsonl, read_json

# the order methods are shown in: the teacher, the paradigms, then the baselines
PREFERRED_ORDER = ("teacher", "lora", "qlora", "lora_ptq_int8", "lora_ptq_int4", "full", "local_only",
                   "selection_only")
# per-question 0/1 metrics that mark an answer right or wrong (or a context as holding the answer)
CORRECTNESS = ("em", "accuracy", "context_answer_recall")


def ordered(methods) -> list[str]:
    rank = {name: index for index, name in enumerate(PREFERRED_ORDER)}
    return sorted(methods, key=lambda m: (rank.get(m.split("@")[0], len(rank)), m))


def run_methods(results: str | Path) -> list[str]:
    """The methods the run evaluated (a metrics file each)."""
    return ordered(path.stem for path in (Path(results) / "metrics").glob("*.json"))


def selection_text(selections: dict | None) -> str:
    if not selections:
        return ""
    return "; ".join(f"{doc}: {', '.join(titles) or '-'}" for doc, titles in selections.items())


def question_table(results: str | Path) -> pd.DataFrame:
    """One row per (eval question, method): the question, its golden answers,
    the method's DQA label and P(Global), its selections, its refined context's
    size and answer recall, its answer and the per-question metrics."""
    results = Path(results)
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
    parser.add_argument("--metric", choices=CORRECTNESS, default="em")
    parser.add_argument("--disagree", nargs="*", metavar="METHOD",
                        help="only questions where these methods (all when none are named) disagree")
    args = parser.parse_args(argv)
    table = question_table(args.results)
    if args.disagree is not None:
        table = disagreements(table, args.metric, args.disagree or None)
    print(answers_side_by_side(table, args.metric).to_string(index=False) if len(table) else "no such questions")


if __name__ == "__main__":
    main()

"""The study's tables, as pandas DataFrames: one summary row per dataset and
variant (quality with 95% bootstrap intervals, and inference cost) and, over
several datasets, their average; paired comparisons of each variant against
reference methods; one training row per (stage, variant). CSV, Markdown and
HTML are written from them."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .metrics import QUALITY_METRICS
from .statistics import ALPHA, is_significant, macro_paired_comparison, stratified_interval

# per-question key -> summary column, for every mean reported with an interval
INTERVAL_METRICS = {**QUALITY_METRICS, "compression": "compression"}
SEED = 0  # one fixed seed: the same metric files give the same intervals and p-values
RESAMPLES = 10000


def with_interval_columns(column: str) -> list[str]:
    return [column, f"{column}_ci_low", f"{column}_ci_high"]


COST_COLUMNS = [
    "refiner_parameters", "generator_parameters",
    "refine_latency_mean_s", "refine_latency_p50_s", "refine_latency_p95_s",
    "generate_latency_mean_s", "generate_latency_p50_s", "generate_latency_p95_s",
    "refine_peak_memory_mb", "generate_peak_memory_mb", "refiner_memory_mb",
    "refine_flops_per_query", "generate_flops_per_query", "adapter_mb", "refiner_disk_mb",
]
SUMMARY_COLUMNS = [
    "dataset", "variant", "questions",
    *(name for column in QUALITY_METRICS.values() for name in with_interval_columns(column)),
    "context_tokens", "empty_contexts", *with_interval_columns("compression"), *COST_COLUMNS,
]
PAIRED_COLUMNS = ["dataset", "variant", "reference", "metric", "n", "difference", "ci_low", "ci_high", "p_value", "significant"]
# over several datasets: each variant's row of all of them
AVERAGE = "average"
# cost columns of an average row: the mean over datasets, or for sizes the largest
LARGEST = {"refiner_parameters", "generator_parameters", "refine_peak_memory_mb", "generate_peak_memory_mb",
           "refiner_memory_mb", "adapter_mb", "refiner_disk_mb"}
AVERAGED_COSTS = ["context_tokens", "empty_contexts", *COST_COLUMNS]
LONG_FORM = ("str_em", "rouge_l")  # shown where a dataset is scored with them
MB = 2**20
METRIC_TITLES = {
    "em": "EM", "f1": "F1", "accuracy": "accuracy", "str_em": "STR-EM", "rouge_l": "ROUGE-L", "context_answer_recall": "context answer recall",
    "dqa_accuracy": "DQA accuracy", "dqa_alpha_error": "DQA alpha error", "adr_recall": "ADR recall", "adr_precision": "ADR precision",
    "adr_auc": "ADR ranking AUC", "compression": "compression",
}


def format_interval(row: dict, column: str) -> str:
    """`0.412 [0.35, 0.47]`: the mean and its 95% interval; empty where the metric does not apply."""
    if blank_nan(row.get(column)) is None:  # a DataFrame's row holds NaN where a dict held None
        return ""
    return f"{row[column]:.3f} [{row[f'{column}_ci_low']:.2f}, {row[f'{column}_ci_high']:.2f}]"


def interval_cell(column: str):
    return lambda row: format_interval(row, column)


# (title, column or function of a row) for the markdown tables
INFERENCE_TABLE = [
    ("variant", "variant"), ("refiner parameters", "refiner_parameters"), ("EM", interval_cell("em")),
    ("F1", interval_cell("f1")), ("accuracy", interval_cell("accuracy")),
    ("refine latency mean / p50 / p95 (s)",
     lambda r: " / ".join(format_value(r.get(f"refine_latency_{k}_s")) for k in ("mean", "p50", "p95"))),
    ("generate latency mean / p95 (s)",
     lambda r: " / ".join(format_value(r.get(f"generate_latency_{k}_s")) for k in ("mean", "p95"))),
    ("refine peak memory (MB)", "refine_peak_memory_mb"), ("refiner weights in memory (MB)", "refiner_memory_mb"),
    ("refine FLOPs / query", "refine_flops_per_query"), ("refiner size on disk (MB)", "refiner_disk_mb"),
    ("adapters (MB)", "adapter_mb"),
]
REFINEMENT_TABLE = [
    ("variant", "variant"),
    *((METRIC_TITLES[c], interval_cell(c))
      for c in ("context_answer_recall", "adr_recall", "adr_precision", "adr_auc", "dqa_accuracy", "dqa_alpha_error")),
    ("context tokens", "context_tokens"), ("empty contexts", "empty_contexts"),
    ("compression", interval_cell("compression")),
]
PAIRED_TABLE = [
    ("variant", "variant"), ("reference", "reference"), ("metric", lambda r: METRIC_TITLES[r["metric"]]),
    ("questions", "n"), ("difference [95% interval]", lambda r: difference_text(r, digits=3)),
    ("p", lambda r: p_value_text(r["p_value"])), ("significant", lambda r: "yes" if r["significant"] else ""),
]
TRAINING_TABLE = [
    ("stage", "stage"), ("variant", "variant"), ("peak memory (MB)", "peak_memory_mb"),
    ("memory kind", "peak_memory_kind"), ("samples/s", "samples_per_second"), ("tokens/s", "tokens_per_second"),
    ("s / epoch", "seconds_per_epoch"), ("FLOPs (measured)", "flops_measured"), ("FLOPs (6·N·tokens)", "flops_analytic_6nd"),
    ("trainable parameters", "trainable_parameters"), ("final train loss", "final_train_loss"),
    ("final validation loss", "final_validation_loss"),
]


def cost_columns(refine_cost: dict, generate_cost: dict) -> dict:
    columns = {"refiner_parameters": refine_cost["refiner_parameters"],
               "generator_parameters": generate_cost["generator_parameters"]}
    for step, cost in (("refine", refine_cost), ("generate", generate_cost)):
        for statistic in ("mean", "p50", "p95"):
            columns[f"{step}_latency_{statistic}_s"] = cost["latency_seconds"][statistic]
        columns[f"{step}_peak_memory_mb"] = cost["peak_memory_mb"]
    columns.update(refiner_memory_mb=refine_cost["refiner_memory_bytes"] / MB,
                   adapter_mb=refine_cost["adapter_bytes"] / MB, refiner_disk_mb=refine_cost["refiner_disk_bytes"] / MB)
    return columns


def training_row(path, metrics: dict) -> dict:
    """students/STAGE/VARIANT/metrics.json -> a row naming its stage and variant."""
    folder = Path(path).parent
    return {"stage": folder.parent.name, "variant": folder.name, **metrics}


def format_value(value) -> str:
    if blank_nan(value) is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) >= 1e4 else f"{value:.4f}"
    if isinstance(value, int) and abs(value) >= 10**6:
        return f"{value:.3e}"
    return str(value)


def csv_text(frame: pd.DataFrame, columns: list[str]) -> str:
    """A table as CSV, every number formatted by format_value (blank where a metric does not apply)."""
    return frame.reindex(columns=columns).map(lambda v: format_value(blank_nan(v))).to_csv(index=False)


def per_question_values(document: dict, key: str) -> dict[str, float]:
    """Question id -> value, for the questions the metric applies to."""
    return {q["id"]: q[key] for q in document["per_question"] if q.get(key) is not None}


def question_frame(documents: list[dict]) -> pd.DataFrame:
    """Every per-question result of the run: one row per (dataset, variant, question)."""
    frames = [pd.DataFrame(d["per_question"]).assign(dataset=dataset_of(d), variant=d["summary"]["variant"])
              for d in documents]
    return pd.concat(frames, ignore_index=True)


def dataset_of(document: dict) -> str:
    return document["summary"].get("dataset") or ""


def interval_columns(groups: list[np.ndarray], column: str) -> dict:
    """The mean of the groups' means and its 95% interval; blank without values."""
    if not groups:
        return {column: None, f"{column}_ci_low": None, f"{column}_ci_high": None}
    low, high = stratified_interval(groups, resamples=RESAMPLES, seed=SEED)
    return {column: float(np.mean([g.mean() for g in groups])), f"{column}_ci_low": low, f"{column}_ci_high": high}


def metric_groups(questions: pd.DataFrame, key: str) -> list[np.ndarray]:
    """A metric's values per dataset, in the run's order of datasets (those it applies to)."""
    if key not in questions:
        return []
    groups = [group[key].dropna().to_numpy(dtype=float) for _, group in questions.groupby("dataset", sort=False)]
    return [group for group in groups if group.size]


def summary_frame(documents: list[dict]) -> pd.DataFrame:
    """One row per (dataset, variant): its summary (costs untouched) with each
    per-question mean and its 95% interval; with several datasets, one
    `average` row per variant after them (each dataset counts once)."""
    questions = question_frame(documents)
    rows = []
    for document in documents:
        own = questions[(questions["dataset"] == dataset_of(document)) &
                        (questions["variant"] == document["summary"]["variant"])]
        row = {"dataset": dataset_of(document), **document["summary"]}
        for key, column in INTERVAL_METRICS.items():
            row.update(interval_columns(metric_groups(own, key), column))
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame["dataset"].nunique() > 1:
        frame = pd.concat([frame, average_frame(questions, frame)], ignore_index=True)
    return frame.reindex(columns=SUMMARY_COLUMNS)


def average_frame(questions: pd.DataFrame, per_dataset: pd.DataFrame) -> pd.DataFrame:
    """Per variant, every dataset counting once: quality means over the datasets a
    metric applies to (questions resampled within each dataset for the
    interval); costs and sizes averaged, peak memories and parameters the largest."""
    rows = []
    for variant, own in questions.groupby("variant", sort=False):
        row = {"dataset": AVERAGE, "variant": variant, "questions": len(own)}
        for key, column in INTERVAL_METRICS.items():
            row.update(interval_columns(metric_groups(own, key), column))
        rows.append(row)
    costs = per_dataset.groupby("variant", sort=False).agg(
        {column: ("max" if column in LARGEST else "mean") for column in AVERAGED_COSTS if column in per_dataset})
    return pd.DataFrame(rows).merge(costs, left_on="variant", right_index=True, how="left")


def paired_frame(documents: list[dict], references: tuple[str, ...] = ("lora", "teacher")) -> pd.DataFrame:
    """Every other variant against each reference present, per quality metric
    both have on common questions: per dataset, then (with several) over all
    of them, each counting once. A pair already compared the other way round
    (teacher against lora) is not repeated."""
    datasets = list(dict.fromkeys(dataset_of(d) for d in documents))
    scopes = [(name, [d for d in documents if dataset_of(d) == name]) for name in datasets]
    if len(datasets) > 1:
        scopes.append((AVERAGE, documents))
    rows = [{"dataset": name, **row} for name, scope in scopes for row in paired_rows(scope, references)]
    return pd.DataFrame(rows, columns=PAIRED_COLUMNS)


def paired_rows(documents: list[dict], references: tuple[str, ...] = ("lora", "teacher")) -> list[dict]:
    """The paired comparisons among `documents`; several datasets are compared
    as their average (statistics.macro_paired_comparison)."""
    by_variant: dict[str, list[dict]] = {}
    for document in documents:
        by_variant.setdefault(document["summary"]["variant"], []).append(document)
    present = [r for r in references if r in by_variant]
    rows = []
    for position, reference in enumerate(present):
        for variant, own in by_variant.items():
            if variant == reference or variant in present[:position]:
                continue
            for key, column in QUALITY_METRICS.items():
                pairs = [(per_question_values(mine, key), per_question_values(theirs, key))
                         for mine, theirs in matched(own, by_variant[reference])]
                if not any(a.keys() & b.keys() for a, b in pairs):
                    continue
                comparison = macro_paired_comparison(pairs, resamples=RESAMPLES, seed=SEED)
                rows.append({"variant": variant, "reference": reference, "metric": column, **comparison,
                             "significant": is_significant(comparison)})
    return rows


def matched(mine: list[dict], theirs: list[dict]) -> list[tuple[dict, dict]]:
    """A variant's and a reference's documents of the same dataset."""
    by_dataset = {dataset_of(d): d for d in theirs}
    return [(d, by_dataset[dataset_of(d)]) for d in mine if dataset_of(d) in by_dataset]


def difference_text(row: dict, digits: int = 2) -> str:
    """`+0.050 [+0.010, +0.090]`, with more digits where a bound would round to 0 and hide its side."""
    while digits < 4 and any(round(row[k], digits) == 0 and row[k] != 0 for k in ("ci_low", "ci_high")):
        digits += 1
    return f"{row['difference']:+.{digits}f} [{row['ci_low']:+.{digits}f}, {row['ci_high']:+.{digits}f}]"


def p_value_text(p_value: float) -> str:
    """Two significant digits; more where rounding would carry p across ALPHA (0.0499 is not 0.05)."""
    text = f"{p_value:.2g}"
    return text if (float(text) < ALPHA) == (p_value < ALPHA) else f"{p_value:.6g}"


def significance_paragraph(paired: list[dict]) -> str:
    """In words: which differences are significant at 95%, and that the rest are not."""
    if not paired:
        return "No paired comparison: neither reference method was evaluated."
    sizes = sorted({r["n"] for r in paired})
    questions = f"{sizes[0]}" if len(sizes) == 1 else f"{sizes[0]} to {sizes[-1]}"
    significant = [f"{r['variant']} vs {r['reference']}: {METRIC_TITLES[r['metric']]} {difference_text(r)}, "
                   f"p={p_value_text(r['p_value'])}" for r in paired if r["significant"]]
    rule = ("the paired bootstrap interval excludes 0 and the sign-flip permutation test gives p < 0.05; "
            f"no correction for the {len(paired)} comparisons")
    if not significant:
        return (f"No difference is significant at 95% ({rule}): none is distinguishable from zero "
                f"with {questions} questions.")
    sentences = [f"Significant at 95% ({rule}): " + "; ".join(significant) + "."]
    if len(significant) < len(paired):
        sentences.append(f"All other differences are not distinguishable from zero with {questions} questions.")
    return " ".join(sentences)


def display(frame: pd.DataFrame, columns: list) -> pd.DataFrame:
    """The cells a reader sees: (title, column or function of a row) per column."""
    records = frame.to_dict("records")
    return pd.DataFrame({title: [column(r) if callable(column) else format_value(blank_nan(r.get(column)))
                                 for r in records] for title, column in columns})


def blank_nan(value):
    return None if isinstance(value, float) and np.isnan(value) else value


def markdown_table(frame: pd.DataFrame, columns: list) -> str:
    if frame.empty:
        return "(none)"
    return display(frame, columns).to_markdown(index=False, disable_numparse=True)


def datasets_in(summary: pd.DataFrame) -> list[str]:
    return [name for name in dict.fromkeys(summary["dataset"]) if name != AVERAGE]


def markdown(summary: pd.DataFrame, training: pd.DataFrame, paired: pd.DataFrame) -> str:
    """summary.md: the tables (per dataset, and their average where there are
    several) and, in words, which differences are significant."""
    many = len(datasets_in(summary)) > 1
    inference = [("dataset", "dataset")] * many + INFERENCE_TABLE + [(METRIC_TITLES[c], interval_cell(c))
                                                                     for c in LONG_FORM if summary[c].notna().any()]
    refinement = [("dataset", "dataset")] * many + REFINEMENT_TABLE
    comparisons = [("dataset", "dataset")] * many + PAIRED_TABLE
    scope = (f"over the {len(datasets_in(summary))} datasets ({', '.join(datasets_in(summary))}), one row per "
             "dataset and variant, then each variant's `average` over the datasets, each dataset counting once "
             "(a metric over the datasets it applies to; questions resampled within each dataset)") if many else \
        f"on dataset `{datasets_in(summary)[0]}`"
    parts = ["# Summary", "", f"Every figure is {scope}.", "", "## Quality and inference cost per variant", "",
             markdown_table(summary, inference), "",
             "Quality: mean over the eval questions [95% percentile bootstrap interval, questions resampled]. "
             "Latency: per question, after warm-up questions that are not timed; refiner (the student's stages "
             "and LongRefiner's scoring) and generator apart. FLOPs: 2 x parameters used x tokens processed. "
             "Every column is in `summary.csv`.", "",
             "## Refinement quality per variant", "", markdown_table(summary, refinement), "",
             "Context answer recall: share of questions whose refined context contains a golden answer. "
             "ADR recall / precision: over the questions with gold sections. ADR ranking AUC: the chance that "
             "a student scores a gold section above another section of the retrieved documents, before the "
             "threshold it selects by. Compression: refined context tokens / retrieved tokens.", "",
             "## Paired differences against the references", "", markdown_table(paired, comparisons), "",
             "Difference: variant - reference over the questions both answer, with its paired bootstrap 95% "
             "interval; p: two-sided sign-flip permutation test. Every row is in `paired.csv`. Intervals and "
             "tests resample questions for one training of each student: what the training seed moves is not "
             "in them (`python -m refiner_lib.seed_spread` measures it).", ""]
    for name in ([AVERAGE] if many else []) + datasets_in(summary):
        rows = paired[paired["dataset"] == name].to_dict("records")
        label = "Over all datasets" if name == AVERAGE else f"On {name}" if many else ""
        parts += [f"{label}: {significance_paragraph(rows)}" if label else significance_paragraph(rows), ""]
    parts += ["## Training cost per stage and variant", "", markdown_table(training, TRAINING_TABLE), ""]
    return "\n".join(parts)


def html(summary: pd.DataFrame, paired: pd.DataFrame) -> str:
    """summary.html: the summary and paired tables as the reader sees them in summary.md."""
    columns = [("dataset", "dataset")] + INFERENCE_TABLE + REFINEMENT_TABLE[1:] + \
        [(METRIC_TITLES[c], interval_cell(c)) for c in LONG_FORM]
    return "\n".join(["<!DOCTYPE html>", "<html><head><meta charset='utf-8'><title>longrefiner-quant summary</title>"
                      "</head><body>", "<h1>Quality, refinement and cost per dataset and variant</h1>",
                      display(summary, columns).to_html(index=False, na_rep=""),
                      "<h1>Paired differences against the references</h1>",
                      display(paired, [("dataset", "dataset")] + PAIRED_TABLE).to_html(index=False, na_rep=""),
                      "</body></html>", ""])

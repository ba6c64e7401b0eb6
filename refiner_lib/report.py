"""The study's tables: one summary row per variant (quality with 95% bootstrap
intervals, and inference cost), paired comparisons of each variant against
reference methods, and one training row per (stage, variant)."""
from __future__ import annotations

from pathlib import Path

from .metrics import QUALITY_METRICS
from .statistics import ALPHA, bootstrap_interval, is_significant, paired_comparison

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
    "variant", "questions",
    *(name for column in QUALITY_METRICS.values() for name in with_interval_columns(column)),
    "context_tokens", "empty_contexts", *with_interval_columns("compression"), *COST_COLUMNS,
]
PAIRED_COLUMNS = ["variant", "reference", "metric", "n", "difference", "ci_low", "ci_high", "p_value", "significant"]
MB = 2**20
METRIC_TITLES = {
    "em": "EM", "f1": "F1", "accuracy": "accuracy", "context_answer_recall": "context answer recall",
    "dqa_accuracy": "DQA accuracy", "adr_recall": "ADR recall", "adr_precision": "ADR precision",
    "compression": "compression",
}


def format_interval(row: dict, column: str) -> str:
    """`0.412 [0.35, 0.47]`: the mean and its 95% interval; empty where the metric does not apply."""
    if row.get(column) is None:
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
      for c in ("context_answer_recall", "adr_recall", "adr_precision", "dqa_accuracy")),
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
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) >= 1e4 else f"{value:.4f}"
    if isinstance(value, int) and abs(value) >= 10**6:
        return f"{value:.3e}"
    return str(value)


def table(rows: list[dict], columns: list) -> list[str]:
    lines = ["| " + " | ".join(title for title, _ in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [column(row) if callable(column) else format_value(row.get(column)) for _, column in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def per_question_values(document: dict, key: str) -> dict[str, float]:
    """Question id -> value, for the questions the metric applies to."""
    return {q["id"]: q[key] for q in document["per_question"] if q.get(key) is not None}


def summary_row(document: dict) -> dict:
    """The document's summary (costs untouched) with each per-question mean and its 95% interval."""
    row = dict(document["summary"])
    for key, column in INTERVAL_METRICS.items():
        values = list(per_question_values(document, key).values())
        low, high = bootstrap_interval(values, resamples=RESAMPLES, seed=SEED) if values else (None, None)
        row.update({column: sum(values) / len(values) if values else None,
                    f"{column}_ci_low": low, f"{column}_ci_high": high})
    return row


def summary_rows(documents: list[dict]) -> list[dict]:
    return [summary_row(d) for d in documents]


def paired_rows(documents: list[dict], references: tuple[str, ...] = ("lora", "teacher")) -> list[dict]:
    """Every other variant against each reference present, per quality metric
    both have on common questions. A pair already compared the other way round
    (teacher against lora) is not repeated."""
    by_variant = {d["summary"]["variant"]: d for d in documents}
    present = [r for r in references if r in by_variant]
    rows = []
    for position, reference in enumerate(present):
        for variant, document in by_variant.items():
            if variant == reference or variant in present[:position]:
                continue
            for key, column in QUALITY_METRICS.items():
                a, b = per_question_values(document, key), per_question_values(by_variant[reference], key)
                if not a.keys() & b.keys():
                    continue
                comparison = paired_comparison(a, b, resamples=RESAMPLES, seed=SEED)
                rows.append({"variant": variant, "reference": reference, "metric": column, **comparison,
                             "significant": is_significant(comparison)})
    return rows


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


def markdown(rows: list[dict], training_rows: list[dict], paired: list[dict] = ()) -> str:
    parts = ["# Summary", "", "## Quality and inference cost per variant", "",
             *table(rows, INFERENCE_TABLE), "",
             "Quality: mean over the eval questions [95% percentile bootstrap interval, questions resampled]. "
             "Latency: per question, after warm-up questions that are not timed; refiner (the student's stages "
             "and LongRefiner's scoring) and generator apart. FLOPs: 2 x parameters used x tokens processed. "
             "Every column is in `summary.csv`.", "",
             "## Refinement quality per variant", "", *table(rows, REFINEMENT_TABLE), "",
             "Context answer recall: share of questions whose refined context contains a golden answer. "
             "ADR recall / precision: over the questions with gold sections. Compression: refined context "
             "tokens / retrieved tokens.", "",
             "## Paired differences against the references", "", *table(list(paired), PAIRED_TABLE), "",
             "Difference: variant - reference over the questions both answer, with its paired bootstrap 95% "
             "interval; p: two-sided sign-flip permutation test. Every row is in `paired.csv`.", "",
             significance_paragraph(list(paired)), "",
             "## Training cost per stage and variant", "", *table(training_rows, TRAINING_TABLE), ""]
    return "\n".join(parts)

"""The study's tables: one summary row per variant (quality and inference
cost) and one training row per (stage, variant)."""
from __future__ import annotations

from pathlib import Path

SUMMARY_COLUMNS = [
    "variant", "questions", "em", "f1", "accuracy", "dqa_accuracy", "adr_recall", "context_tokens",
    "refiner_parameters", "generator_parameters",
    "refine_latency_mean_s", "refine_latency_p50_s", "refine_latency_p95_s",
    "generate_latency_mean_s", "generate_latency_p50_s", "generate_latency_p95_s",
    "refine_peak_memory_mb", "generate_peak_memory_mb", "refiner_memory_mb",
    "refine_flops_per_query", "generate_flops_per_query", "adapter_mb", "refiner_disk_mb",
]
MB = 2**20

# (title, column or function of a row) for the markdown tables
INFERENCE_TABLE = [
    ("variant", "variant"), ("refiner parameters", "refiner_parameters"), ("EM", "em"), ("F1", "f1"),
    ("accuracy", "accuracy"), ("DQA acc.", "dqa_accuracy"), ("ADR recall", "adr_recall"),
    ("refine latency mean / p50 / p95 (s)",
     lambda r: " / ".join(format_value(r.get(f"refine_latency_{k}_s")) for k in ("mean", "p50", "p95"))),
    ("generate latency mean / p95 (s)",
     lambda r: " / ".join(format_value(r.get(f"generate_latency_{k}_s")) for k in ("mean", "p95"))),
    ("refine peak memory (MB)", "refine_peak_memory_mb"), ("refiner weights in memory (MB)", "refiner_memory_mb"),
    ("refine FLOPs / query", "refine_flops_per_query"), ("refiner size on disk (MB)", "refiner_disk_mb"),
    ("adapters (MB)", "adapter_mb"), ("context tokens", "context_tokens"),
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
        columns[f"{step}_flops_per_query"] = cost["flops_per_query"]
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


def markdown(rows: list[dict], training_rows: list[dict]) -> str:
    parts = ["# Summary", "", "## Quality and inference cost per variant", "",
             *table(rows, INFERENCE_TABLE), "",
             "Latency: per question, after warm-up questions that are not timed; refiner (the student's stages "
             "and LongRefiner's scoring) and generator apart. FLOPs: 2 x parameters used x tokens processed. "
             "Every column is in `summary.csv`.", "",
             "## Training cost per stage and variant", "", *table(training_rows, TRAINING_TABLE), ""]
    return "\n".join(parts)

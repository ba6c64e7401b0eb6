"""The study's plots: F1 against each inference cost with the Pareto frontier
marked, and the training loss curves per stage and variant."""
from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from .jsonl import InputError, atomic_path  # noqa: E402

# x axis name -> (label, function of a summary row)
COSTS = {
    "latency": ("latency per question, refiner + generator (s, mean after warm-up)",
                lambda r: float(r["refine_latency_mean_s"]) + float(r["generate_latency_mean_s"])),
    "memory": ("refiner peak memory (MB)", lambda r: float(r["refine_peak_memory_mb"])),
    "flops": ("FLOPs per question, refiner + generator", 
              lambda r: float(r["refine_flops_per_query"]) + float(r["generate_flops_per_query"])),
}


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point dominates (lower or equal cost and
    higher or equal F1, one of them strictly), by increasing cost."""
    front = []
    for i, (cost, score) in enumerate(points):
        dominated = any(c <= cost and s >= score and (c < cost or s > score) for c, s in points)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i])


def read_rows(path) -> list[dict]:
    rows = list(csv.DictReader(Path(path).open()))
    if not rows:
        raise InputError(f"{path}: no rows")
    return rows


def tradeoff_plot(rows: list[dict], cost: str, output) -> None:
    label, value = COSTS[cost]
    points = [(value(r), float(r["f1"])) for r in rows]
    front = pareto_front(points)
    figure, axes = plt.subplots(figsize=(6.4, 4.4))
    for i, (row, (x, y)) in enumerate(zip(rows, points)):
        axes.scatter([x], [y], s=60, marker="o" if i in front else "x", color="C0" if i in front else "C7", zorder=3)
        axes.annotate(row["variant"], (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
    axes.step([points[i][0] for i in front], [points[i][1] for i in front], where="post", color="C0",
              label="Pareto frontier (no variant is cheaper and better)")
    axes.set_xlabel(label)
    axes.set_ylabel("F1")
    if cost == "flops":
        axes.set_xscale("log")
    axes.legend(loc="lower right", fontsize=8)
    axes.grid(alpha=0.3)
    save(figure, output)


def loss_plot(loss_paths: list, output) -> None:
    """One panel per stage; per variant the training loss per step, and the
    validation loss where it was measured."""
    by_stage: dict[str, list[tuple[str, list[dict]]]] = {}
    for path in loss_paths:
        folder = Path(path).parent
        by_stage.setdefault(folder.parent.name, []).append((folder.name, read_rows(path)))
    figure, panels = plt.subplots(1, len(by_stage), figsize=(6 * len(by_stage), 4.2), squeeze=False)
    for axes, (stage, runs) in zip(panels[0], sorted(by_stage.items())):
        for color, (variant, rows) in enumerate(runs):
            steps = [int(r["step"]) for r in rows]
            axes.plot(steps, [float(r["loss"]) for r in rows], color=f"C{color}", label=f"{variant} train")
            validation = [(int(r["step"]), float(r["validation_loss"])) for r in rows if r["validation_loss"]]
            if validation:
                axes.plot(*zip(*validation), "o--", color=f"C{color}", label=f"{variant} validation")
        axes.set_title(stage)
        axes.set_xlabel("step")
        axes.set_ylabel("loss (answer tokens)")
        axes.legend(fontsize=8)
        axes.grid(alpha=0.3)
    save(figure, output)


def save(figure, output) -> None:
    figure.tight_layout()
    with atomic_path(output) as staging:
        figure.savefig(staging, format="png", dpi=120)
    plt.close(figure)

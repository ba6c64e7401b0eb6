"""The study's plots: F1 (with its 95% interval) against each inference cost
with the Pareto frontier marked, quality per variant with intervals, and the
training loss curves per stage and variant."""
from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from .errors import InputError
from .report import AVERAGE  # noqa: E402
from .jsonl import atomic_path  # noqa: E402

# x axis name -> (label, function of a summary row)
COSTS = {
    "latency": ("latency per question, refiner + generator (s, mean after warm-up)",
                lambda r: float(r["refine_latency_mean_s"]) + float(r["generate_latency_mean_s"])),
    "memory": ("refiner peak memory (MB)", lambda r: float(r["refine_peak_memory_mb"])),
    "flops": ("FLOPs per question, refiner + generator",
              lambda r: float(r["refine_flops_per_query"]) + float(r["generate_flops_per_query"])),
}
# summary column -> panel title of the quality plot
QUALITY_PANELS = {"context_answer_recall": "context answer recall", "f1": "F1", "adr_recall": "ADR recall"}
LABEL_FONT_SIZE = 8
LABEL_OFFSET = (5.0, 3.0)  # points right of and above the marker
LABEL_GAP = 1.0  # points between two stacked labels


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
    """summary.csv's rows the plots draw: one per variant, over every dataset (the
    `average` rows) when the run has several, else the one dataset's."""
    rows = list(csv.DictReader(Path(path).open()))
    if not rows:
        raise InputError(f"{path}: no rows")
    averages = [r for r in rows if r.get("dataset") == AVERAGE]
    return averages or rows


def interval(row: dict, column: str) -> tuple[float, float, float] | None:
    """(mean, low, high) of a summary column, None where the metric does not apply."""
    if row.get(column) in (None, ""):
        return None
    return float(row[column]), float(row[f"{column}_ci_low"]), float(row[f"{column}_ci_high"])


def error_lengths(mean: float, low: float, high: float) -> list[list[float]]:
    """errorbar's [[below], [above]]; clipped at 0 as a percentile interval need not contain the mean."""
    return [[max(mean - low, 0.0)], [max(high - mean, 0.0)]]


def tradeoff_figure(rows: list[dict], cost: str):
    """F1 against one cost: mean F1 with its 95% interval per variant, the
    Pareto frontier on the means, and a name beside each point."""
    label, value = COSTS[cost]
    points = [(value(r), float(r["f1"])) for r in rows]
    front = pareto_front(points)
    figure, axes = plt.subplots(figsize=(6.4, 4.8))
    # a fixed layout: the labels are placed in page coordinates, which a later layout would move
    figure.subplots_adjust(left=0.11, right=0.97, top=0.97, bottom=0.25)
    for i, (row, (x, y)) in enumerate(zip(rows, points)):
        color = "C0" if i in front else "C7"
        axes.scatter([x], [y], s=60, marker="o" if i in front else "x", color=color, zorder=3)
        if (f1 := interval(row, "f1")) is not None:
            axes.errorbar([x], [y], yerr=error_lengths(*f1), fmt="none", ecolor=color, elinewidth=1, capsize=3)
    axes.step([points[i][0] for i in front], [points[i][1] for i in front], where="post", color="C0")
    axes.set_xlabel(label)
    axes.set_ylabel("F1")
    if cost == "flops":
        axes.set_xscale("log")
    axes.margins(x=0.12, y=0.12)
    axes.grid(alpha=0.3)
    figure.legend(handles=[
        Line2D([], [], color="C0", marker="o", label="Pareto frontier of the mean F1 (ignores the intervals): "
                                                    "no variant is cheaper and better"),
        Line2D([], [], color="C7", marker="x", linestyle="", label="dominated on mean F1"),
        Line2D([], [], color="C7", marker="_", markersize=8, linestyle="-", label="F1 95% bootstrap interval"),
    ], loc="lower left", bbox_to_anchor=(0.11, 0.0), fontsize=8, frameon=False)
    place_labels(axes, [r["variant"] for r in rows], points)
    return figure


def tradeoff_plot(rows: list[dict], cost: str, output) -> None:
    save(tradeoff_figure(rows, cost), output)


def place_labels(axes, names: list[str], points: list[tuple[float, float]]) -> None:
    """Name each point right of its marker. Going up from the lowest point, a
    label that would overlap one already placed moves up past it, with a thin
    line back to its point. Works in points on the page, so it holds at any dpi;
    the layout and limits are frozen first, as labels are not redrawn later."""
    axes.set(xlim=axes.get_xlim(), ylim=axes.get_ylim())
    figure = axes.get_figure()
    renderer, to_points = figure.canvas.get_renderer(), 72 / figure.dpi
    anchors = [tuple(a) for a in axes.transData.transform(points) * to_points]
    placed: list[tuple[float, float, float, float]] = []
    for i in sorted(range(len(points)), key=lambda i: (anchors[i][1], anchors[i][0])):
        text = axes.annotate(names[i], points[i], textcoords="offset points", xytext=LABEL_OFFSET,
                             fontsize=LABEL_FONT_SIZE, va="bottom", annotation_clip=False,
                             arrowprops={"arrowstyle": "-", "color": "0.6", "lw": 0.5, "shrinkA": 0, "shrinkB": 4})
        extent = Text.get_window_extent(text, renderer)
        left, bottom = anchors[i][0] + LABEL_OFFSET[0], anchors[i][1] + LABEL_OFFSET[1]
        box = free_box(left, bottom, extent.width * to_points, extent.height * to_points, placed)
        placed.append(box)
        text.xyann = (LABEL_OFFSET[0], box[1] - anchors[i][1])
        text.arrow_patch.set_visible(box[1] > bottom)  # a leader line only to a label that moved


def free_box(left: float, bottom: float, width: float, height: float,
             placed: list[tuple[float, float, float, float]]) -> tuple[float, float, float, float]:
    """The lowest (left, bottom, right, top) box at or above `bottom` that overlaps none of `placed`."""
    while True:
        blocking = [top for x0, y0, x1, top in placed
                    if x0 < left + width and left < x1 and y0 < bottom + height and bottom < top]
        if not blocking:
            return left, bottom, left + width, bottom + height
        bottom = max(blocking) + LABEL_GAP


def quality_plot(rows: list[dict], output) -> None:
    """One panel per quality metric (context answer recall, F1, ADR recall): per
    variant, its mean as a dot and its 95% interval as a line. A variant the
    metric does not apply to (ADR for `full`) has no dot."""
    figure, panels = plt.subplots(1, len(QUALITY_PANELS), sharey=True, squeeze=False,
                                  figsize=(3.2 * len(QUALITY_PANELS), 1.2 + 0.4 * len(rows)))
    for axes, (column, title) in zip(panels[0], QUALITY_PANELS.items()):
        for position, row in enumerate(rows):
            if (values := interval(row, column)) is not None:
                axes.errorbar([values[0]], [position], xerr=error_lengths(*values), fmt="o", color="C0", capsize=3)
        axes.set_title(title)
        axes.set_xlabel("mean [95% bootstrap interval]")
        axes.grid(axis="x", alpha=0.3)
    panels[0][0].set_yticks(range(len(rows)), [r["variant"] for r in rows])
    panels[0][0].set_ylim(len(rows) - 0.5, -0.5)  # first variant on top
    figure.tight_layout()
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
    figure.tight_layout()
    save(figure, output)


def save(figure, output) -> None:
    """PNG, its canvas grown or cropped to everything drawn (labels may sit outside the axes)."""
    with atomic_path(output) as staging:
        figure.savefig(staging, format="png", dpi=120, bbox_inches="tight")
    plt.close(figure)

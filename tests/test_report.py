"""summarize on fake metric documents: intervals in summary.csv, paired.csv, and
the significance paragraph; and trade-off plot labels that do not overlap."""
import csv
import json
import re

import numpy as np
import pytest
from matplotlib import pyplot as plt
from matplotlib.text import Text

from refiner_lib import plots, report, tasks

QUESTIONS = 40


def document(variant: str, f1: np.ndarray, stages: bool) -> dict:
    """A metric file: em/accuracy/recall equal across variants, F1 as given; the
    stage metrics only with `stages`, ADR only on even questions (gold sections)."""
    rows = []
    for i, score in enumerate(f1):
        row = {"id": f"q{i}", "em": float(i % 3 == 0), "f1": float(score), "accuracy": float(i % 2),
               "context_answer_recall": float(i % 4 != 0), "compression": 0.25 + 0.01 * (i % 5)}
        if stages:
            row["dqa_correct"] = float(i % 5 != 0)
            if i % 2 == 0:
                row.update(adr_recall=0.5 + 0.1 * (i % 3), adr_precision=0.4, adr_auc=0.6 + 0.1 * (i % 4))
        rows.append(row)
    summary = {"variant": variant, "questions": QUESTIONS, "refine_latency_mean_s": 0.125, "context_tokens": 300.0}
    return {"summary": summary, "per_question": rows}


def read_csv(path) -> list[dict]:
    return list(csv.DictReader(path.open()))


def test_summarize_writes_intervals_paired_rows_and_names_the_significant_pairs(tmp_path):
    rng = np.random.default_rng(0)
    lora = rng.uniform(0.3, 1.0, QUESTIONS)
    documents = {
        "full": document("full", lora + np.tile([0.05, -0.05], QUESTIONS // 2), stages=False),  # mean difference 0
        "lora": document("lora", lora, stages=True),
        "lora_ptq_int4": document("lora_ptq_int4", np.clip(lora - 0.2 + rng.normal(0, 0.05, QUESTIONS), 0, 1),
                                  stages=True),
    }
    paths = []
    for name, content in documents.items():
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(content))
    out = {name: tmp_path / name for name in ("summary.csv", "summary.md", "paired.csv", "summary.html")}
    tasks.summarize(paths, [], {"csv": out["summary.csv"], "md": out["summary.md"], "paired": out["paired.csv"],
                                "html": out["summary.html"]})

    summary = {r["variant"]: r for r in read_csv(out["summary.csv"])}
    assert list(next(iter(summary.values()))) == report.SUMMARY_COLUMNS
    for row in summary.values():
        assert row["refine_latency_mean_s"] == "0.1250" and row["context_tokens"] == "300.0000"  # passed through
        for column in ("em", "f1", "accuracy", "context_answer_recall", "compression"):
            assert float(row[f"{column}_ci_low"]) <= float(row[column]) <= float(row[f"{column}_ci_high"])
    assert float(summary["lora"]["f1"]) == round(lora.mean(), 4)
    assert float(summary["lora"]["f1_ci_low"]) < float(summary["lora"]["f1_ci_high"])
    assert all(summary["full"][c] == "" for c in ("dqa_accuracy", "adr_recall_ci_low", "adr_precision_ci_high"))
    assert summary["lora"]["adr_precision_ci_low"] == summary["lora"]["adr_precision_ci_high"] == "0.4000"

    paired = read_csv(out["paired.csv"])
    assert list(paired[0]) == report.PAIRED_COLUMNS
    metrics = {(r["variant"], r["metric"]): r for r in paired}
    assert {r["reference"] for r in paired} == {"lora"}  # no teacher document
    assert sorted(m for v, m in metrics if v == "full") == ["accuracy", "context_answer_recall", "em", "f1"]
    assert len([m for v, m in metrics if v == "lora_ptq_int4"]) == 8
    assert metrics["lora_ptq_int4", "adr_auc"]["n"] == "20" and summary["full"]["adr_auc"] == ""
    assert metrics["lora_ptq_int4", "adr_recall"]["n"] == "20"
    assert metrics["lora_ptq_int4", "em"]["p_value"] == "1.0000"
    significant = {(r["variant"], r["reference"], r["metric"]) for r in paired if r["significant"] == "True"}
    assert significant == {("lora_ptq_int4", "lora", "f1")}
    f1 = metrics["lora_ptq_int4", "f1"]
    assert float(f1["ci_high"]) < 0 and float(f1["p_value"]) < 0.01

    markdown = out["summary.md"].read_text()
    assert re.search(r"\| lora +\| [^|]* \| \d\.\d{3} \[\d\.\d{2}, \d\.\d{2}\] +\| \d\.\d{3} \[", markdown)
    assert "## Refinement quality per variant" in markdown and \
        re.search(r"\| context answer recall +\| ADR recall +\| ADR precision +\| ADR ranking AUC +\|", markdown)
    assert "<td>lora_ptq_int4</td>" in out["summary.html"].read_text()
    paragraph = next(line for line in markdown.splitlines() if line.startswith("Significant at 95%"))
    named = set(re.findall(r"(\w+) vs (\w+): (F1|EM|accuracy|context answer recall|DQA accuracy|ADR \w+) ",
                           paragraph))
    assert named == {("lora_ptq_int4", "lora", "F1")}
    assert re.search(r"lora_ptq_int4 vs lora: F1 -0\.\d\d \[-0\.\d\d, -0\.\d\d\], p=", paragraph)
    assert "All other differences are not distinguishable from zero with 20 to 40 questions." in paragraph


def tradeoff_rows(count: int) -> list[dict]:
    """Variants nearly on top of each other on the F1-latency plane: same latency, F1 0.001 apart."""
    return [{"variant": f"variant_{i}", "f1": f"{0.4 + 0.001 * i}", "f1_ci_low": "0.35", "f1_ci_high": "0.46",
             "refine_latency_mean_s": "0.5", "generate_latency_mean_s": "0.2",
             "context_answer_recall": "0.6", "context_answer_recall_ci_low": "0.5",
             "context_answer_recall_ci_high": "0.7", "adr_recall": "" if i == 0 else "0.3",
             "adr_recall_ci_low": "" if i == 0 else "0.2", "adr_recall_ci_high": "" if i == 0 else "0.4"}
            for i in range(count)]


def test_tradeoff_labels_do_not_overlap_and_the_legend_says_the_frontier_ignores_intervals(tmp_path):
    figure = plots.tradeoff_figure(tradeoff_rows(6), "latency")
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    axes = figure.axes[0]
    boxes = [Text.get_window_extent(t, renderer) for t in axes.texts]  # the label text, not its leader line
    assert sorted(t.get_text() for t in axes.texts) == [f"variant_{i}" for i in range(6)]
    assert sum(t.xyann != plots.LABEL_OFFSET for t in axes.texts) == 5  # all but the lowest had to move
    for i, first in enumerate(boxes):
        for second in boxes[i + 1:]:
            assert first.x1 <= second.x0 or second.x1 <= first.x0 or first.y1 <= second.y0 or second.y1 <= first.y0
    assert any("ignores the intervals" in t.get_text() for t in figure.legends[0].get_texts())
    assert len(axes.containers) == 6  # one F1 error bar per variant
    plt.close(figure)


def test_quality_plot_writes_a_png(tmp_path):
    plots.quality_plot(tradeoff_rows(4), tmp_path / "quality.png")
    assert (tmp_path / "quality.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rounding_never_hides_which_side_of_zero_or_of_alpha_a_figure_is_on():
    assert report.p_value_text(0.0017) == "0.0017" and report.p_value_text(0.04998) == "0.04998"
    assert report.difference_text({"difference": -0.02, "ci_low": -0.04, "ci_high": -0.004}) == \
        "-0.020 [-0.040, -0.004]"


def test_several_datasets_get_their_rows_and_an_average_each_counting_once(tmp_path):
    """Dataset a: 40 questions; dataset b: 10, where only b has ROUGE-L. The
    average row's F1 is the mean of the two datasets' means (not of the 50
    questions), its ROUGE-L b's own, and the paired table compares per dataset
    and over both."""
    rng = np.random.default_rng(1)
    documents = []
    for name, size in (("a", 40), ("b", 10)):
        base = rng.uniform(0.2, 0.9, size)
        for variant, shift in (("lora", 0.0), ("qlora", -0.3)):
            document_ = document(variant, np.clip(base + shift, 0, 1)[:size], stages=True)
            document_["per_question"] = document_["per_question"][:size]
            document_["summary"]["dataset"] = name
            if name == "b":
                for row in document_["per_question"]:
                    row["rouge_l"] = 0.25 + shift
            documents.append(document_)
    paths = []
    for number, content in enumerate(documents):
        paths.append(tmp_path / f"{number}.json")
        paths[-1].write_text(json.dumps(content))
    out = {key: tmp_path / name for key, name in (("csv", "s.csv"), ("md", "s.md"), ("paired", "p.csv"),
                                                  ("html", "s.html"))}
    tasks.summarize(paths, [], out)
    rows = {(r["dataset"], r["variant"]): r for r in read_csv(out["csv"])}
    assert list(rows) == [("a", "lora"), ("a", "qlora"), ("b", "lora"), ("b", "qlora"),
                          ("average", "lora"), ("average", "qlora")]
    for variant in ("lora", "qlora"):
        means = [np.mean([q["f1"] for q in d["per_question"]]) for d in documents if d["summary"]["variant"] == variant]
        assert float(rows["average", variant]["f1"]) == pytest.approx(np.mean(means), abs=1e-4)
        assert rows["average", variant]["questions"] == "50"
        assert rows["average", variant]["rouge_l"] == rows["b", variant]["rouge_l"] != ""
        assert rows["a", variant]["rouge_l"] == ""
    paired = [r for r in read_csv(out["paired"]) if r["metric"] == "f1"]
    assert [(r["dataset"], r["n"]) for r in paired] == [("a", "40"), ("b", "10"), ("average", "50")]
    assert all(r["significant"] == "True" for r in paired)
    markdown = out["md"].read_text()
    assert "Over all datasets: Significant at 95%" in markdown and "On b:" in markdown
    assert "| ROUGE-L" in markdown and "nan" not in markdown

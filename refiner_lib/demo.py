"""The demo app on a finished run (Gradio, offline):

    python -m refiner_lib.demo results            # every method's models, loaded once
    python -m refiner_lib.demo results --browse-only   # the study browser alone, no model
    python -m refiner_lib.demo results --dataset NAME  # which dataset, for a run with several

Ask: a question of the eval set, or a typed one, through every method side by
side: DQA's Local/Global probabilities, each retrieved document's outline with
the sections global selection chose and their scores, the refined context and
its compression, the generator's answer, and each step's latency and memory.
Study browser: every eval question with each method's answer, marked right or
wrong, filtered to the questions where methods disagree; the run's summary and
plots.
"""
from __future__ import annotations

import argparse
import html
import os
import threading
import time
import warnings
from pathlib import Path

from . import study

CSS = """
.cards {display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 12px;}
.method-card {border: 1px solid #bbb; border-radius: 8px; padding: 10px; font-size: 14px; background: #fafafa;}
.method-card h3 {margin: 0 0 6px 0;}
.method-card.unavailable {background: #f3f3f3; color: #555;}
.method-card ul {margin: 2px 0 6px 0; padding-left: 18px;}
.method-card li.chosen {font-weight: bold; color: #0b6b2b;}
.method-card .answer {font-weight: bold;}
.method-card pre {white-space: pre-wrap; max-height: 220px; overflow-y: auto; font-size: 12px;}
.method-card table.cost td {padding: 0 8px 0 0;}
.right {color: #0b6b2b;} .wrong {color: #a11;}
"""


def e(value) -> str:
    return html.escape(str(value))


def number(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def question_html(question: dict, documents: list[str]) -> str:
    golden = " | ".join(question.get("golden_answers") or []) or "none (a typed question)"
    return (f'<div class="question" data-id="{e(question["id"])}"><b>{e(question["question"])}</b><br>'
            f'golden answer: <span class="golden">{e(golden)}</span><br>'
            f'retrieved: <span class="documents">{e(", ".join(documents))}</span></div>')


def card_html(answer, run_answer: dict | None = None) -> str:
    """One method's column: its stages' outputs, its answer and its costs."""
    head = f'<div class="method-card{" unavailable" if answer.unavailable else ""}" data-method="{e(answer.method)}">' \
           f'<h3>{e(answer.method)}</h3>'
    if answer.unavailable:
        return head + f'<div class="unavailable-reason">{e(answer.unavailable)}</div></div>'
    refined, parts = answer.refined, [head]
    if refined.get("probabilities"):
        probabilities = refined["probabilities"]
        parts.append(f'<div class="dqa">DQA: <span class="label">{e(refined.get("label", ""))}</span> '
                     f'(P(Local) {number(probabilities.get("Local"))}, P(Global) {number(probabilities.get("Global"))})</div>')
    selections, scores = refined.get("selections") or {}, refined.get("selection_scores") or {}
    for doc_id, (title, sections) in answer.outlines.items():
        chosen, doc_scores = selections.get(doc_id, []), scores.get(doc_id, {})
        items = "".join(
            f'<li class="node{" chosen" if s in chosen else ""}" data-title="{e(s)}">{"✔ " if s in chosen else ""}'
            f'{e(s)}{f" {doc_scores[s]:.3g}" if s in doc_scores else ""}</li>' for s in sections)
        parts.append(f'<div class="doc" data-doc="{e(doc_id)}"><b>{e(title)}</b> ({e(doc_id)})<ul>{items}</ul></div>')
    parts.append(f'<div class="context-stats">context: <span class="context-tokens">{answer.context_tokens}</span> tokens '
                 f'of {answer.retrieved_tokens} retrieved (compression {number(answer.compression)})</div>'
                 f'<details><summary>refined context</summary><pre class="context">{e(refined["context"])}</pre></details>')
    verdict = ""
    if answer.scores:
        right = answer.scores["em"] == 1
        verdict = f' <span class="verdict {"right" if right else "wrong"}">{"✓ EM" if right else "✗ EM"}' \
                  f' (F1 {number(answer.scores["f1"], 2)})</span>'
    parts.append(f'<div>answer: <span class="answer">{e(answer.prediction)}</span>{verdict}</div>'
                 f'<div class="generation">generated: “{e(answer.generation)}”</div>')
    if run_answer is not None:
        same = run_answer["prediction"] == answer.prediction
        parts.append(f'<div class="run-answer">in the run: {e(run_answer["prediction"])}'
                     f'{"" if same else " (the run answered in batches: padding changes float rounding)"}</div>')
    costs = [("refine", answer.refine_cost)]
    costs += [(f"· {name.replace('_', ' ')}", cost) for name, cost in answer.step_costs.items()]
    rows = "".join(f"<tr><td>{e(name)}</td><td>{cost.seconds:.3f} s</td><td>+{cost.peak_mb:.0f} MB</td></tr>"
                   for name, cost in costs + [("generate", answer.generate_cost)])
    parts.append(f'<table class="cost"><tr><td></td><td>latency</td><td>peak memory</td></tr>{rows}</table></div>')
    return "".join(parts)


def build_app(results: str | Path, live=None, dataset: str | None = None):
    import gradio as gr

    results = Path(results)
    folder = study.dataset_folder(results, dataset)
    table = study.question_table(folder)
    methods = study.ordered(table["method"].unique())
    questions = table.drop_duplicates("id")
    # the answers the workflow wrote, to show beside the live ones (already in the study's table)
    run_answers = {(row.method, row.id): {"prediction": row.prediction} for row in table.itertuples()}

    def ask(question_id, typed, chosen):
        question = live.question(text=typed) if typed and typed.strip() else live.question(question_id or None)
        documents = live.documents(question)
        cards = [card_html(live.answer(method, question), run_answers.get((method, question["id"])))
                 for method in live.methods if method in (chosen or live.methods)]
        return question_html(question, documents), f'<div class="cards">{"".join(cards)}</div>'

    def browse(metric, only_disagreeing, chosen, field):
        rows = table[table["method"].isin(chosen or methods)]
        if only_disagreeing:
            rows = study.disagreements(rows, metric)
        shown = rows["id"].nunique()
        count = f"{shown} of {len(questions)} questions" + (f" (the chosen methods disagree on {metric})"
                                                            if only_disagreeing else "")
        return study.answers_side_by_side(rows if shown else table.head(0), metric, field), count

    def detail(question_id):
        columns = ["method", "label", "p_global", "selection", "context_answer_recall", "context_tokens",
                   "compression", "adr_recall", "adr_precision", "prediction", "em", "f1", "accuracy"]
        return table[table["id"] == question_id][[c for c in columns if c in table]].round(3)

    with gr.Blocks(title="longrefiner-quant demo") as app:
        gr.Markdown(f"# longrefiner-quant: every method side by side\nResults: `{e(results.resolve())}`, "
                    f"dataset `{e(folder.name)}`")
        with gr.Tab("Ask"):
            if live is None:
                gr.Markdown("Models are not loaded (started with `--browse-only`): use the study browser.")
            else:
                with gr.Row():
                    pick = gr.Dropdown(choices=[(f"{r.id}: {r.question}", r.id) for r in questions.itertuples()],
                                       value=None, label="A question of the eval set", elem_id="pick")
                    typed = gr.Textbox(label="or type a question (used when not empty)", elem_id="typed")
                chosen = gr.CheckboxGroup(choices=live.methods, value=live.methods, label="methods", elem_id="methods")
                button = gr.Button("Ask every method", variant="primary", elem_id="ask")
                header, cards = gr.HTML(elem_id="question-info"), gr.HTML(elem_id="cards")
                button.click(ask, [pick, typed, chosen], [header, cards])
        with gr.Tab("Study browser"):
            with gr.Row():
                metric = gr.Radio(list(study.CORRECTNESS), value="em", label="mark ✓/✗ and compare by",
                                  elem_id="metric")
                only = gr.Checkbox(label="only questions where the chosen methods disagree", elem_id="disagree")
            with gr.Row():
                shown = gr.CheckboxGroup(choices=methods, value=methods, label="methods", scale=3)
                field = gr.Dropdown(list(study.CELL_FIELDS), value="prediction", label="cells show", scale=1)
            count = gr.Markdown(f"{len(questions)} of {len(questions)} questions", elem_id="count")
            grid = gr.Dataframe(study.answers_side_by_side(table), wrap=True, interactive=False, elem_id="grid")
            for control in (metric, only, shown, field):
                control.change(browse, [metric, only, shown, field], [grid, count])
            first = questions["id"].iloc[0]
            one = gr.Dropdown(choices=list(questions["id"]), value=first, label="one question, every method's outputs")
            one_table = gr.Dataframe(detail(first), interactive=False, wrap=True)
            one.change(detail, one, one_table)
        with gr.Tab("Summary"):
            summary = results / "summary.md"
            gr.Markdown(summary.read_text(encoding="utf-8") if summary.exists() else "no summary.md in this run")
            plots = sorted(str(p) for p in (results / "plots").glob("*.png"))
            gr.Gallery(plots, label="plots", columns=2)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The demo app on a finished run's results folder.")
    parser.add_argument("results", nargs="?", default="results")
    parser.add_argument("--dataset", help="which dataset of the run (needed when it has several)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--methods", nargs="*", help="the methods to load (default: every method the run refined)")
    parser.add_argument("--browse-only", action="store_true", help="the study browser alone: no model is loaded")
    args = parser.parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: no telemetry calls
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    warnings.filterwarnings("ignore", message="MatMul8bitLt: inputs will be cast")  # once per call otherwise
    import gradio as gr

    started, live = time.perf_counter(), None
    if not args.browse_only:
        from .live import LiveStudy

        live = LiveStudy(args.results, args.methods, args.dataset)
        print(f"loaded {len(live.refiners)} methods and the generator in {time.perf_counter() - started:.1f} s"
              + "".join(f"\n  {m}: unavailable: {why}" for m, why in live.unavailable.items()), flush=True)
    app = build_app(args.results, live, args.dataset)
    # system fonts: the default theme's web fonts would be fetched from the internet
    theme = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
    app.launch(server_name=args.host, server_port=args.port, theme=theme, css=CSS, prevent_thread_lock=True,
               allowed_paths=[str(Path(args.results).resolve() / "plots")])
    print(f"ready after {time.perf_counter() - started:.1f} s: http://{args.host}:{args.port}", flush=True)
    if live is not None:  # a question asked meanwhile waits for it (LiveStudy.lock)
        threading.Thread(target=live.warm_up, daemon=True, name="warm-up").start()
    app.block_thread()


if __name__ == "__main__":
    main()

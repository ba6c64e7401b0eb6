"""The three refinement stages, run by an oracle (dataset annotations) or by a
model through a backend (an LLM teacher, or a trained student).

Each returns plain records that teacher.py turns into Alpaca training files and
refine.py consumes at inference:
  query analysis   {id, label, probabilities: {Local, Global}}
  doc structuring  tree + {parsed: bool}
  global selection {id, doc_id, selected: [title], scores: {title: score}}
"""
from __future__ import annotations

import math

from .errors import InputError
from .inference import Prompt
from .prompts import (QUERY_LABELS, QUESTION_HEADER, doc_structuring_record, global_selection_record, parse_selection,
                      query_analysis_record, record_messages)
from .structure import body_paragraphs, flat_tree, node_titles, parse_outline

LABEL_CHOICES = [f"[{label}]" for label in QUERY_LABELS]


# ---------------------------------------------------------------- oracle
def oracle_query_analysis(questions: list[dict], confidence: float = 1.0) -> list[dict]:
    """The annotated label, with probability `confidence` on it (1.0: one-hot)."""
    results = []
    for q in questions:
        if q.get("label") not in QUERY_LABELS:
            raise InputError(f"question '{q['id']}': field 'label' is missing; the oracle teacher needs "
                             "Local/Global annotations (use teacher.kind: llm for unannotated data)")
        results.append({"id": q["id"], "label": q["label"],
                        "probabilities": {label: confidence if label == q["label"] else 1.0 - confidence
                                          for label in QUERY_LABELS}})
    return results


def oracle_trees(doc_ids: list[str], trees_by_id: dict[str, dict], corpus_by_id: dict[str, dict]) -> list[dict]:
    """The true trees; a document the data records none for is a single
    paragraph (HotpotQA's and 2WikiMultihopQA's Wikipedia paragraphs): one abstract."""
    return [dict(trees_by_id.get(d) or flat_tree(d, corpus_by_id[d]["contents"]), parsed=True) for d in doc_ids]


def gold_titles(question: dict, doc_id: str) -> list[str]:
    """The most specific gold title per supporting place in this document."""
    titles = []
    for place in question.get("supporting", []):
        if place["doc_id"] == doc_id:
            title = place["path"][-1] if place["path"] else "abstract"
            if title not in titles:
                titles.append(title)
    return titles


def oracle_selection(questions: list[dict], retrieval: dict[str, list[str]], trees: dict[str, dict]) -> list[dict]:
    results = []
    for q in questions:
        for doc_id in retrieval[q["id"]]:
            selected = gold_titles(q, doc_id)
            titles = node_titles(trees[doc_id])
            results.append({"id": q["id"], "doc_id": doc_id, "selected": selected,
                            "scores": {t: float(t in selected) for t in titles}})
    return results


# ---------------------------------------------------------------- model-run
ANALYSIS_FILE = "analysis.json"  # a query-analysis student's alpha calibration, beside its weights


def model_query_analysis(backend, questions: list[dict], calibration: dict | None = None) -> list[dict]:
    """Each question's Local/Global probabilities (a student's passed through
    its calibration) and the likelier label."""
    probabilities = label_probabilities(backend, [query_analysis_record(q["question"]) for q in questions])
    results = []
    for q, named in zip(questions, probabilities):
        named = calibrated(named, calibration)
        results.append({"id": q["id"], "label": max(named, key=named.get), "probabilities": named})
    return results


def label_probabilities(backend, records: list[dict]) -> list[dict[str, float]]:
    """P(Local), P(Global) of query-analysis records, as the model scores the two labels."""
    backend.use("query_analysis")
    return [{label: probs[f"[{label}]"] for label in QUERY_LABELS}
            for probs in backend.choice_records(records, LABEL_CHOICES)]


def global_log_odds(probabilities: dict[str, float]) -> float:
    smallest = 1e-300  # a probability that underflowed to 0 in float64
    return math.log(max(probabilities["Global"], smallest)) - math.log(max(probabilities["Local"], smallest))


def calibrated(probabilities: dict[str, float], calibration: dict | None) -> dict[str, float]:
    """P(Global) = sigmoid(scale * log-odds + shift); unchanged without a calibration."""
    if not calibration:
        return probabilities
    p_global = sigmoid(calibration["scale"] * global_log_odds(probabilities) + calibration["shift"])
    return {"Local": 1.0 - p_global, "Global": p_global}


def sigmoid(x: float) -> float:
    return 0.5 * (1.0 + math.tanh(0.5 * x))  # no overflow for large |x|


def fit_alpha_calibration(log_odds: list[float], targets: list[float], ridge: float = 1e-3) -> dict:
    """Platt scaling with the teacher's soft targets: the scale and shift of the
    student's Global-vs-Local log-odds that minimize the cross-entropy against
    the teacher's P(Global) on held-out records, by Newton's method (halving a
    step that does not lower it). A small ridge towards the identity (scale 1,
    shift 0) keeps them finite when hard 0/1 targets are separable. A student
    that ranks the questions right but whose last, noisy steps left every
    P(Global) some hundredths high or low gets back the alpha it was distilled
    towards; a wrong ranking stays wrong."""
    if not log_odds:
        raise InputError("no held-out records to calibrate query analysis on")

    def objective(scale: float, shift: float) -> float:
        predicted = [sigmoid(scale * z + shift) for z in log_odds]
        return soft_cross_entropy(predicted, targets) * len(log_odds) + \
            0.5 * ridge * ((scale - 1.0) ** 2 + shift ** 2)

    scale, shift = 1.0, 0.0
    for _ in range(100):
        grad_scale, grad_shift = ridge * (scale - 1.0), ridge * shift
        h_scale, h_cross, h_shift = ridge, 0.0, ridge
        for z, target in zip(log_odds, targets):
            p = sigmoid(scale * z + shift)
            grad_scale, grad_shift = grad_scale + (p - target) * z, grad_shift + p - target
            weight = p * (1.0 - p)
            h_scale, h_cross, h_shift = h_scale + weight * z * z, h_cross + weight * z, h_shift + weight
        determinant = h_scale * h_shift - h_cross * h_cross
        step_scale = (h_shift * grad_scale - h_cross * grad_shift) / determinant
        step_shift = (h_scale * grad_shift - h_cross * grad_scale) / determinant
        before, fraction = objective(scale, shift), 1.0
        while fraction > 1e-6 and objective(scale - fraction * step_scale, shift - fraction * step_shift) > before:
            fraction /= 2
        scale, shift = scale - fraction * step_scale, shift - fraction * step_shift
        if fraction * (abs(step_scale) + abs(step_shift)) < 1e-10:
            break
    predicted = [sigmoid(scale * z + shift) for z in log_odds]
    return {"scale": scale, "shift": shift, "validation_cross_entropy": soft_cross_entropy(predicted, targets),
            "records": len(log_odds), "criterion": "soft_cross_entropy"}


def soft_cross_entropy(predicted: list[float], targets: list[float]) -> float:
    smallest = 1e-300
    return -sum(t * math.log(max(p, smallest)) + (1 - t) * math.log(max(1 - p, smallest))
                for p, t in zip(predicted, targets)) / len(predicted)


def model_trees(backend, docs: list[dict], max_new_tokens: int) -> list[dict]:
    backend.use("doc_structuring")
    records = [doc_structuring_record("\n".join(body_paragraphs(d["contents"]))) for d in docs]
    outlines = backend.generate_records(records, max_new_tokens)
    trees = []
    for doc, outline in zip(docs, outlines):
        tree, usable = parse_outline(doc["id"], doc["contents"], outline)
        trees.append(dict(tree if usable else flat_tree(doc["id"], doc["contents"]), parsed=usable))
    return trees


def model_selection(backend, questions: list[dict], retrieval: dict[str, list[str]], trees: dict[str, dict],
                    max_new_tokens: int) -> list[dict]:
    """Global selection by generation, as LongRefiner's teacher runs it: the
    titles named in the model's answer."""
    backend.use("global_selection")
    pairs = [(q, doc_id) for q in questions for doc_id in retrieval[q["id"]]]
    outputs = backend.generate_records([global_selection_record(q["question"], trees[d]) for q, d in pairs],
                                       max_new_tokens)
    results = []
    for (q, doc_id), output in zip(pairs, outputs):
        titles = node_titles(trees[doc_id])
        selected = parse_selection(output, titles)
        results.append({"id": q["id"], "doc_id": doc_id, "selected": selected, "raw": output,
                        "scores": {t: float(t in selected) for t in titles}})
    return results


NOTHING_SELECTED = "[]"
SELECTION_FILE = "selection.json"  # a global-selection student's threshold, beside its weights


def title_candidate(title: str) -> str:
    """The start of an answer list naming `title` first: `['Early life` (quoted as
    repr quotes it). Its closing quote is left out because BPE merges it with
    whatever follows (`',` or `']`) in the teacher's answers."""
    return repr([title])[:-2]


def title_probabilities(backend, records: list[dict], titles: list[list[str]]) -> list[dict[str, float]]:
    """Per record, the probability that the answer list starts with each title,
    against answering `[]`: ListNet's top-one distribution, read from the
    student's own likelihoods instead of its greedy output (which collapses to
    `[]`, the most frequent answer, when most retrieved documents are distractors)."""
    choices = [[NOTHING_SELECTED] + [title_candidate(t) for t in names] for names in titles]
    # a document's part of the prompt recurs for every question that retrieves it. It ends before the
    # blank line's second break: byte-level BPE tokenizes "\n\n**" as "\n", "\n", "**", so a cut after
    # both breaks would not give the prompt's own tokens
    prompts = [Prompt.shared_before(backend.prompt(record_messages(r)), "\n" + QUESTION_HEADER) for r in records]
    probabilities = backend.choice_probabilities(prompts, choices)
    return [{t: row[title_candidate(t)] for t in names} for row, names in zip(probabilities, titles)]


def select_titles(probabilities: dict[str, float], threshold: float) -> list[str]:
    return [t for t, p in sorted(probabilities.items(), key=lambda item: -item[1]) if p >= threshold]


def scored_selection(backend, questions: list[dict], retrieval: dict[str, list[str]], trees: dict[str, dict],
                     threshold: float) -> list[dict]:
    """Global selection by scoring every title of each document (a trained
    student): the titles whose probability reaches the threshold chosen on
    the student's validation records."""
    backend.use("global_selection")
    pairs = [(q, doc_id) for q in questions for doc_id in retrieval[q["id"]]]
    titles = [node_titles(trees[d]) for _, d in pairs]
    records = [global_selection_record(q["question"], trees[d]) for q, d in pairs]
    results = []
    for (q, doc_id), scores in zip(pairs, title_probabilities(backend, records, titles)):
        results.append({"id": q["id"], "doc_id": doc_id, "selected": select_titles(scores, threshold),
                        "scores": scores})
    return results


def selection_counts(chosen: list[str], gold: list[str]) -> tuple[int, int, int]:
    """True positives, false positives and false negatives of one selection."""
    common = len(set(chosen) & set(gold))
    return common, len(set(chosen)) - common, len(set(gold)) - common


def micro_f1(selections: list[list[str]], gold: list[list[str]]) -> float:
    """F1 over every (record, title) decision pooled: the usual criterion for a
    multi-label threshold. A mean of per-record F1 would count each distractor
    document that both leave empty as a perfect answer, and so would favour
    selecting nothing. Nothing to find and nothing chosen: 1.0."""
    counts = [selection_counts(chosen, wanted) for chosen, wanted in zip(selections, gold)]
    tp, fp, fn = (sum(column) for column in zip((0, 0, 0), *counts))
    return 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)


def best_threshold(probabilities: list[dict[str, float]], gold: list[list[str]]) -> dict:
    """The threshold that maximizes micro F1 against the teacher's selections:
    tried at every observed probability (and above them all: select nothing);
    among equals the highest, i.e. the most selective."""
    candidates = sorted({p for row in probabilities for p in row.values()} | {1.0 + 1e-9})
    best = {"threshold": candidates[-1], "validation_f1": -1.0}
    for threshold in candidates:
        f1 = micro_f1([select_titles(row, threshold) for row in probabilities], gold)
        if f1 >= best["validation_f1"]:
            best = {"threshold": threshold, "validation_f1": f1}
    return {**best, "records": len(gold), "criterion": "micro_f1"}

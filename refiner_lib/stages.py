"""The three refinement stages, run by an oracle (dataset annotations) or by a
model through a backend (an LLM teacher, or a trained student).

Each returns plain records that teacher.py turns into Alpaca training files and
refine.py consumes at inference:
  query analysis   {id, label, probabilities: {Local, Global}}
  doc structuring  tree + {parsed: bool}
  global selection {id, doc_id, selected: [title], scores: {title: score}}
"""
from __future__ import annotations

from .jsonl import InputError
from .prompts import QUERY_LABELS, doc_structuring_record, global_selection_record, parse_selection, query_analysis_record
from .structure import body_paragraphs, flat_tree, node_titles, parse_outline

LABEL_CHOICES = [f"[{label}]" for label in QUERY_LABELS]


# ---------------------------------------------------------------- oracle
def oracle_query_analysis(questions: list[dict]) -> list[dict]:
    results = []
    for q in questions:
        if q.get("label") not in QUERY_LABELS:
            raise InputError(f"question '{q['id']}': field 'label' is missing; the oracle teacher needs "
                             "Local/Global annotations (use teacher.kind: llm for unannotated data)")
        results.append({"id": q["id"], "label": q["label"],
                        "probabilities": {label: float(label == q["label"]) for label in QUERY_LABELS}})
    return results


def oracle_trees(doc_ids: list[str], trees_by_id: dict[str, dict]) -> list[dict]:
    missing = [d for d in doc_ids if d not in trees_by_id]
    if missing:
        raise InputError(f"document '{missing[0]}': no true structure in the data; the oracle teacher needs one "
                         "(use teacher.kind: llm)")
    return [dict(trees_by_id[d], parsed=True) for d in doc_ids]


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
def model_query_analysis(backend, questions: list[dict]) -> list[dict]:
    backend.use("query_analysis")
    probabilities = backend.choice_records([query_analysis_record(q["question"]) for q in questions], LABEL_CHOICES)
    results = []
    for q, probs in zip(questions, probabilities):
        named = {label: probs[f"[{label}]"] for label in QUERY_LABELS}
        results.append({"id": q["id"], "label": max(named, key=named.get), "probabilities": named})
    return results


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

"""Teacher labels per stage: Alpaca training records plus the teacher's scores."""
from __future__ import annotations

from . import stages
from .prompts import doc_structuring_record, global_selection_record, query_analysis_record
from .structure import body_paragraphs, render_outline


def query_analysis(kind: str, questions: list[dict], backend=None,
                   oracle_confidence: float = 1.0) -> tuple[list[dict], list[dict]]:
    results = stages.oracle_query_analysis(questions, oracle_confidence) if kind == "oracle" else \
        stages.model_query_analysis(backend, questions)
    by_id = {q["id"]: q for q in questions}
    records = [query_analysis_record(by_id[r["id"]]["question"], r["label"]) for r in results]
    return records, results


def documents_of(questions: list[dict], retrieval: dict[str, list[str]]) -> list[str]:
    """Every document retrieved for these questions, once, in first-seen order."""
    return list(dict.fromkeys(d for q in questions for d in retrieval[q["id"]]))


def doc_structuring(kind: str, doc_ids: list[str], corpus_by_id: dict[str, dict], trees_by_id: dict[str, dict],
                    backend=None, max_new_tokens: int | None = None) -> tuple[list[dict], list[dict]]:
    if kind == "oracle":
        trees = stages.oracle_trees(doc_ids, trees_by_id, corpus_by_id)
    else:
        trees = stages.model_trees(backend, [corpus_by_id[d] for d in doc_ids], max_new_tokens)
    records = [doc_structuring_record("\n".join(body_paragraphs(corpus_by_id[t["id"]]["contents"])), render_outline(t))
               for t in trees]
    return records, trees


def global_selection(kind: str, questions: list[dict], retrieval: dict[str, list[str]], trees: dict[str, dict],
                     backend=None, max_new_tokens: int | None = None) -> tuple[list[dict], list[dict]]:
    if kind == "oracle":
        results = stages.oracle_selection(questions, retrieval, trees)
    else:
        results = stages.model_selection(backend, questions, retrieval, trees, max_new_tokens)
    by_id = {q["id"]: q for q in questions}
    records = [global_selection_record(by_id[r["id"]]["question"], trees[r["doc_id"]], r["selected"]) for r in results]
    return records, results

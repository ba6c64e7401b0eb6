"""Retrieval speed and agreement, measured side by side in one process: this
project's BM25 (top-k over the documents a query touches, on 1 and on
--threads threads; and a full sort of every score, its previous top-k),
rank_bm25.BM25Okapi (on --reference-queries queries: it scores every document
in Python) and, when importable, bm25s (not a dependency: install it apart).
Every engine gets the same tokens. Prints queries/s, build seconds, the saved
index's size and each engine's top-k agreement with rank_bm25.

  python -m refiner_lib.retrieval_benchmark --corpus ../shared/data/hotpotqa/corpus.jsonl \\
      --questions ../shared/data/hotpotqa/dev_distractor.jsonl --queries 500 --threads 2
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from . import bm25
from .jsonl import load_jsonl


def timed(run):
    started = time.perf_counter()
    result = run()
    return result, time.perf_counter() - started


def agreement(ranked: list[list[str]], reference: list[list[str]]) -> dict:
    """Share of queries whose top-k equals the reference's exactly, in order, and the mean overlap of the sets."""
    exact = np.mean([a == b for a, b in zip(ranked, reference)])
    overlap = np.mean([len(set(a) & set(b)) / max(1, len(b)) for a, b in zip(ranked, reference)])
    return {"identical_top_k": round(float(exact), 4), "overlap": round(float(overlap), 4)}


def bm25s_rows(doc_ids, tokens, queries, k, threads, reference) -> list[dict]:
    try:
        import bm25s
    except ImportError:
        return [{"engine": "bm25s", "note": "not installed (pip install bm25s to compare)"}]
    rows = []
    for method in ("robertson", "atire", "lucene"):
        engine = bm25s.BM25(method=method, k1=1.5, b=0.75)
        _, build = timed(lambda: engine.index(tokens, show_progress=False))
        query_tokens = [bm25.tokenize(q) for q in queries]
        (found, _), seconds = timed(lambda: engine.retrieve(query_tokens, k=k, n_threads=threads, show_progress=False))
        ranked = [[doc_ids[i] for i in row] for row in found]
        rows.append({"engine": f"bm25s ({method}, {threads} threads)", "build_s": round(build, 2),
                     "queries_per_s": round(len(queries) / seconds, 1),
                     **agreement(ranked[:len(reference)], reference)})
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", required=True, help="FlashRAG corpus JSONL ({id, contents})")
    parser.add_argument("--questions", required=True, help="JSONL with a 'question' field")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--reference-queries", type=int, default=100, help="queries rank_bm25 answers")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    corpus = load_jsonl(args.corpus)
    queries = [r["question"] for r in load_jsonl(args.questions)[:args.queries]]
    tokens = [bm25.tokenize(d["contents"]) for d in corpus]
    doc_ids = [d["id"] for d in corpus]
    index, build = timed(lambda: bm25.BM25Index.build(doc_ids, tokens))
    with tempfile.TemporaryDirectory() as folder:
        index.save(Path(folder) / "index.npz")
        size_mb = sum(p.stat().st_size for p in Path(folder).iterdir()) / 2**20

    from rank_bm25 import BM25Okapi

    okapi, okapi_build = timed(lambda: BM25Okapi(tokens))
    sample = queries[:args.reference_queries]

    def okapi_top(query: str) -> list[str]:
        scores = okapi.get_scores(bm25.tokenize(query))
        return [doc_ids[i] for i in np.lexsort((np.arange(len(scores)), -scores))[:args.k]]

    reference, okapi_seconds = timed(lambda: [okapi_top(q) for q in sample])
    rows = [{"engine": "rank_bm25.BM25Okapi", "build_s": round(okapi_build, 2),
             "queries_per_s": round(len(sample) / okapi_seconds, 1), **agreement(reference, reference)}]
    for threads in sorted({1, args.threads}):
        hits, seconds = timed(lambda: bm25.retrieve(index, [{"id": str(i), "question": q} for i, q in enumerate(queries)],
                                                    args.k, threads=threads))
        rows.append({"engine": f"this project ({threads} thread{'s' if threads > 1 else ''})", "build_s": round(build, 2),
                     "index_mb": round(size_mb, 1), "queries_per_s": round(len(queries) / seconds, 1),
                     **agreement([h["doc_ids"] for h in hits[:len(reference)]], reference)})
    ranked, seconds = timed(lambda: [[d for d, _ in index.top_k_by_full_sort(q, args.k)] for q in queries])
    rows.append({"engine": "this project, full sort (previous top-k)", "queries_per_s": round(len(queries) / seconds, 1),
                 **agreement(ranked[:len(reference)], reference)})
    rows += bm25s_rows(doc_ids, tokens, queries, args.k, args.threads, reference)
    print(f"{len(corpus)} passages, {len(queries)} queries, top-{args.k}; agreement against rank_bm25 on "
          f"{len(reference)} queries")
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()

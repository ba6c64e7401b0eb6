"""Retrieval speed and agreement, measured side by side in one run.

On a real corpus (--corpus, --questions), in one process: this
project's BM25 (top-k over the documents a query touches, on 1 and on
--threads threads; and a full sort of every score, its previous top-k),
rank_bm25.BM25Okapi (on --reference-queries queries: it scores every document
in Python) and, when importable, bm25s (not a dependency: install it apart).
Every engine gets the same tokens. Prints queries/s, build seconds, the saved
index's size and each engine's top-k agreement with rank_bm25.

  python -m refiner_lib.retrieval_benchmark --corpus ../shared/data/hotpotqa/corpus.jsonl \\
      --questions ../shared/data/hotpotqa/dev_distractor.jsonl --queries 500 --threads 2

At scale (--synthetic-passages N): a corpus of N passages of about 100 words
drawn from a Zipfian vocabulary is written to a scratch folder, then each
engine builds and answers queries in a process of its own (its peak memory is
that process' peak RSS): this project's streamed, memory-mapped index, and
bm25s (when importable) on the same tokens. Prints build seconds, peak memory,
index size on disk, queries/s and the top-k overlap between the two.

  python -m refiner_lib.retrieval_benchmark --synthetic-passages 2000000 --queries 1000 --threads 2
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import string
import tempfile
import time
from pathlib import Path

import numpy as np

from . import bm25
from .jsonl import load_jsonl
from .measure import folder_bytes


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


def zipf_words(vocabulary: int, exponent: float):
    """Words named by rank (a, b, ..., z, ba, bb, ...: one \\w+ token each) and
    the cumulative Zipf distribution over them."""
    letters = string.ascii_lowercase

    def name(rank: int) -> str:
        text = letters[rank % 26]
        while rank >= 26:
            rank //= 26
            text = letters[rank % 26] + text
        return text

    weights = np.arange(1, vocabulary + 1, dtype=np.float64) ** -exponent
    cdf = np.cumsum(weights)
    return np.array([name(r) for r in range(vocabulary)], dtype=object), cdf / cdf[-1]


def write_synthetic_corpus(path: Path, passages: int, seed: int, words_per_passage: int = 100,
                           vocabulary: int = 1_000_000, exponent: float = 1.1) -> None:
    """FlashRAG layout: a three-word title line, then the passage, streamed to disk."""
    words, cdf = zipf_words(vocabulary, exponent)
    rng = np.random.default_rng(seed)
    with path.open("w", encoding="utf-8") as handle:
        for start in range(0, passages, 20_000):
            count = min(20_000, passages - start)
            lengths = rng.integers(words_per_passage - 20, words_per_passage + 21, count)
            drawn = words[np.searchsorted(cdf, rng.random(int(lengths.sum())))]
            ends = np.cumsum(lengths)
            for number, (end, length) in enumerate(zip(ends, lengths)):
                text = drawn[end - length:end]
                handle.write(json.dumps({"id": f"p{start + number}",
                                         "contents": " ".join(text[:3]) + "\n" + " ".join(text[3:])}) + "\n")


def synthetic_queries(count: int, seed: int, words: int = 8, vocabulary: int = 1_000_000,
                      exponent: float = 1.1) -> list[str]:
    names, cdf = zipf_words(vocabulary, exponent)
    rng = np.random.default_rng(seed + 1)
    return [" ".join(names[np.searchsorted(cdf, rng.random(words))]) for _ in range(count)]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ours_at_scale(corpus: Path, folder: Path, queries: list[str], k: int, threads: int) -> dict:
    """Build (streamed) in this process, then query the memory-mapped index."""
    stats, build = timed(lambda: bm25.build_on_disk(corpus, folder))
    build_peak = peak_rss_mb()
    index = bm25.BM25Index.load(folder)
    rows = [{"id": str(i), "question": q} for i, q in enumerate(queries)]
    bm25.retrieve(index, rows[:20], k)  # warm-up: the page cache holds the frequent tokens' postings
    rates, ranked = {}, None
    for count in sorted({1, threads}):
        hits, seconds = timed(lambda: bm25.retrieve(index, rows, k, threads=count))
        rates[count] = round(len(rows) / seconds, 1)
        ranked = [h["doc_ids"] for h in hits]
    return {"engine": "this project (streamed build, memory-mapped)", "build_s": round(build, 1),
            "build_peak_rss_mb": round(build_peak, 1), "index_mb": round(folder_bytes(folder) / 2**20, 1),
            "queries_per_s": rates, **stats, "ranked": ranked}


def bm25s_at_scale(corpus: Path, folder: Path, queries: list[str], k: int, threads: int) -> dict:
    """bm25s on the same tokens (\\w+, lowercased, no stopwords, no stemming):
    it tokenizes and indexes the whole corpus in memory."""
    try:
        import bm25s
    except ImportError:
        return {"engine": "bm25s", "note": "not installed (pip install bm25s to compare)"}

    def build():
        texts = [json.loads(line)["contents"] for line in corpus.open(encoding="utf-8")]
        tokens = bm25s.tokenize(texts, lower=True, token_pattern=r"(?u)\w+", stopwords=None, show_progress=False)
        del texts
        engine = bm25s.BM25(method="robertson", k1=1.5, b=0.75)
        engine.index(tokens, show_progress=False)
        return engine, tokens.vocab

    (engine, vocab), build_s = timed(build)
    build_peak = peak_rss_mb()
    engine.save(str(folder))
    ids = [[vocab[t] for t in bm25.tokenize(q) if t in vocab] for q in queries]
    engine.retrieve(ids[:20], k=k, show_progress=False)
    rates, found = {}, None
    for count in sorted({1, threads}):
        (found, _), seconds = timed(lambda: engine.retrieve(ids, k=k, n_threads=count, show_progress=False))
        rates[count] = round(len(queries) / seconds, 1)
    return {"engine": f"bm25s {bm25s.__version__} (robertson)", "build_s": round(build_s, 1),
            "build_peak_rss_mb": round(build_peak, 1), "index_mb": round(folder_bytes(folder) / 2**20, 1),
            "queries_per_s": rates, "ranked": [[f"p{i}" for i in row] for row in found.tolist()]}


def in_own_process(function, *args) -> dict:
    """Run an engine in a fresh process: its peak RSS is its own."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(function, args)


def scale_benchmark(passages: int, queries: int, k: int, threads: int, seed: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        corpus = scratch / "corpus.jsonl"
        _, seconds = timed(lambda: write_synthetic_corpus(corpus, passages, seed))
        print(f"{passages} synthetic passages ({corpus.stat().st_size / 2**20:.0f} MB of JSONL, written in "
              f"{seconds:.0f} s), {queries} queries of 8 Zipfian words, top-{k}", flush=True)
        texts = synthetic_queries(queries, seed)
        ours = in_own_process(ours_at_scale, corpus, scratch / "ours", texts, k, threads)
        other = in_own_process(bm25s_at_scale, corpus, scratch / "bm25s", texts, k, threads)
        for row in (ours, other):
            if "ranked" in row and "ranked" in ours and row is not ours:
                row.update(agreement(row["ranked"], ours["ranked"]))
            print(json.dumps({key: value for key, value in row.items() if key != "ranked"}), flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--synthetic-passages", type=int, help="the scale benchmark on this many synthetic passages")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--corpus", help="FlashRAG corpus JSONL ({id, contents})")
    parser.add_argument("--questions", help="JSONL with a 'question' field")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--reference-queries", type=int, default=100, help="queries rank_bm25 answers")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if args.synthetic_passages:
        return scale_benchmark(args.synthetic_passages, args.queries, args.k, args.threads, args.seed)
    if not (args.corpus and args.questions):
        parser.error("give --corpus and --questions, or --synthetic-passages")

    corpus = load_jsonl(args.corpus)
    queries = [r["question"] for r in load_jsonl(args.questions)[:args.queries]]
    tokens = [bm25.tokenize(d["contents"]) for d in corpus]
    doc_ids = [d["id"] for d in corpus]
    index, build = timed(lambda: bm25.BM25Index.build(doc_ids, tokens))
    with tempfile.TemporaryDirectory() as folder:
        index.save(Path(folder) / "index")
        size_mb = folder_bytes(Path(folder) / "index") / 2**20

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

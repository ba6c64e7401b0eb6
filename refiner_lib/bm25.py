"""Okapi BM25 over an inverted index, saved without pickle (npz + json).

Scores equal `rank_bm25.BM25Okapi` on the same tokens: the same idf with the
epsilon floor for negative idf, and repeated query tokens counted each time.
The index is sparse, so scoring a query touches only the postings of its
tokens instead of every document, and ranking sorts only the documents it
touched: a query's cost follows its postings, not the corpus size.
"""
from __future__ import annotations

import dataclasses
import json
import re
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .errors import InputError
from .jsonl import atomic_path

TOKEN = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class BM25Params:
    """Okapi BM25's constants (config `retrieval`; rank_bm25's defaults)."""

    k1: float = 1.5  # term-frequency saturation
    b: float = 0.75  # document-length normalization
    epsilon: float = 0.25  # floor of a negative idf, as a share of the mean idf


class Postings(NamedTuple):
    """A CSR inverted index: token i's postings are [indptr[i], indptr[i + 1])."""

    indptr: np.ndarray
    docs: np.ndarray  # document index of each posting
    counts: np.ndarray  # term frequency of each posting


def tokenize(text: str) -> list[str]:
    return TOKEN.findall(text.lower())


class BM25Index:
    def __init__(self, doc_ids, vocab, postings: Postings, doc_len, params: BM25Params = BM25Params()):
        self.doc_ids = list(doc_ids)
        self.vocab = {token: i for i, token in enumerate(vocab)}
        self.indptr, self.postings_doc, self.postings_tf = postings
        self.doc_len = doc_len.astype(np.float64)
        self.params = params
        self.avgdl = float(self.doc_len.mean()) if len(self.doc_len) else 0.0
        self.idf = self._idf()
        # every posting's BM25 term, computed once (a query sums the terms of its tokens' postings)
        k1 = params.k1
        norm = k1 * (1 - params.b + params.b * self.doc_len / self.avgdl)
        token_of_posting = np.repeat(np.arange(len(self.idf)), np.diff(self.indptr))
        self.weights = self.idf[token_of_posting] * self.postings_tf * (k1 + 1) / (self.postings_tf + norm[self.postings_doc])
        self.positive_terms = bool(len(self.idf)) and float(self.idf.min()) > 0
        self._scratch = threading.local()  # per thread: a score per document, zero between queries

    @classmethod
    def build(cls, doc_ids: list[str], tokenized_docs: list[list[str]], params: BM25Params = BM25Params()
              ) -> "BM25Index":
        if not tokenized_docs:
            raise InputError("BM25: the corpus is empty")
        postings: dict[str, list[tuple[int, int]]] = {}
        for doc_index, tokens in enumerate(tokenized_docs):
            for token, count in Counter(tokens).items():
                postings.setdefault(token, []).append((doc_index, count))
        vocab = list(postings)
        indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
        indptr[1:] = np.cumsum([len(postings[t]) for t in vocab])
        flat = [pair for token in vocab for pair in postings[token]]
        postings_doc = np.array([d for d, _ in flat], dtype=np.int32)
        postings_tf = np.array([c for _, c in flat], dtype=np.float64)
        doc_len = np.array([len(t) for t in tokenized_docs], dtype=np.int64)
        return cls(doc_ids, vocab, Postings(indptr, postings_doc, postings_tf), doc_len, params)

    def _idf(self) -> np.ndarray:
        n_docs = len(self.doc_ids)
        doc_freq = np.diff(self.indptr).astype(np.float64)
        idf = np.log(n_docs - doc_freq + 0.5) - np.log(doc_freq + 0.5)
        floor = self.params.epsilon * (idf.sum() / len(idf))
        return np.where(idf < 0, floor, idf)

    def scores(self, query_tokens: list[str]) -> np.ndarray:
        """The BM25 score of every document."""
        total = np.zeros(len(self.doc_ids), dtype=np.float64)
        for docs, contribution in self.contributions(query_tokens):
            total[docs] += contribution
        return total

    def contributions(self, query_tokens: list[str]):
        """Per query token (each time it occurs): its postings' documents and
        their BM25 terms."""
        for token in query_tokens:
            index = self.vocab.get(token)
            if index is not None:
                start, end = self.indptr[index], self.indptr[index + 1]
                yield self.postings_doc[start:end], self.weights[start:end]

    def top_k(self, query: str, k: int) -> list[tuple[str, float]]:
        """The k best documents, ties in corpus order; documents the query does
        not touch score 0 and come last, in corpus order, as a full sort would
        place them (when every term is positive, which a floored idf ensures
        unless the mean idf is not positive: then every document is sorted)."""
        if not self.positive_terms:
            return self.top_k_by_full_sort(query, k)
        total = self._scores_buffer()
        parts = list(self.contributions(tokenize(query)))
        for docs, contribution in parts:
            total[docs] += contribution
        # a document once per query token that touches it
        docs = np.concatenate([docs for docs, _ in parts]) if parts else np.zeros(0, dtype=np.int64)
        scores = total[docs]
        total[docs] = 0.0  # the buffer is zero again for the next query
        # a document repeats at most len(parts) times: the k*len(parts) best entries hold the k best documents
        # (and every document tied with the k-th best)
        depth = k * len(parts)
        if len(docs) > depth:
            kth = np.partition(scores, len(scores) - depth)[len(scores) - depth]
            docs, scores = docs[scores >= kth], scores[scores >= kth]
        docs, first = np.unique(docs, return_index=True)
        scores = scores[first]
        order = np.lexsort((docs, -scores))[:k]
        hits = [(int(docs[i]), float(scores[i])) for i in order]
        if len(hits) < k:
            hits += [(i, 0.0) for i in untouched_in_order(set(docs.tolist()), len(self.doc_ids), k - len(hits))]
        return [(self.doc_ids[i], score) for i, score in hits]

    def top_k_by_full_sort(self, query: str, k: int) -> list[tuple[str, float]]:
        """top_k by sorting every document's score (ties in corpus order)."""
        scores = self.scores(tokenize(query))
        return [(self.doc_ids[i], float(scores[i])) for i in np.lexsort((np.arange(len(scores)), -scores))[:k]]

    def _scores_buffer(self) -> np.ndarray:
        buffer = getattr(self._scratch, "scores", None)
        if buffer is None:
            buffer = self._scratch.scores = np.zeros(len(self.doc_ids), dtype=np.float64)
        return buffer

    def save(self, path: str | Path) -> None:
        path = Path(path)
        with atomic_path(path) as temporary, temporary.open("wb") as handle:
            np.savez(handle, indptr=self.indptr, postings_doc=self.postings_doc, postings_tf=self.postings_tf,
                     doc_len=self.doc_len.astype(np.int64))
        meta = {"doc_ids": self.doc_ids, "vocab": list(self.vocab), **dataclasses.asdict(self.params)}
        with atomic_path(meta_path(path)) as temporary:
            temporary.write_text(json.dumps(meta), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> "BM25Index":
        path = Path(path)
        meta = json.loads(meta_path(path).read_text(encoding="utf-8"))
        with np.load(path, allow_pickle=False) as arrays:
            postings = Postings(arrays["indptr"], arrays["postings_doc"], arrays["postings_tf"])
            return cls(meta["doc_ids"], meta["vocab"], postings, arrays["doc_len"],
                       BM25Params(meta["k1"], meta["b"], meta["epsilon"]))


def meta_path(index_path: Path) -> Path:
    return index_path.with_name(index_path.name.removesuffix(".npz") + ".meta.json")


def build_index(corpus: list[dict], params: BM25Params = BM25Params()) -> BM25Index:
    return BM25Index.build([d["id"] for d in corpus], [tokenize(d["contents"]) for d in corpus], params)


def untouched_in_order(touched: set, n_docs: int, count: int) -> list[int]:
    """The first `count` document indices not in `touched`."""
    found = []
    for index in range(n_docs):
        if len(found) == count:
            break
        if index not in touched:
            found.append(index)
    return found


def retrieve(index: BM25Index, questions: list[dict], top_k: int, threads: int = 1) -> list[dict]:
    """Top-k documents per question, in question order; `threads` answer
    questions at once (numpy's array work runs outside the GIL)."""
    def one(q: dict) -> dict:
        hits = index.top_k(q["question"], top_k)
        return {"id": q["id"], "doc_ids": [d for d, _ in hits], "scores": [s for _, s in hits]}

    if threads <= 1:
        return [one(q) for q in questions]
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, questions))


def rank_nodes(query: str, texts: list[str], params: BM25Params = BM25Params()) -> list[float]:
    """BM25 of one query against a small ad-hoc collection (the local scorer)."""
    if not texts:
        return []
    index = BM25Index.build([str(i) for i in range(len(texts))], [tokenize(t) for t in texts], params)
    return index.scores(tokenize(query)).tolist()


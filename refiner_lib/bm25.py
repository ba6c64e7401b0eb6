"""Okapi BM25 over an inverted index, saved without pickle (npz + json).

Scores equal `rank_bm25.BM25Okapi` on the same tokens: the same idf with the
epsilon floor for negative idf, and repeated query tokens counted each time.
The index is sparse, so scoring a query touches only the postings of its
tokens instead of every document.
"""
from __future__ import annotations

import json
import re
from collections import Counter
import dataclasses
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
        total = np.zeros(len(self.doc_ids), dtype=np.float64)
        k1, b = self.params.k1, self.params.b
        norm = k1 * (1 - b + b * self.doc_len / self.avgdl)
        for token in query_tokens:
            index = self.vocab.get(token)
            if index is None:
                continue
            start, end = self.indptr[index], self.indptr[index + 1]
            docs, tf = self.postings_doc[start:end], self.postings_tf[start:end]
            total[docs] += self.idf[index] * tf * (k1 + 1) / (tf + norm[docs])
        return total

    def top_k(self, query: str, k: int) -> list[tuple[str, float]]:
        scores = self.scores(tokenize(query))
        order = np.lexsort((np.arange(len(scores)), -scores))[:k]  # ties: corpus order
        return [(self.doc_ids[i], float(scores[i])) for i in order]

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


def retrieve(index: BM25Index, questions: list[dict], top_k: int) -> list[dict]:
    return [{"id": q["id"], "doc_ids": [d for d, _ in hits], "scores": [s for _, s in hits]}
            for q in questions for hits in [index.top_k(q["question"], top_k)]]


def rank_nodes(query: str, texts: list[str], params: BM25Params = BM25Params()) -> list[float]:
    """BM25 of one query against a small ad-hoc collection (the local scorer)."""
    if not texts:
        return []
    index = BM25Index.build([str(i) for i in range(len(texts))], [tokenize(t) for t in texts], params)
    return index.scores(tokenize(query)).tolist()


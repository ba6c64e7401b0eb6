"""Okapi BM25 over an inverted index, saved without pickle (a folder of .npy
arrays, string tables and JSON) and memory-mapped when loaded.

Scores equal `rank_bm25.BM25Okapi` on the same tokens: the same idf with the
epsilon floor for negative idf, and repeated query tokens counted each time.
The index is sparse, so scoring a query touches only the postings of its
tokens instead of every document, and ranking sorts only the documents it
touched: a query's cost follows its postings, not the corpus size.

A corpus is indexed by streaming (`build_on_disk`): chunks of documents are
tokenized and spilled to disk, then their postings are written into place in
memory-mapped arrays, so no more than one chunk's tokens is ever in memory; at
query time the arrays stay on disk and the page cache holds what queries touch.
"""
from __future__ import annotations

import json
import re
import tempfile
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .errors import InputError
from .jsonl import atomic_dir, read_jsonl, require, require_text

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


def bm25_terms(indptr: np.ndarray, postings_doc: np.ndarray, postings_tf: np.ndarray, idf: np.ndarray,
               doc_len: np.ndarray, params: BM25Params) -> np.ndarray:
    """Every posting's BM25 term (idf x saturated, length-normalized tf): a
    query's score sums the terms of its tokens' postings."""
    k1 = params.k1
    norm = k1 * (1 - params.b + params.b * doc_len / doc_len.mean())
    token_of_posting = np.repeat(np.arange(len(idf)), np.diff(indptr))
    return idf[token_of_posting] * postings_tf * (k1 + 1) / (postings_tf + norm[postings_doc])


def floored_idf(doc_freq: np.ndarray, n_docs: int, epsilon: float) -> np.ndarray:
    """rank_bm25's idf: a negative one (a token in more than half the documents)
    becomes epsilon x the mean idf."""
    doc_freq = doc_freq.astype(np.float64)
    idf = np.log(n_docs - doc_freq + 0.5) - np.log(doc_freq + 0.5)
    floor = epsilon * (idf.sum() / len(idf))
    return np.where(idf < 0, floor, idf)


class BM25Index:
    """Top-k search over CSR postings and their precomputed BM25 terms. `vocab`
    maps a token to its row (a dict, or a memory-mapped StringTable) and
    `doc_ids` a row of the corpus to its id (a list, or a StringTable)."""

    def __init__(self, doc_ids, vocab, indptr: np.ndarray, postings_doc: np.ndarray, weights: np.ndarray,
                 params: BM25Params = BM25Params(), positive_terms: bool = True):
        self.doc_ids, self.vocab, self.params = doc_ids, vocab, params
        self.indptr, self.postings_doc, self.weights = indptr, postings_doc, weights
        self.positive_terms = positive_terms  # every term > 0: documents a query does not touch score lowest
        self._scratch = threading.local()  # per thread: a score per document, zero between queries

    @classmethod
    def build(cls, doc_ids: list[str], tokenized_docs: list[list[str]], params: BM25Params = BM25Params()
              ) -> "BM25Index":
        """In memory, for small collections (a question's sections, tests)."""
        if not tokenized_docs:
            raise InputError("BM25: the corpus is empty")
        postings: dict[str, list[tuple[int, int]]] = {}
        for doc_index, tokens in enumerate(tokenized_docs):
            for token, count in Counter(tokens).items():
                postings.setdefault(token, []).append((doc_index, count))
        vocab = sorted(postings)
        indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
        indptr[1:] = np.cumsum([len(postings[t]) for t in vocab])
        flat = [pair for token in vocab for pair in postings[token]]
        postings_doc = np.array([d for d, _ in flat], dtype=np.int32)
        postings_tf = np.array([c for _, c in flat], dtype=np.float64)
        doc_len = np.array([len(t) for t in tokenized_docs], dtype=np.float64)
        idf = floored_idf(np.diff(indptr), len(doc_ids), params.epsilon)
        weights = bm25_terms(indptr, postings_doc, postings_tf, idf, doc_len, params)
        return cls(list(doc_ids), {token: i for i, token in enumerate(vocab)}, indptr, postings_doc, weights, params,
                   bool(len(idf)) and float(idf.min()) > 0)

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
        parts = list(self.contributions(tokenize(query)))
        if parts and sum(len(docs) for docs, _ in parts) * DENSE_SHARE > len(self.doc_ids) > k:
            return self.top_k_dense(parts, k)
        total = self._scores_buffer()
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

    def top_k_dense(self, parts: list, k: int) -> list[tuple[str, float]]:
        """top_k for a query whose postings cover a large share of the corpus:
        every document's score in one bincount (each document's terms added in
        query order, as top_k adds them), then the k best of them all, ties in
        corpus order. One pass over the postings and a few over the scores
        instead of several over the postings."""
        scores = np.bincount(np.concatenate([docs for docs, _ in parts]),
                             np.concatenate([terms for _, terms in parts]), minlength=len(self.doc_ids))
        kth = np.partition(scores, len(scores) - k)[len(scores) - k]
        docs = np.flatnonzero(scores >= kth)
        order = np.lexsort((docs, -scores[docs]))[:k]
        return [(self.doc_ids[int(docs[i])], float(scores[docs[i]])) for i in order]

    def top_k_by_full_sort(self, query: str, k: int) -> list[tuple[str, float]]:
        """top_k by sorting every document's score (ties in corpus order)."""
        scores = self.scores(tokenize(query))
        return [(self.doc_ids[i], float(scores[i])) for i in np.lexsort((np.arange(len(scores)), -scores))[:k]]

    def _scores_buffer(self) -> np.ndarray:
        buffer = getattr(self._scratch, "scores", None)
        if buffer is None:
            buffer = self._scratch.scores = np.zeros(len(self.doc_ids), dtype=np.float64)
        return buffer

    def save(self, folder: str | Path) -> None:
        """The on-disk layout build_on_disk writes (tokens in sorted order)."""
        tokens = sorted(self.vocab, key=lambda t: t.encode("utf-8"))
        rows = np.array([self.vocab[t] for t in tokens], dtype=np.int64)
        lengths = np.diff(self.indptr)[rows]
        indptr = np.zeros(len(tokens) + 1, dtype=np.int64)
        indptr[1:] = np.cumsum(lengths)
        take = np.concatenate([np.arange(self.indptr[r], self.indptr[r + 1]) for r in rows]) if len(rows) else rows
        with atomic_dir(folder) as staging:
            StringTable.write(staging / "vocab", tokens)
            StringTable.write(staging / "doc_ids", self.doc_ids)
            np.save(staging / "indptr.npy", indptr)
            np.save(staging / "postings_doc.npy", np.asarray(self.postings_doc)[take])
            np.save(staging / "weights.npy", np.asarray(self.weights)[take])
            write_meta(staging, self.params, len(self.doc_ids), self.positive_terms)

    @classmethod
    def load(cls, folder: str | Path) -> "BM25Index":
        """Memory-mapped: nothing is read until a query touches it."""
        folder = Path(folder)
        meta_file = folder / META
        if not meta_file.exists():
            raise InputError(f"{folder}: not a BM25 index folder (no {META}); build it again (build_bm25_index)")
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT:
            raise InputError(f"{folder}: index format {meta.get('format')}, this code reads {FORMAT}; build it again")

        def array(name: str) -> np.ndarray:
            return np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False)

        return cls(StringTable.open(folder / "doc_ids"), StringTable.open(folder / "vocab"), array("indptr"),
                   array("postings_doc"), array("weights"), BM25Params(meta["k1"], meta["b"], meta["epsilon"]),
                   meta["positive_terms"])


FORMAT = 2
META = "meta.json"
# a query whose postings number more than 1/DENSE_SHARE of the documents ranks every document (top_k_dense):
# one thread, 100k Zipfian passages, 1,028 queries/s against 758; HotpotQA's 17,764 passages, 6,237 against 3,823
DENSE_SHARE = 4


def write_meta(folder: Path, params: BM25Params, n_docs: int, positive_terms: bool, **extra) -> None:
    meta = {"format": FORMAT, "k1": params.k1, "b": params.b, "epsilon": params.epsilon, "documents": n_docs,
            "positive_terms": positive_terms, **extra}
    (folder / META).write_text(json.dumps(meta, indent=1), encoding="utf-8")


class StringTable:
    """Strings as one UTF-8 blob and their offsets, memory-mapped: row i without
    loading the others, and (when written sorted, as the vocabulary is) a row
    found by binary search instead of a dict of millions of strings."""

    def __init__(self, blob: np.ndarray, offsets: np.ndarray):
        self.blob, self.offsets = blob, offsets

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, row: int) -> str:
        return bytes(self.blob[self.offsets[row]:self.offsets[row + 1]]).decode("utf-8")

    def get(self, token: str, default=None):
        """The row of `token` in a table written in sorted (UTF-8 byte) order."""
        key, low, high = token.encode("utf-8"), 0, len(self)
        while low < high:
            middle = (low + high) // 2
            if bytes(self.blob[self.offsets[middle]:self.offsets[middle + 1]]) < key:
                low = middle + 1
            else:
                high = middle
        return low if low < len(self) and self[low] == token else default

    @staticmethod
    def write(stem: Path, strings) -> None:
        """stem.bin (the blob) and stem.offsets.npy, written as the strings come."""
        offsets, position = [0], 0
        with open(stem.with_suffix(".bin"), "wb") as blob:
            for text in strings:
                encoded = text.encode("utf-8")
                blob.write(encoded)
                position += len(encoded)
                offsets.append(position)
        np.save(stem.with_suffix(".offsets.npy"), np.array(offsets, dtype=np.int64))

    @classmethod
    def open(cls, stem: Path) -> "StringTable":
        blob_path = stem.with_suffix(".bin")
        blob = np.memmap(blob_path, dtype=np.uint8, mode="r") if blob_path.stat().st_size else np.zeros(0, np.uint8)
        return cls(blob, np.load(stem.with_suffix(".offsets.npy"), mmap_mode="r", allow_pickle=False))


def corpus_documents(path: str | Path):
    """(line, id, contents) of a FlashRAG corpus JSONL, one record at a time."""
    for line, record in read_jsonl(path):
        where = f"{path}:{line}"
        yield line, str(require(record, "id", (str, int), where)), require_text(record, "contents", where)


def build_on_disk(corpus_path: str | Path, folder: str | Path, params: BM25Params = BM25Params(),
                  chunk_docs: int = 50_000) -> dict:
    """Index a corpus JSONL into `folder` by streaming: pass 1 tokenizes
    `chunk_docs` documents at a time and spills each chunk's (token, document,
    count) triples to disk; pass 2 writes every chunk's postings into place in
    memory-mapped arrays, tokens in sorted order and each token's documents in
    corpus order (what the in-memory build gives). Returns build statistics."""
    folder = Path(folder)
    with atomic_dir(folder) as staging, tempfile.TemporaryDirectory(dir=staging.parent) as spill:
        spilled = SpilledCorpus.read(corpus_path, Path(spill), staging / "doc_ids", chunk_docs)
        return spilled.write_postings(staging, params)


class SpilledCorpus:
    """Pass 1 of build_on_disk: per chunk a sorted array of (provisional token,
    document) keys with counts on disk; in memory only the vocabulary, each
    token's document frequency and each document's length."""

    def __init__(self, spill: Path, vocab: dict, doc_freq: np.ndarray, doc_len: np.ndarray, chunks: list[Path]):
        self.spill, self.vocab, self.doc_freq, self.doc_len, self.chunks = spill, vocab, doc_freq, doc_len, chunks

    @classmethod
    def read(cls, corpus_path, spill: Path, doc_ids_stem: Path, chunk_docs: int) -> "SpilledCorpus":
        vocab: dict[str, int] = {}
        doc_freq, doc_len, chunks, seen_ids = np.zeros(0, np.int64), [], [], {}
        batch: list[list[str]] = []

        def flush():
            nonlocal doc_freq
            path = spill / f"chunk{len(chunks)}.npz"
            first = len(doc_len) - len(batch)
            keys, counts = chunk_postings(batch, vocab, first)
            np.savez(path, keys=keys, counts=counts)
            chunks.append(path)
            tokens = (keys >> 32).astype(np.int64)
            doc_freq = np.concatenate([doc_freq, np.zeros(len(vocab) - len(doc_freq), np.int64)])
            doc_freq += np.bincount(tokens, minlength=len(vocab))
            batch.clear()

        def documents():
            for line, doc_id, contents in corpus_documents(corpus_path):
                if doc_id in seen_ids:
                    raise InputError(f"{corpus_path}:{line}: duplicate id '{doc_id}' (first at line {seen_ids[doc_id]})")
                seen_ids[doc_id] = line
                tokens = tokenize(contents)
                doc_len.append(len(tokens))
                batch.append(tokens)
                if len(batch) == chunk_docs:
                    flush()
                yield doc_id

        StringTable.write(doc_ids_stem, documents())
        if batch:
            flush()
        if not doc_len:
            raise InputError(f"{corpus_path}: the corpus has no documents")
        return cls(spill, vocab, doc_freq, np.array(doc_len, dtype=np.float64), chunks)

    def write_postings(self, folder: Path, params: BM25Params) -> dict:
        """Pass 2: the CSR arrays, each chunk's postings written into place."""
        tokens = sorted(self.vocab)
        final = np.empty(len(tokens), np.int64)  # provisional token id -> its row in sorted order
        final[[self.vocab[t] for t in tokens]] = np.arange(len(tokens))
        StringTable.write(folder / "vocab", tokens)
        freq = np.zeros(len(tokens), np.int64)
        freq[final] = self.doc_freq
        indptr = np.zeros(len(tokens) + 1, np.int64)
        indptr[1:] = np.cumsum(freq)
        np.save(folder / "indptr.npy", indptr)
        idf = floored_idf(freq, len(self.doc_len), params.epsilon)
        norm = params.k1 * (1 - params.b + params.b * self.doc_len / self.doc_len.mean())
        docs = np.lib.format.open_memmap(folder / "postings_doc.npy", "w+", np.int32, (int(indptr[-1]),))
        weights = np.lib.format.open_memmap(folder / "weights.npy", "w+", np.float64, (int(indptr[-1]),))
        cursor = indptr[:-1].copy()
        for path in self.chunks:
            with np.load(path) as chunk:
                token = final[chunk["keys"] >> 32]
                doc = (chunk["keys"] & 0xFFFFFFFF).astype(np.int64)
                tf = chunk["counts"].astype(np.float64)
            order = np.argsort(token, kind="stable")  # keeps each token's documents in corpus order
            token, doc, tf = token[order], doc[order], tf[order]
            runs, starts, counts = np.unique(token, return_index=True, return_counts=True)
            place = cursor[token] + np.arange(len(token)) - np.repeat(starts, counts)
            docs[place] = doc
            weights[place] = idf[token] * tf * (params.k1 + 1) / (tf + norm[doc])
            cursor[runs] += counts
        docs.flush()
        weights.flush()
        positive = bool(len(idf)) and float(idf.min()) > 0
        write_meta(folder, params, len(self.doc_len), positive, tokens=len(tokens), postings=int(indptr[-1]))
        return {"documents": len(self.doc_len), "tokens": len(tokens), "postings": int(indptr[-1]),
                "corpus_tokens": int(self.doc_len.sum())}


def chunk_postings(batch: list[list[str]], vocab: dict, first_doc: int) -> tuple[np.ndarray, np.ndarray]:
    """One chunk's distinct (token, document) pairs as sorted int64 keys
    (provisional token id << 32 | document index) and their counts."""
    lengths = np.array([len(tokens) for tokens in batch], np.int64)
    ids = np.fromiter((vocab.setdefault(t, len(vocab)) for tokens in batch for t in tokens), np.int64,
                      count=int(lengths.sum()))
    docs = np.repeat(np.arange(first_doc, first_doc + len(batch), dtype=np.int64), lengths)
    return np.unique((ids << 32) | docs, return_counts=True)


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


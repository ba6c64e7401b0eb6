"""Our BM25 ranks the shared HotpotQA corpus exactly as rank_bm25.BM25Okapi."""
import json

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from conftest import HOTPOTQA, need_shared
from refiner_lib import bm25, data


@pytest.fixture(scope="module")
def corpus():
    return data.load_corpus(need_shared(HOTPOTQA / "corpus.jsonl"))


def test_scores_and_ranking_equal_rank_bm25(corpus, tmp_path):
    tokenized = [bm25.tokenize(d["contents"]) for d in corpus]
    reference = BM25Okapi(tokenized)
    ours = bm25.build_index(corpus, bm25.BM25Params(1.5, 0.75, 0.25))
    ours.save(tmp_path / "index")
    loaded = bm25.BM25Index.load(tmp_path / "index")
    questions = [json.loads(line)["question"] for line in open(HOTPOTQA / "dev_distractor.jsonl")][:25]
    for question in questions:
        expected = reference.get_scores(bm25.tokenize(question))
        got = loaded.scores(bm25.tokenize(question))
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)
        expected_top = [corpus[i]["id"] for i in np.lexsort((np.arange(len(expected)), -expected))[:10]]
        assert [doc_id for doc_id, _ in loaded.top_k(question, 10)] == expected_top


def test_retrieval_finds_gold_paragraphs(corpus):
    index = bm25.build_index(corpus, bm25.BM25Params(1.5, 0.75, 0.25))
    questions = data.load_hotpotqa(HOTPOTQA / "dev_distractor.jsonl", corpus)[:200]
    hits = bm25.retrieve(index, questions, 10)
    recall = np.mean([len({s["doc_id"] for s in q["supporting"]} & set(h["doc_ids"])) / max(1, len(q["supporting"]))
                      for q, h in zip(questions, hits)])
    assert recall > 0.5, recall  # BM25 on HotpotQA distractor paragraphs is a strong baseline


def test_repeated_query_tokens_count_each_time():
    index = bm25.BM25Index.build(["a", "b", "c"], [["x", "y"], ["y", "z"], ["z", "w"]])
    once, twice = index.scores(["x"]), index.scores(["x", "x"])
    np.testing.assert_allclose(twice, 2 * once)


def full_sort_top_k(index, query: str, k: int) -> list[tuple[str, float]]:
    scores = index.scores(bm25.tokenize(query))
    return [(index.doc_ids[i], float(scores[i])) for i in np.lexsort((np.arange(len(scores)), -scores))[:k]]


@pytest.mark.parametrize("docs", [
    [["x", "y"], ["y", "z"], ["z", "w"], ["v"], ["x", "y"], ["u", "u"]],  # positive idf, ties, untouched documents
    [["x", "y"], ["x", "y"], ["x", "z"]],  # idf of x and y below 0: floored at a negative mean, every doc sorted
])
def test_top_k_over_touched_documents_equals_a_full_sort(docs):
    index = bm25.BM25Index.build([f"d{i}" for i in range(len(docs))], docs)
    for query in ["x", "y z", "x y", "q", "z z w"]:
        for k in (1, 2, 4, len(docs)):
            assert index.top_k(query, k) == full_sort_top_k(index, query, k), (query, k)


def test_threads_retrieve_what_one_thread_does(corpus):
    index = bm25.build_index(corpus, bm25.BM25Params(1.5, 0.75, 0.25))
    questions = [{"id": str(i), "question": json.loads(line)["question"]}
                 for i, line in enumerate(open(HOTPOTQA / "dev_distractor.jsonl")) if i < 60]
    assert bm25.retrieve(index, questions, 10, threads=3) == bm25.retrieve(index, questions, 10)


def test_the_streamed_index_equals_the_in_memory_one(corpus, tmp_path):
    """The shared corpus indexed by streaming, in chunks of 3,000 documents (six
    chunks to merge): the same arrays, bit for bit, as the in-memory build saved,
    and the same top-10 with the same scores."""
    path = need_shared(HOTPOTQA / "corpus.jsonl")
    stats = bm25.build_on_disk(path, tmp_path / "streamed", bm25.BM25Params(), chunk_docs=3000)
    bm25.build_index(corpus).save(tmp_path / "in_memory")
    assert stats["documents"] == len(corpus)
    for name in ("indptr", "postings_doc", "weights", "vocab.offsets", "doc_ids.offsets"):
        np.testing.assert_array_equal(np.load(tmp_path / "streamed" / f"{name}.npy"),
                                      np.load(tmp_path / "in_memory" / f"{name}.npy"), err_msg=name)
    for name in ("vocab.bin", "doc_ids.bin"):
        assert (tmp_path / "streamed" / name).read_bytes() == (tmp_path / "in_memory" / name).read_bytes()
    streamed, in_memory = bm25.BM25Index.load(tmp_path / "streamed"), bm25.build_index(corpus)
    assert isinstance(streamed.weights, np.memmap)
    questions = [json.loads(line)["question"] for line in open(HOTPOTQA / "dev_distractor.jsonl")][:200]
    for question in questions:
        assert streamed.top_k(question, 10) == in_memory.top_k(question, 10)


def test_a_string_table_finds_tokens_in_byte_order(tmp_path):
    tokens = sorted(["zebra", "äpfel", "apple", "é", "10", "ß"])
    bm25.StringTable.write(tmp_path / "t", tokens)
    table = bm25.StringTable.open(tmp_path / "t")
    assert [table.get(t) for t in tokens] == list(range(len(tokens)))
    assert table.get("missing") is None and table.get("") is None and table.get("zzz") is None
    assert [table[i] for i in range(len(table))] == tokens


def test_streaming_errors_name_the_line(tmp_path):
    from refiner_lib.errors import InputError

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"id": "a", "contents": "T\\nx"}\n{"id": "b", "contents": "T\\ny"}\n{"id": "a", "contents": "T\\nz"}\n')
    with pytest.raises(InputError, match=r"corpus.jsonl:3: duplicate id 'a' \(first at line 1\)"):
        bm25.build_on_disk(corpus, tmp_path / "index", chunk_docs=2)
    assert not (tmp_path / "index").exists()  # nothing half-written
    corpus.write_text('{"id": "a", "contents": "T\\nx"}\n{"id": "b"}\n')
    with pytest.raises(InputError, match=r"corpus.jsonl:2: missing field 'contents'"):
        bm25.build_on_disk(corpus, tmp_path / "index")
    corpus.write_text("\n")
    with pytest.raises(InputError, match="no documents"):
        bm25.build_on_disk(corpus, tmp_path / "index")
    with pytest.raises(InputError, match="not a BM25 index folder"):
        bm25.BM25Index.load(tmp_path)


def test_the_dense_and_the_touched_ranking_agree(corpus, monkeypatch):
    """Queries whose postings cover much of the corpus rank every document
    (bincount); the others rank the documents they touch: forced each way, the
    same documents and the same scores, bit for bit."""
    index = bm25.build_index(corpus)
    questions = [json.loads(line)["question"] for line in open(HOTPOTQA / "dev_distractor.jsonl")][:200]
    results = {}
    for share in (1e-9, 1e9):  # never dense, always dense
        monkeypatch.setattr(bm25, "DENSE_SHARE", share)
        results[share] = [index.top_k(q, k) for q in questions for k in (1, 10)]
    assert results[1e-9] == results[1e9]

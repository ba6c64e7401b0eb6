"""Where datasets are read from (refiner_lib.sources) and how a dataset is
prepared (data.prepare): JSON arrays, JSONL and Parquet alike, Hub names,
FlashRAG metadata and wiki18's quoted titles, separate train and eval pools."""
import json

import pandas as pd
import pytest

from conftest import HOTPOTQA, SHARED, need_shared
from refiner_lib import data, loaders, metrics, sources, splits
from refiner_lib.errors import ConfigError, InputError
from refiner_lib.jsonl import write_jsonl

QUESTIONS = [{"id": "q1", "question": "Who wrote it?", "golden_answers": ["Ann"]},
             {"id": "q2", "question": "Where is it?", "golden_answers": ["Rome", "Roma"],
              "metadata": {"qa_pairs": [{"short_answers": ["Rome"]}, {"short_answers": ["Lazio", " "]}]}}]


def test_the_same_records_from_jsonl_a_json_array_and_parquet(tmp_path):
    write_jsonl(tmp_path / "q.jsonl", QUESTIONS)
    (tmp_path / "q.json").write_text(json.dumps(QUESTIONS, indent=2))
    pd.DataFrame(QUESTIONS).to_parquet(tmp_path / "q.parquet")
    loaded = {suffix: data.load_flashrag_questions(tmp_path / f"q.{suffix}") for suffix in ("jsonl", "json", "parquet")}
    assert loaded["jsonl"] == loaded["json"]
    assert [q["id"] for q in loaded["parquet"]] == ["q1", "q2"]
    assert loaded["parquet"][1]["golden_answers"] == ["Rome", "Roma"]
    assert loaded["jsonl"][1]["metadata"] == QUESTIONS[1]["metadata"] and "metadata" not in loaded["jsonl"][0]
    # FlashRAG's ASQA keeps its readings in the metadata: STR-EM scores them (a blank answer is no answer)
    assert loaded["jsonl"][1]["readings"] == [["Rome"], ["Lazio"]] and "readings" not in loaded["jsonl"][0]
    assert metrics.answer_metrics("It is in Rome.", loaded["jsonl"][1], ["em", "str_em"]) == {"em": 0.0, "str_em": 0.5}


def test_a_parquet_record_without_a_field_is_named_by_its_position(tmp_path):
    pd.DataFrame([QUESTIONS[0], {"id": "q3", "question": None, "golden_answers": ["x"]}]).to_parquet(tmp_path / "q.parquet")
    with pytest.raises(InputError, match=r"q\.parquet: record 1: .*'question'"):
        data.load_flashrag_questions(tmp_path / "q.parquet")
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(InputError, match=r"bad\.parquet: not a readable Parquet file"):
        data.load_flashrag_questions(tmp_path / "bad.parquet")


def test_a_jsonl_file_is_read_line_by_line_even_when_a_line_is_an_array(tmp_path):
    (tmp_path / "q.jsonl").write_text('["not", "an", "object"]\n')
    with pytest.raises(InputError, match=r"q\.jsonl:1: expected a JSON object"):
        sources.read_records(tmp_path / "q.jsonl")


@pytest.mark.parametrize("name, expected", [
    ("hf:RUC-NLPIR/FlashRAG_datasets/nq:test", ("RUC-NLPIR/FlashRAG_datasets", "nq", "test")),
    ("hf:hotpotqa/hotpot_qa/distractor:validation", ("hotpotqa/hotpot_qa", "distractor", "validation")),
    ("hf:owner/name:train", ("owner/name", None, "train")),
])
def test_hub_names(name, expected):
    assert sources.hub_dataset(name) == expected
    assert not sources.is_local(name)


@pytest.mark.parametrize("name", ["hf:RUC-NLPIR/FlashRAG_datasets/nq", "hf:name:test", "hf:a/b/c/d:test", "hf:a//c:x"])
def test_a_malformed_hub_name_says_the_form(name):
    with pytest.raises(InputError, match=r"hf:OWNER/NAME\[/CONFIG\]:SPLIT"):
        sources.hub_dataset(name)


def test_wiki18_titles_lose_their_quotes():
    corpus = data.load_corpus(need_shared(SHARED / "flashrag" / "wiki18_passages_sample.jsonl"))
    assert len(corpus) == 1000 and corpus[0]["contents"].startswith("Evan Morris\n")
    assert data.unquoted_title('"A "quoted" word"\ntext') == 'A "quoted" word\ntext'
    assert data.unquoted_title('"\ntext') == '"\ntext'  # one quote is a title, not a quoted one


def test_eval_questions_are_their_own_pool(tmp_path):
    """A test split as the eval part: each part is drawn from its own pool alone."""
    train = [{"id": f"t{i}", "question": f"q {i}?", "golden_answers": ["a"]} for i in range(8)]
    test = [{"id": f"e{i}", "question": f"q {i}?", "golden_answers": ["a"]} for i in range(5)]
    write_jsonl(tmp_path / "train.jsonl", train)
    write_jsonl(tmp_path / "test.jsonl", test)
    write_jsonl(tmp_path / "corpus.jsonl", [{"id": "d", "contents": "T\ntext"}])
    settings = data.DatasetSettings("nq", "flashrag", str(tmp_path / "train.jsonl"), str(tmp_path / "corpus.jsonl"),
                                    eval_questions=str(tmp_path / "test.jsonl"))
    questions = data.prepare(settings)["questions"]
    assert [q["pool"] for q in questions] == ["train"] * 8 + ["eval"] * 5
    eval_part = splits.split_part(questions, "eval", 6, 4, seed=1)
    train_part = splits.split_part(questions, "train", 6, 4, seed=1)
    assert {q["pool"] for q in eval_part} == {"eval"} and len(eval_part) == 4
    assert {q["pool"] for q in train_part} == {"train"} and len(train_part) == 6
    with pytest.raises(InputError, match="6 eval questions, the eval pool has 5"):
        splits.split_part(questions, "eval", 1, 6, seed=1)
    write_jsonl(tmp_path / "test.jsonl", [{"id": "t3", "question": "again?", "golden_answers": ["a"]}])
    with pytest.raises(InputError, match="t3"):  # one id in both pools
        data.prepare(settings)


def test_a_dataset_names_the_file_its_layout_needs():
    with pytest.raises(ConfigError, match=r"datasets\.asqa\.corpus"):
        data.prepare(data.DatasetSettings("asqa", "asqa", "questions.json"))
    with pytest.raises(ConfigError, match=r"datasets\.nq\.questions"):
        data.DatasetSettings("nq", "flashrag", corpus="corpus.jsonl")
    assert data.DatasetSettings("2wiki", "2wikimultihopqa", "dev.json").corpus is None  # its contexts make one


def test_2wiki_with_a_corpus_of_its_own_maps_supporting_titles_into_it(tmp_path):
    """2WikiMultihopQA read with a corpus given beside it: supporting titles name
    that corpus' documents; titles it lacks are kept apart, not dropped."""
    records = json.loads(need_shared(SHARED / "2wikimultihopqa" / "dev_sample.json").read_text())[:3]
    (tmp_path / "dev.json").write_text(json.dumps(records))
    own_questions, own_corpus = loaders.load_2wikimultihopqa(tmp_path / "dev.json")
    kept = own_corpus[:-1]  # one document missing from the given corpus
    write_jsonl(tmp_path / "corpus.jsonl", [{"id": f"c{i}", "contents": d["contents"]} for i, d in enumerate(kept)])
    prepared = data.prepare(data.DatasetSettings("2wiki", "2wikimultihopqa", str(tmp_path / "dev.json"),
                                                 str(tmp_path / "corpus.jsonl")))
    assert len(prepared["corpus"]) == len(kept) and prepared["trees"] == []  # a paragraph: one abstract
    ids = {d["id"] for d in prepared["corpus"]}
    for question, own in zip(prepared["questions"], own_questions):
        assert {s["doc_id"] for s in question["supporting"]} <= ids
        assert len(question["supporting"]) + len(question["supporting_missing"]) == len(own["supporting"])


def test_hotpotqa_prepares_as_before():
    settings = data.DatasetSettings("hotpotqa", "hotpotqa", str(need_shared(HOTPOTQA / "dev_distractor.jsonl")),
                                    str(HOTPOTQA / "corpus.jsonl"))
    prepared = data.prepare(settings)
    assert len(prepared["questions"]) == 1338 and len(prepared["corpus"]) == 17764
    assert "pool" not in prepared["questions"][0] and prepared["questions"][0]["supporting"]

"""Loaders of 2WikiMultihopQA, ASQA and ALCE's ELI5 in their own layouts: the
real shared files load whole and match the raw JSON; bad input is an error
naming the file, the record and the field."""
from __future__ import annotations

import copy
import json
import logging
import re

import pytest

from conftest import SHARED, need_shared
from refiner_lib import loaders
from refiner_lib.data import load_corpus
from refiner_lib.errors import InputError
from refiner_lib.jsonl import write_jsonl

TWOWIKI = SHARED / "2wikimultihopqa" / "dev_sample.json"
ASQA = SHARED / "asqa" / "dev.json"
ELI5 = SHARED / "eli5" / "alce_eval.json"
SOURCES = {"2wiki": (TWOWIKI, loaders.load_2wikimultihopqa), "asqa": (ASQA, loaders.load_asqa),
           "eli5": (ELI5, loaders.load_eli5)}


def raw(path) -> list[dict]:
    return json.loads(need_shared(path).read_text(encoding="utf-8"))


def write_array(path, records: list) -> str:
    path.write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")
    return str(path)


def expect_error(load, path, where: str, field: str, match: str) -> str:
    with pytest.raises(InputError, match=re.escape(match)) as caught:
        load(path)
    message = str(caught.value)
    assert str(path) in message and where in message, message
    assert f"'{field}'" in message or f" {field} " in message, message
    return message


# the real files


def test_2wikimultihopqa_loads_whole_with_its_own_corpus(tmp_path):
    records = raw(TWOWIKI)
    questions, corpus = loaders.load_2wikimultihopqa(TWOWIKI)
    assert len(questions) == len(records) == 500
    ids = [d["id"] for d in corpus]
    assert len(set(ids)) == len(ids) and all(i.startswith("2wiki-") for i in ids)
    by_title = {d["contents"].split("\n", 1)[0]: d for d in corpus}
    assert len(by_title) == len(corpus) == len({title for r in records for title, _ in r["context"]})
    first = records[0]
    for title, sentences in first["context"]:
        assert by_title[title]["contents"] == title + "\n" + " ".join(sentences)
    titles = list(dict.fromkeys(title for title, _ in first["supporting_facts"]))
    assert questions[0] == {"id": first["_id"], "question": first["question"], "golden_answers": [first["answer"]],
                            "label": "Local", "type": first["type"], "evidences": first["evidences"],
                            "supporting": [{"doc_id": by_title[t]["id"], "title": t, "path": []} for t in titles]}
    for question, record in zip(questions, records):
        titles = list(dict.fromkeys(title for title, _ in record["supporting_facts"]))
        assert [s["title"] for s in question["supporting"]] == titles
        assert all(by_title[s["title"]]["id"] == s["doc_id"] for s in question["supporting"])
    write_jsonl(tmp_path / "corpus.jsonl", corpus)
    assert load_corpus(tmp_path / "corpus.jsonl") == corpus  # the rest of the pipeline reads it as any corpus


def test_2wikimultihopqa_document_ids_do_not_depend_on_the_sample(tmp_path):
    records = raw(TWOWIKI)
    _, corpus = loaders.load_2wikimultihopqa(TWOWIKI)
    _, alone = loaders.load_2wikimultihopqa(write_array(tmp_path / "one.json", [records[7]]))
    full = {d["contents"]: d["id"] for d in corpus}
    assert alone and all(full[d["contents"]] == d["id"] for d in alone)


def test_asqa_loads_whole_with_one_reading_per_qa_pair():
    records = raw(ASQA)
    questions = loaders.load_asqa(ASQA)
    assert len(questions) == len(records) == 948
    first = records[0]
    readings = [pair["short_answers"] for pair in first["qa_pairs"]]
    assert questions[0] == {"id": first["id"], "question": first["question"], "readings": readings,
                            "golden_answers": list(dict.fromkeys(a for r in readings for a in r)),
                            "long_answers": [a["long_answer"] for a in first["annotations"]],
                            "label": None, "type": None, "supporting": []}
    for question, record in zip(questions, records):
        assert len(question["readings"]) == len(record["qa_pairs"])
        assert set(question["golden_answers"]) == set(record["all_short_answers"])  # the file's own union
        assert len(question["golden_answers"]) == len(set(question["golden_answers"]))
    assert len({q["id"] for q in questions}) == len(questions)


def test_eli5_loads_whole_with_ids_from_record_positions():
    records = raw(ELI5)
    questions = loaders.load_eli5(ELI5)
    assert len(questions) == len(records) == 1000
    first = records[0]
    assert questions[0] == {"id": "eli5-0", "question": first["question"], "golden_answers": [first["answer"]],
                            "long_answers": [first["answer"]], "claims": first["claims"],
                            "label": None, "type": None, "supporting": []}
    assert [q["id"] for q in questions] == [f"eli5-{i}" for i in range(1000)]
    assert [q["claims"] for q in questions] == [r["claims"] for r in records]


# bad input: record 1 of a file [real record 0, broken real record 1]


def put(field, value):
    return lambda record, first: record.__setitem__(field, value)


def drop(field):
    return lambda record, first: record.pop(field)


def same_id(field):
    return lambda record, first: record.__setitem__(field, first[field])


def edit(change):
    return lambda record, first: change(record)


BAD = [
    # 2WikiMultihopQA
    ("2wiki", drop("answer"), "answer", "missing field 'answer'"),
    ("2wiki", put("answer", ""), "answer", "field 'answer' is empty"),
    ("2wiki", put("question", 5), "question", "field 'question' must be str, got int"),
    ("2wiki", put("question", "  "), "question", "field 'question' is empty"),
    ("2wiki", put("type", None), "type", "field 'type' must be str"),
    ("2wiki", put("_id", ["x"]), "_id", "field '_id' must be str/int"),
    ("2wiki", same_id("_id"), "id", "duplicate id"),
    ("2wiki", put("context", {}), "context", "field 'context' must be list"),
    ("2wiki", put("context", []), "context", "field 'context' is empty"),
    ("2wiki", edit(lambda r: r["context"].__setitem__(3, ["Title", "one sentence"])), "context",
     "field 'context' item 3 must be [title, [sentences]]"),
    ("2wiki", edit(lambda r: r["context"].__setitem__(3, ["Title"])), "context",
     "field 'context' item 3 must be [title, [sentences]]"),
    ("2wiki", edit(lambda r: r["context"][2].__setitem__(1, [])), "context", "has no text"),
    ("2wiki", edit(lambda r: r["context"][2].__setitem__(0, "Two\nlines")), "context",
     "field 'context' item 2: the title must be one non-empty line"),
    ("2wiki", drop("supporting_facts"), "supporting_facts", "missing field 'supporting_facts'"),
    ("2wiki", put("supporting_facts", []), "supporting_facts", "field 'supporting_facts' is empty"),
    ("2wiki", put("supporting_facts", [["Nowhere", 0]]), "supporting_facts",
     "field 'supporting_facts' item 0: title 'Nowhere' is not a title of the record's 'context'"),
    ("2wiki", put("supporting_facts", [["Nowhere"]]), "supporting_facts",
     "field 'supporting_facts' item 0 must be [title, sentence number]"),
    ("2wiki", drop("evidences"), "evidences", "missing field 'evidences'"),
    ("2wiki", put("evidences", [["a", "b"]]), "evidences",
     "field 'evidences' item 0 must be [subject, relation, object]"),
    # ASQA
    ("asqa", drop("id"), "id", "missing field 'id'"),
    ("asqa", put("id", None), "id", "field 'id' must be str/int, got NoneType"),
    ("asqa", put("id", ""), "id", "field 'id' is empty"),
    ("asqa", same_id("id"), "id", "duplicate id"),
    ("asqa", put("question", ""), "question", "field 'question' is empty"),
    ("asqa", drop("qa_pairs"), "qa_pairs", "missing field 'qa_pairs'"),
    ("asqa", put("qa_pairs", []), "qa_pairs", "field 'qa_pairs' is empty"),
    ("asqa", edit(lambda r: r["qa_pairs"].__setitem__(0, "Daei")), "qa_pairs",
     "field 'qa_pairs' item 0 must be an object"),
    ("asqa", edit(lambda r: r["qa_pairs"][1].__setitem__("short_answers", [])), "short_answers",
     "field 'qa_pairs' item 1: field 'short_answers' is empty"),
    ("asqa", edit(lambda r: r["qa_pairs"][1].pop("short_answers")), "short_answers",
     "field 'qa_pairs' item 1: missing field 'short_answers'"),
    ("asqa", edit(lambda r: r["qa_pairs"][0].__setitem__("short_answers", "Daei")), "short_answers",
     "field 'qa_pairs' item 0: field 'short_answers' must be list"),
    ("asqa", edit(lambda r: r["qa_pairs"][0]["short_answers"].__setitem__(0, " ")), "short_answers",
     "field 'short_answers' item 0 must be a non-empty string"),
    ("asqa", put("annotations", []), "annotations", "field 'annotations' is empty"),
    ("asqa", edit(lambda r: r["annotations"][1].pop("long_answer")), "long_answer",
     "field 'annotations' item 1: missing field 'long_answer'"),
    # ELI5
    ("eli5", drop("question"), "question", "missing field 'question'"),
    ("eli5", put("question", ["why?"]), "question", "field 'question' must be str, got list"),
    ("eli5", put("question", "\n"), "question", "field 'question' is empty"),
    ("eli5", drop("answer"), "answer", "missing field 'answer'"),
    ("eli5", put("answer", " "), "answer", "field 'answer' is empty"),
    ("eli5", put("claims", []), "claims", "field 'claims' is empty"),
    ("eli5", put("claims", "one claim"), "claims", "field 'claims' must be list, got str"),
    ("eli5", edit(lambda r: r["claims"].__setitem__(1, 3)), "claims",
     "field 'claims' item 1 must be a non-empty string"),
]


@pytest.mark.parametrize("source, breaks, field, match", BAD,
                         ids=[f"{source}-{match}" for source, _, _, match in BAD])
def test_bad_record_names_file_record_and_field(tmp_path, source, breaks, field, match):
    path, load = SOURCES[source]
    records = raw(path)
    broken = copy.deepcopy(records[1])
    breaks(broken, records[0])
    bad = write_array(tmp_path / f"bad_{source}.json", [records[0], broken])
    message = expect_error(load, bad, f"{bad}: record 1", field, match)
    if "duplicate" in match:
        assert f"{bad}: record 0" in message  # names where the id was first seen


@pytest.mark.parametrize("source", SOURCES)
def test_a_record_that_is_not_an_object_is_an_error(tmp_path, source):
    path, load = SOURCES[source]
    bad = write_array(tmp_path / "bad.json", [raw(path)[0], [1, 2]])
    with pytest.raises(InputError, match=re.escape(f"{bad}: record 1: expected a JSON object, got list")):
        load(bad)


@pytest.mark.parametrize("text", ["[]", "", "\n\n"])
def test_a_file_without_records_is_an_error(tmp_path, text):
    (tmp_path / "empty.json").write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=re.escape(f"{tmp_path / 'empty.json'}: the file has no records")):
        loaders.load_eli5(tmp_path / "empty.json")


def test_malformed_json_names_the_file_and_line(tmp_path):
    text = json.dumps(raw(ASQA)[:2], indent=1)
    (tmp_path / "cut.json").write_text(text[:len(text) // 2], encoding="utf-8")
    with pytest.raises(InputError, match=re.escape(f"{tmp_path / 'cut.json'}:") + r"\d+: malformed JSON"):
        loaders.load_asqa(tmp_path / "cut.json")


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        loaders.load_asqa(tmp_path / "nowhere.json")


def test_jsonl_records_load_the_same_and_errors_name_the_line(tmp_path):
    records = raw(ELI5)[:3]
    lines = [json.dumps(r) for r in records]
    (tmp_path / "eli5.jsonl").write_text("\ufeff" + lines[0] + "\n\n" + "\n".join(lines[1:]) + "\n", encoding="utf-8")
    assert loaders.load_eli5(tmp_path / "eli5.jsonl") == loaders.load_eli5(write_array(tmp_path / "eli5.json", records))
    del records[2]["claims"]
    write_jsonl(tmp_path / "bad.jsonl", records)
    expect_error(loaders.load_eli5, tmp_path / "bad.jsonl", f"{tmp_path / 'bad.jsonl'}:3", "claims",
                 "missing field 'claims'")


def test_a_lone_surrogate_in_an_array_is_an_error(tmp_path):
    record = raw(ELI5)[0]
    text = json.dumps([record, dict(record, answer="x")]).replace('"answer": "x"', '"answer": "\\ud800"')
    (tmp_path / "bad.json").write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=re.escape(f"{tmp_path / 'bad.json'}: record 1: a \\u escape")):
        loaders.load_eli5(tmp_path / "bad.json")


def test_a_2wiki_title_with_two_texts_keeps_the_first_and_is_counted(tmp_path, caplog):
    first = raw(TWOWIKI)[0]
    second = copy.deepcopy(first)
    second["_id"] = "another"
    title, sentences = second["context"][0]
    second["context"][0][1] = ["A different text."]
    path = write_array(tmp_path / "two.json", [first, second])
    with caplog.at_level(logging.WARNING, logger="refiner_lib.loaders"):
        questions, corpus = loaders.load_2wikimultihopqa(path)
    assert len(questions) == 2 and len(corpus) == len({t for t, _ in first["context"]})
    assert f"{title}\n{' '.join(sentences)}" in [d["contents"] for d in corpus]
    assert f"{path}: 1 context paragraphs repeat an earlier title with another text" in caplog.text
    assert f"'{title}' at {path}: record 1, first at {path}: record 0" in caplog.text

"""Bad input stops with the file, line and field named; writes are atomic."""
import json

import pytest

from refiner_lib import data
from refiner_lib.jsonl import InputError, read_jsonl, write_jsonl


def write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_malformed_line_is_named(tmp_path):
    path = write_lines(tmp_path / "corpus.jsonl", ['{"id": "1", "contents": "T\\ntext"}', '{"id": "2", "contents": '])
    with pytest.raises(InputError, match=r"corpus.jsonl:2: malformed JSON"):
        data.load_corpus(path)


def test_missing_field_is_named(tmp_path):
    path = write_lines(tmp_path / "q.jsonl", ['{"id": "a", "question": "who?"}'])
    with pytest.raises(InputError, match=r"q.jsonl:1: missing field 'golden_answers'"):
        data.load_flashrag_questions(path)


def test_empty_document_is_named(tmp_path):
    path = write_lines(tmp_path / "corpus.jsonl", ['{"id": "1", "contents": "Title\\ntext"}', '{"id": "2", "contents": "  "}'])
    with pytest.raises(InputError, match=r"corpus.jsonl:2: field 'contents' is empty"):
        data.load_corpus(path)


def test_duplicate_ids_name_both_lines(tmp_path):
    path = write_lines(tmp_path / "corpus.jsonl", ['{"id": "7", "contents": "A\\na"}', '{"id": "8", "contents": "B\\nb"}',
                                                   '{"id": "7", "contents": "C\\nc"}'])
    with pytest.raises(InputError, match=r"corpus.jsonl:3: duplicate id '7' \(first seen at .*corpus.jsonl:1\)"):
        data.load_corpus(path)


def test_wrong_type_is_named(tmp_path):
    path = write_lines(tmp_path / "q.jsonl", ['{"id": "a", "question": "who?", "golden_answers": "x"}'])
    with pytest.raises(InputError, match=r"q.jsonl:1: field 'golden_answers' must be list"):
        data.load_flashrag_questions(path)


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out.jsonl"
    write_jsonl(target, [{"a": 1}])

    def records():
        yield {"a": 2}
        raise RuntimeError("the step died midway")

    with pytest.raises(RuntimeError):
        write_jsonl(target, records())
    assert [r for _, r in read_jsonl(target)] == [{"a": 1}]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def test_flashrag_files_load(tmp_path):
    from conftest import SHARED, need_shared

    for name in ("nq", "triviaqa", "popqa"):
        questions = data.load_flashrag_questions(need_shared(SHARED / "flashrag" / name / "test.jsonl"))
        assert len(questions) == 1000
        assert all(q["golden_answers"] and q["question"] for q in questions)
        json.dumps(questions[0])

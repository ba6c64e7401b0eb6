"""Bad input stops with the file, line and field named; writes are atomic."""
import pytest

from conftest import SHARED, need_shared
from refiner_lib import data
from refiner_lib.errors import InputError
from refiner_lib.jsonl import read_jsonl, write_jsonl

CORPUS_CASES = [
    (['{"id": "1", "contents": "T\\ntext"}', '{"id": "2", "contents": '], r"corpus.jsonl:2: malformed JSON"),
    (['{"id": "1", "contents": "Title\\ntext"}', '{"id": "2", "contents": "  "}'], r"corpus.jsonl:2: field 'contents' is empty"),
    (['{"id": "1", "contents": "Title only"}'], r"corpus.jsonl:1: field 'contents' has no text after its title line"),
    (['{"id": "1", "text": "Title\\nbody"}'], r"corpus.jsonl:1: missing field 'contents'"),
    (['{"id": "7", "contents": "A\\na"}', '{"id": "8", "contents": "B\\nb"}', '{"id": "7", "contents": "C\\nc"}'],
     r"corpus.jsonl:3: duplicate id '7' \(first seen at .*corpus.jsonl:1\)"),
    (['["not", "an", "object"]'], r"corpus.jsonl:1: expected a JSON object"),
]
QUESTION_CASES = [
    (['{"id": "a", "question": "who?"}'], r"q.jsonl:1: missing field 'golden_answers'"),
    (['{"id": "a", "question": "who?", "golden_answers": "x"}'], r"q.jsonl:1: field 'golden_answers' must be list"),
    (['{"id": "a", "question": "", "golden_answers": ["x"]}'], r"q.jsonl:1: field 'question' is empty"),
    (['{"id": "a", "question": "who?", "golden_answers": ["x"]}', '{"id": "a", "question": "why?", "golden_answers": ["y"]}'],
     r"q.jsonl:2: duplicate id 'a'"),
]


CASES = [("corpus.jsonl", data.load_corpus, *case) for case in CORPUS_CASES] + \
        [("q.jsonl", data.load_flashrag_questions, *case) for case in QUESTION_CASES]


@pytest.mark.parametrize("name, loader, lines, message", CASES)
def test_bad_input_is_named(tmp_path, name, loader, lines, message):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=message):
        loader(path)


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


def test_flashrag_files_load():
    for name in ("nq", "triviaqa", "popqa"):
        questions = data.load_flashrag_questions(need_shared(SHARED / "flashrag" / name / "test.jsonl"))
        assert len(questions) == 1000
        assert all(q["golden_answers"] and q["question"] for q in questions)

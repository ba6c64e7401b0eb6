"""LongRefiner's hierarchical scoring and budgeted selection on synthetic trees."""
import pytest

from refiner_lib import refine


def count_words(text):
    return len(text.split())


@pytest.fixture()
def case(synthetic_data):
    questions, _, trees = synthetic_data
    trees = {t["id"]: t for t in trees}
    question = next(q for q in questions if q["type"] == "local")
    doc_ids = [question["supporting"][0]["doc_id"]] + [d for d in trees if d != question["supporting"][0]["doc_id"]][:2]
    return question, [trees[d] for d in doc_ids]


def test_budget_is_respected_and_text_is_verbatim(case):
    question, trees = case
    result = refine.refine_question(question["question"], trees, {"Local": 0.9, "Global": 0.1}, [[], [], []], 120,
                                    count_words)
    body = [line for line in result["context"].split("\n") if line and line not in {t["title"] for t in trees}]
    assert sum(count_words(line) for line in body) <= 120
    all_paragraphs = {p for t in trees for p in refine.build_nodes([t]) for p in p.paragraphs}
    assert body and all(line in all_paragraphs for line in body)


def test_a_local_question_keeps_its_fact_paragraph(case):
    question, trees = case
    result = refine.refine_question(question["question"], trees, {"Local": 1.0, "Global": 0.0}, [[], [], []], 200,
                                    count_words)
    assert any(answer in result["context"] for answer in question["golden_answers"])


def test_global_selection_pulls_in_whole_selected_sections(synthetic_data):
    _, _, trees = synthetic_data
    tree = trees[0]
    target = tree["sections"][-1]["title"]
    budget = 10_000
    result = refine.refine_question("unrelated words", [tree], {"Local": 0.0, "Global": 1.0}, [[target]], 60,
                                    count_words)
    nodes = refine.build_nodes([tree])
    section = next(n for n in nodes if n.kind == "section" and n.title == target)
    assert section.paragraphs[0] in result["context"] or count_words(" ".join(section.paragraphs)) > 60
    everything = refine.refine_question("unrelated", [tree], {"Local": 0.5, "Global": 0.5}, [[]], budget, count_words)
    assert everything["context_tokens"] >= sum(count_words(p) for n in nodes if n.kind == "paragraph"
                                               for p in n.paragraphs)


def test_parents_replace_children_and_never_duplicate(synthetic_data):
    _, _, trees = synthetic_data
    nodes = refine.build_nodes([trees[1]])
    paragraphs = [n.paragraphs[0] for n in nodes if n.kind == "paragraph"]
    for node in nodes:
        node.tokens = count_words("\n".join(node.paragraphs))
        node.score = 1.0 if node.kind == "paragraph" else 0.9
    budget = max(n.tokens for n in nodes if n.kind == "paragraph")
    assert sum(n.tokens for n in refine.select(nodes, budget)) <= budget
    chosen = refine.select(nodes, 10_000)
    assert not any(refine.covers(a, b) for a in chosen for b in chosen if a is not b)
    text = [p for n in chosen for p in n.paragraphs]
    assert sorted(text) == sorted(paragraphs)  # everything fits: all text, each paragraph once


def test_full_context_is_cut_to_the_window(tiny_model):
    from refiner_lib.models import load_tokenizer

    tokenizer = load_tokenizer(tiny_model)
    docs = [{"contents": "Title\n" + "word " * 500}]
    text = refine.full_context(docs, 50, tokenizer)
    assert len(tokenizer(text, add_special_tokens=False)["input_ids"]) <= 52


def test_the_local_scorer_uses_the_configured_bm25_constants(case):
    """Paragraph scores come from BM25 with retrieval's k1, b and epsilon, not fixed defaults."""
    from refiner_lib.bm25 import BM25Params

    question, trees = case

    def paragraph_scores(params):
        nodes = refine.build_nodes(trees)
        refine.score_nodes(question["question"], nodes, {"Local": 1.0, "Global": 0.0}, [[]] * len(trees), params)
        return [n.score for n in nodes if n.kind == "paragraph"]

    default = paragraph_scores(BM25Params())
    assert default == paragraph_scores(BM25Params(k1=1.5, b=0.75, epsilon=0.25))
    assert paragraph_scores(BM25Params(k1=1.5, b=0.0, epsilon=0.25)) != default
    assert paragraph_scores(BM25Params(k1=0.5, b=0.75, epsilon=0.25)) != default

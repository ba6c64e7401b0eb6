"""The synthetic encyclopedia: deterministic, long, fictional, with facts where the labels say."""
import dataclasses
from collections import Counter

from refiner_lib import data, synthetic
from refiner_lib.structure import body_paragraphs


def test_same_seed_same_data_other_seed_other_data():
    settings = synthetic.SyntheticSettings(seed=5, num_articles=9, num_questions=30, min_words=500, max_words=800,
                                           global_fraction=0.2)
    first = data.synthetic_dataset(settings)
    assert first == data.synthetic_dataset(settings)
    assert first != data.synthetic_dataset(dataclasses.replace(settings, seed=6))


def test_articles_have_the_configured_length_and_a_tree(synthetic_data):
    _, corpus, trees = synthetic_data
    for doc, tree in zip(corpus, trees):
        words = len(doc["contents"].split())
        assert 500 <= words <= 900 + 120, words  # the last filler paragraph may overshoot a little
        assert tree["abstract"] and len(tree["sections"]) >= 4
        assert any(section["subsections"] for section in tree["sections"])
        flattened = tree["abstract"] + [p for s in tree["sections"] for p in
                                        s["paragraphs"] + [q for u in s["subsections"] for q in u["paragraphs"]]]
        assert flattened == body_paragraphs(doc["contents"])


def test_every_answer_sits_at_its_supporting_places(synthetic_data):
    questions, _, trees = synthetic_data
    trees = {t["id"]: t for t in trees}
    for q in questions:
        places = []
        for place in q["supporting"]:
            tree = trees[place["doc_id"]]
            section = next(s for s in tree["sections"] if s["title"] == place["path"][0])
            node = section if len(place["path"]) == 1 else \
                next(u for u in section["subsections"] if u["title"] == place["path"][1])
            places.append(" ".join(node["paragraphs"]))
        text = " ".join(places)
        if q["type"] in ("local", "bridge"):
            assert any(a in text for a in q["golden_answers"]), q
        if q["type"] == "global":
            assert len(q["supporting"]) == int(q["golden_answers"][0]) and q["label"] == "Global"
            assert all(" received the " in p for p in places)


def test_all_four_kinds_and_both_labels(synthetic_data):
    questions, _, _ = synthetic_data
    assert set(Counter(q["type"] for q in questions)) == {"local", "bridge", "comparison", "global"}
    assert {q["label"] for q in questions} == {"Local", "Global"}
    assert len({q["id"] for q in questions}) == len(questions)


def test_names_are_fictional():
    """Every title is built from the generator's syllables: no real entity to recall."""
    articles, _ = synthetic.generate(synthetic.SyntheticSettings(1, 9, 10, 500, 600, 0.2))
    for article in articles:
        name = article.title.replace(" Company", "").replace(" Guild", "").replace(" Works", "").replace(" Society", "")
        for word in name.split():
            rest = word.lower()
            while rest:
                match = next((s for s in synthetic.SYLLABLES if rest.startswith(s)), None)
                assert match, article.title
                rest = rest[len(match):]

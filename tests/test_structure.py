"""Trees, LongRefiner's XML outline, and parsing model-written outlines."""
import json

from conftest import LONGREFINER, need_shared
from refiner_lib import prompts, structure


def test_outline_round_trip_recovers_the_true_tree(synthetic_data):
    _, corpus, trees = synthetic_data
    for doc, tree in zip(corpus, trees):
        parsed, usable = structure.parse_outline(doc["id"], doc["contents"], structure.render_outline(tree))
        assert usable and parsed == tree


def test_broken_outline_loses_no_text(synthetic_data):
    _, corpus, _ = synthetic_data
    doc = corpus[0]
    tree, usable = structure.parse_outline(doc["id"], doc["contents"], "<section: x>nothing that matches</sec")
    assert not usable
    assert tree["abstract"] == structure.body_paragraphs(doc["contents"])


def test_longrefiner_demo_outlines_parse():
    """LongRefiner's own doc-structuring records use the format we emit and parse."""
    records = json.loads(need_shared(LONGREFINER / "step2_doc-structuring.json").read_text())
    for record in records:
        sections = structure.SECTION.findall(record["output"])
        assert structure.ABSTRACT.search(record["output"]) and sections
    ours = prompts.doc_structuring_record("body", "<abstract>x</abstract>")
    assert ours["instruction"] == records[0]["instruction"]


def test_outline_text_lists_sections_and_subsections(synthetic_data):
    _, _, trees = synthetic_data
    text = structure.outline_text(trees[0])
    assert text.startswith(f"Title: {trees[0]['title']}\nSection1: ")
    assert "Subsection1: " in text
    assert structure.node_titles(trees[0])[0] == "abstract"


def test_selection_parser_accepts_lists_objects_and_quotes():
    titles = ["abstract", "Early life", "Career"]
    assert prompts.parse_selection("['abstract', 'career']", titles) == ["abstract", "Career"]
    assert prompts.parse_selection('{"selected_titles": ["Early life"]}', titles) == ["Early life"]
    assert prompts.parse_selection("I pick 'Career' and 'Unknown'", titles) == ["Career"]
    assert prompts.parse_selection("nothing", titles) == []


def test_prompts_match_longrefiner_records():
    for name, system in (("step1_query-analysis.json", prompts.QUERY_ANALYSIS_SYSTEM),
                         ("step3_global-selection.json", prompts.GLOBAL_SELECTION_SYSTEM)):
        records = json.loads(need_shared(LONGREFINER / name).read_text())
        assert records[0]["instruction"] == system

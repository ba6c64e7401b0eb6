from refiner_lib import metrics


def test_normalization_drops_case_punctuation_and_articles():
    assert metrics.normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert metrics.normalize_answer("an Apple a day") == "apple day"


def test_exact_match_takes_the_best_golden_answer():
    assert metrics.exact_match("the 1,200", ["1200", "1,200"]) == 1.0
    assert metrics.exact_match("Paris, France", ["Paris"]) == 0.0


def test_f1_partial_overlap_and_yes_no():
    assert abs(metrics.f1_score("Paris France", ["Paris"]) - 2 / 3) < 1e-9
    assert metrics.f1_score("yes", ["no"]) == 0.0
    assert metrics.f1_score("no", ["no"]) == 1.0
    assert metrics.f1_score("", ["Paris"]) == 0.0


def test_accuracy_is_containment():
    assert metrics.accuracy("It is Paris, the capital.", ["paris"]) == 1.0
    assert metrics.accuracy("London", ["Paris", "City of Light"]) == 0.0


def test_context_answer_recall_needs_the_whole_answer():
    assert metrics.context_answer_recall("Velden lies on the Kar River.", ["Kar River"]) == 1.0
    assert metrics.context_answer_recall("Velden lies on the Karst River.", ["Kar River"]) == 0.0
    assert metrics.context_answer_recall("It has 12,000 people.", ["12000", "12,000"]) == 1.0


def test_selection_recall_and_precision_count_retrieved_gold_sections():
    question = {"supporting": [{"doc_id": "a", "path": ["Career", "Training"]}, {"doc_id": "b", "path": ["History"]},
                               {"doc_id": "c", "path": []}]}  # c was not retrieved
    selections = {"a": ["Training", "Legacy"], "b": []}
    assert metrics.selection_metrics(question, selections) == {"adr_recall": 0.5, "adr_precision": 0.5}
    assert metrics.selection_metrics(question, {"a": [], "b": []}) == {"adr_recall": 0.0}  # precision undefined


def test_means_skip_questions_without_a_value():
    rows = [{"em": 1.0, "adr_recall": 0.5}, {"em": 0.0}]
    assert metrics.means(rows)["em"] == 0.5 and metrics.means(rows)["adr_recall"] == 0.5
    assert metrics.means(rows)["dqa_accuracy"] is None

import pytest

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


def test_the_selection_auc_ranks_gold_sections_above_the_others_before_any_threshold():
    question = {"supporting": [{"doc_id": "a", "path": ["Career", "Training"]}, {"doc_id": "b", "path": ["History"]}]}
    scores = {"a": {"Career": 0.6, "Training": 0.5, "Legacy": 0.1}, "b": {"History": 0.4, "Legacy": 0.5}}
    # gold (a, Training) 0.5 and (b, History) 0.4 against 0.6, 0.1 and 0.5: (1 + 0.5 + 0) + (1 + 0 + 0) of 6
    assert metrics.selection_auc(question, scores) == pytest.approx(2.5 / 6)
    assert metrics.ranking_auc([0.9], [0.1, 0.2]) == 1.0 and metrics.ranking_auc([0.1], [0.9]) == 0.0
    assert metrics.selection_auc(question, {"b": {"History": 0.4}}) is None  # no other section to rank below it
    assert metrics.selection_auc({"supporting": []}, scores) is None
    refined = {"context": "", "context_tokens": 0, "retrieved_tokens": 10, "selections": {"a": ["Career"], "b": []},
               "selection_scores": scores}
    assert metrics.refinement_metrics({"golden_answers": ["x"], **question}, refined, None)["adr_auc"] == \
        pytest.approx(2.5 / 6)
    del refined["selection_scores"]  # the teacher's selections: chosen, not scored
    assert "adr_auc" not in metrics.refinement_metrics({"golden_answers": ["x"], **question}, refined, None)


def test_alpha_error_is_the_distance_to_the_teachers_p_global():
    teacher = {"label": "Local", "probabilities": {"Local": 0.7, "Global": 0.3}}
    refined = {"context": "", "context_tokens": 0, "retrieved_tokens": 10, "label": "Global",
               "probabilities": {"Local": 0.45, "Global": 0.55}}
    row = metrics.refinement_metrics({"golden_answers": ["x"]}, refined, teacher)
    assert row["dqa_alpha_error"] == pytest.approx(0.25) and row["dqa_correct"] == 0.0
    assert "dqa_alpha_error" not in metrics.refinement_metrics({"golden_answers": ["x"]}, refined, {"label": "Local"})


def test_means_skip_questions_without_a_value():
    rows = [{"em": 1.0, "adr_recall": 0.5}, {"em": 0.0}]
    assert metrics.means(rows)["em"] == 0.5 and metrics.means(rows)["adr_recall"] == 0.5
    assert metrics.means(rows)["dqa_accuracy"] is None


def test_str_em_counts_the_readings_a_long_answer_answers():
    """ASQA: three readings of one ambiguous question; the answer names the
    first two (one through a normalized alias: "U.S.A." -> "usa")."""
    readings = [["1998"], ["2003", "two thousand three"], ["1975"]]
    assert metrics.str_em("The Eagles won in 1998, and the Chiefs in 2003.", readings) == 2 / 3
    assert metrics.str_em("It was held in the U.S.A.", [["USA"], ["Canada"]]) == 1 / 2
    assert metrics.str_em("Nothing relevant.", readings) == 0.0
    assert metrics.str_em("The answer.", [["The"]]) == 0.0  # an answer that normalizes to nothing matches nothing
    assert metrics.str_em("nineteen98", [["1998"]]) == 0.0


def test_rouge_l_worked_by_hand():
    # 6 tokens each, longest common subsequence "the cat on the mat" (5): P = R = F = 5/6
    assert abs(metrics.rouge_l("the cat sat on the mat", ["The cat lay on the mat."]) - 5 / 6) < 1e-9
    # stemmed: [run, dog] against [the, dog, run]; the LCS is one token: P = 1/2, R = 1/3, F = 2PR/(P+R) = 0.4
    assert abs(metrics.rouge_l("Running dogs", ["the dog runs"]) - 0.4) < 1e-9
    # the best reference counts; nothing in common scores 0
    assert abs(metrics.rouge_l("the cat sat on the mat", ["zebra", "the cat sat on the mat"]) - 1.0) < 1e-9
    assert metrics.rouge_l("zebra", ["the cat"]) == 0.0


def test_str_em_needs_a_reading():
    import pytest

    with pytest.raises(ValueError, match="reading"):
        metrics.str_em("anything", [])

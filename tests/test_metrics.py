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

import numpy as np
import pytest

from refiner_lib import statistics
from refiner_lib.statistics import bootstrap_interval, is_significant, paired_comparison, sign_flip_p_value


def by_id(values) -> dict[str, float]:
    return {f"q{i}": float(v) for i, v in enumerate(values)}


def test_bootstrap_interval_contains_the_mean_and_narrows_with_more_questions():
    rng = np.random.default_rng(1)
    few, many = rng.random(20), rng.random(2000)
    (low_few, high_few), (low_many, high_many) = bootstrap_interval(few), bootstrap_interval(many)
    assert low_few < few.mean() < high_few and low_many < many.mean() < high_many
    assert high_many - low_many < (high_few - low_few) / 4


def test_bootstrap_interval_is_deterministic_for_a_seed():
    values = np.random.default_rng(2).random(50)
    assert bootstrap_interval(values, seed=7) == bootstrap_interval(values, seed=7)
    assert bootstrap_interval(values, seed=7) != bootstrap_interval(values, seed=8)
    assert bootstrap_interval([0.5] * 10) == (0.5, 0.5)
    with pytest.raises(ValueError):
        bootstrap_interval([])


def test_identical_methods_differ_by_nothing():
    a = by_id(np.random.default_rng(3).random(30))
    result = paired_comparison(a, dict(a))
    assert result == {"n": 30, "difference": 0.0, "ci_low": 0.0, "ci_high": 0.0, "p_value": 1.0}
    assert not is_significant(result)


def test_a_clear_shift_is_significant():
    rng = np.random.default_rng(4)
    a = rng.random(40)
    b = a - 0.3 + rng.normal(0, 0.1, 40)
    result = paired_comparison(by_id(a), by_id(b), resamples=5000, seed=0)
    assert result["n"] == 40 and result["difference"] == pytest.approx(np.mean(a - b))
    assert result["p_value"] < 0.01 and 0 < result["ci_low"] < result["difference"] < result["ci_high"]
    assert is_significant(result)
    assert paired_comparison(by_id(a), by_id(b), resamples=5000, seed=0) == result  # seeded


def test_exact_sign_flip_test_matches_the_hand_count():
    # differences 1, -1, 2: of the 8 sign patterns, sums 4, 0, 2, -2, 2, -2, 0, -4; |sum| >= 2 in 6
    a, b = {"x": 1.0, "y": 0.0, "z": 2.0, "w": 0.5}, {"x": 0.0, "y": 1.0, "z": 0.0, "w": 0.5, "only_b": 9.0}
    result = paired_comparison(a, b)
    assert result["n"] == 4 and result["p_value"] == 0.75  # the zero difference (w) flips to itself
    assert result["difference"] == pytest.approx(0.5)
    # 1, 2, 3: only the all-plus and all-minus patterns reach |sum| 6
    assert sign_flip_p_value(np.array([1.0, 2.0, 3.0]), resamples=0, rng=np.random.default_rng()) == 0.25


def test_sampled_sign_flips_never_give_p_zero():
    # 20 equal differences: exactly 2 of 2**20 patterns are as extreme, too rare for 999 draws
    p = sign_flip_p_value(np.ones(20), resamples=999, rng=np.random.default_rng(0))
    assert p == 1 / 1000


def test_a_shift_within_the_noise_is_not_significant():
    a = np.full(40, 0.5)
    b = a + np.tile([0.2, -0.2], 20) + 0.01  # mean difference -0.01 against noise of 0.2
    result = paired_comparison(by_id(a), by_id(b))
    assert result["ci_low"] < 0 < result["ci_high"] and result["p_value"] > 0.05
    assert not is_significant(result)


def test_significant_needs_both_the_interval_and_the_p_value():
    assert is_significant({"ci_low": 0.01, "ci_high": 0.2, "p_value": 0.01})
    assert is_significant({"ci_low": -0.2, "ci_high": -0.01, "p_value": 0.01})
    assert not is_significant({"ci_low": -0.01, "ci_high": 0.2, "p_value": 0.01})  # interval holds 0
    assert not is_significant({"ci_low": 0.01, "ci_high": 0.2, "p_value": 0.06})


def test_one_group_gives_the_plain_bootstrap_and_paired_figures():
    """The average over datasets reduces to the one dataset's figures."""
    rng = np.random.default_rng(3)
    values = rng.uniform(0, 1, 30)
    assert statistics.stratified_interval([values], seed=5) == statistics.bootstrap_interval(values, seed=5)
    a = {f"q{i}": float(v) for i, v in enumerate(values)}
    b = {f"q{i}": float(v) - 0.1 * (i % 3) for i, v in enumerate(values)}
    macro, plain = statistics.macro_paired_comparison([(a, b)], seed=2), statistics.paired_comparison(a, b, seed=2)
    assert macro.keys() == plain.keys()
    for key in macro:
        assert macro[key] == pytest.approx(plain[key], rel=1e-12), key


def test_every_dataset_counts_once_in_the_average():
    """Worked by hand: dataset A (2 questions) differs by +1 on each, dataset B
    (4 questions) by 0: the average difference is (1 + 0) / 2 = 0.5, not 2 / 6.
    The weighted sign flips: A's questions weigh 1/4 each, B's 0; of the 4
    patterns of A's signs, 2 reach |sum| = 0.5, so p = 0.5."""
    a = ({"a1": 1.0, "a2": 1.0}, {"a1": 0.0, "a2": 0.0})
    b = ({f"b{i}": 0.5 for i in range(4)}, {f"b{i}": 0.5 for i in range(4)})
    result = statistics.macro_paired_comparison([a, b], seed=0)
    assert result["n"] == 6 and result["difference"] == 0.5 and result["p_value"] == 0.5
    assert result["ci_low"] == result["ci_high"] == 0.5  # no spread within either dataset
    low, high = statistics.stratified_interval([[0.0, 1.0] * 10, [0.5] * 8], seed=0)
    assert low < 0.5 < high and high - low < 0.5  # the constant dataset narrows the average's interval

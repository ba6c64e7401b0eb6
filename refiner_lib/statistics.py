"""How sure a mean over the eval questions is: percentile bootstrap intervals
of a mean, and paired comparisons of two methods on the same questions
(paired bootstrap interval of the mean difference and a sign-flip
permutation test)."""
from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np

ALPHA = 0.05  # significance level of the 95% statements
EXACT_LIMIT = 16  # up to 2**16 sign patterns: enumerate them all instead of sampling
BATCH_NUMBERS = 2**20  # random draws per batch: memory stays small whatever the number of questions


def batch_sizes(total: int, width: int) -> list[int]:
    """Rows per batch so that a batch of `width`-long rows holds about BATCH_NUMBERS numbers."""
    step = max(1, BATCH_NUMBERS // max(width, 1))
    return [min(step, total - start) for start in range(0, total, step)]


def bootstrap_means(values: Sequence[float], resamples: int, rng: np.random.Generator) -> np.ndarray:
    """The means of `resamples` resamples of the values (questions), drawn with replacement."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("bootstrap: no values")
    return np.concatenate([data[rng.integers(0, data.size, (rows, data.size))].mean(axis=1)
                           for rows in batch_sizes(resamples, data.size)])


def percentile_interval(means: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    tail = 50 * (1 - confidence)
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_interval(values: Sequence[float], *, resamples: int = 10000, confidence: float = 0.95,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean, resampling the values (questions) with replacement."""
    return percentile_interval(bootstrap_means(values, resamples, np.random.default_rng(seed)), confidence)


def stratified_interval(groups: Sequence[Sequence[float]], *, resamples: int = 10000, confidence: float = 0.95,
                        seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the average of the groups' means (each
    dataset counts once, however many questions it has): questions are
    resampled within their own group. One group: bootstrap_interval's interval."""
    rng = np.random.default_rng(seed)
    averages = np.mean([bootstrap_means(values, resamples, rng) for values in groups], axis=0)
    return percentile_interval(averages, confidence)


def sign_flip_p_value(differences: np.ndarray, *, resamples: int, rng: np.random.Generator) -> float:
    """Two-sided p-value of a zero mean difference: how often flipping the signs
    of the differences gives a sum at least as far from 0 as the observed one.
    Zero differences flip to themselves, so only the others are flipped."""
    nonzero = differences[differences != 0]
    observed = abs(nonzero.sum()) - 1e-9 * np.abs(nonzero).sum()  # tolerance for rounding in the sums
    if nonzero.size <= EXACT_LIMIT:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=nonzero.size)))
        return float(np.mean(np.abs(signs @ nonzero) >= observed))
    extreme = sum(int(np.sum(np.abs(rng.choice((1.0, -1.0), (rows, nonzero.size)) @ nonzero) >= observed))
                  for rows in batch_sizes(resamples, nonzero.size))
    return (extreme + 1) / (resamples + 1)  # the observed signs count as one draw: p is never 0


def paired_comparison(a: Mapping[str, float], b: Mapping[str, float], *, resamples: int = 10000,
                      seed: int = 0) -> dict:
    """a - b over the question ids both have: n, mean difference, its paired
    bootstrap 95% interval (resampling questions) and the sign-flip p-value."""
    ids = sorted(a.keys() & b.keys())
    if not ids:
        raise ValueError("paired_comparison: no question in common")
    differences = np.array([a[i] - b[i] for i in ids], dtype=float)
    if not differences.any():
        return {"n": len(ids), "difference": 0.0, "ci_low": 0.0, "ci_high": 0.0, "p_value": 1.0}
    low, high = bootstrap_interval(differences, resamples=resamples, seed=seed)
    p_value = sign_flip_p_value(differences, resamples=resamples, rng=np.random.default_rng(seed))
    return {"n": len(ids), "difference": float(differences.mean()), "ci_low": low, "ci_high": high,
            "p_value": p_value}


def macro_paired_comparison(pairs: Sequence[tuple[Mapping[str, float], Mapping[str, float]]], *,
                            resamples: int = 10000, seed: int = 0) -> dict:
    """a - b averaged over groups (datasets), each group's mean difference over
    the question ids both have there counting once: n (questions in all),
    the difference, its stratified paired bootstrap 95% interval, and the
    sign-flip p-value of the weighted differences (a question of a group of n_g
    weighs 1 / (groups * n_g), so their sum is the average). One group gives
    paired_comparison's figures."""
    groups = []
    for a, b in pairs:
        ids = sorted(a.keys() & b.keys())
        if ids:
            groups.append(np.array([a[i] - b[i] for i in ids], dtype=float))
    if not groups:
        raise ValueError("macro_paired_comparison: no question in common")
    n = sum(group.size for group in groups)
    difference = float(np.mean([group.mean() for group in groups]))
    if not any(group.any() for group in groups):
        return {"n": n, "difference": 0.0, "ci_low": 0.0, "ci_high": 0.0, "p_value": 1.0}
    low, high = stratified_interval(groups, resamples=resamples, seed=seed)
    weighted = np.concatenate([group / (len(groups) * group.size) for group in groups])
    p_value = sign_flip_p_value(weighted, resamples=resamples, rng=np.random.default_rng(seed))
    return {"n": n, "difference": difference, "ci_low": low, "ci_high": high, "p_value": p_value}


def is_significant(comparison: Mapping, alpha: float = ALPHA) -> bool:
    """Both tests agree: the interval excludes 0 and p < alpha."""
    excludes_zero = comparison["ci_low"] > 0 or comparison["ci_high"] < 0
    return bool(excludes_zero and comparison["p_value"] < alpha)

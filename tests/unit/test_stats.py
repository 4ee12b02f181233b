"""The report's statistics: bootstrap intervals, the paired bootstrap, McNemar's exact test, Cohen's kappa."""

from math import comb

import numpy as np
import pytest

from lm_eval_medreason.reporting import stats


def binary(n: int, p: float, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random(n) < p).astype(float)


@pytest.mark.parametrize("n,p,seed", [(20, 0.5, 1), (100, 0.3, 2), (1273, 0.8, 3), (7, 0.6, 4)])
def test_interval_contains_the_point_estimate(n, p, seed):
    values = binary(n, p, seed)
    lo, hi = stats.bootstrap_ci(values, seed=seed)
    assert lo <= values.mean() <= hi
    assert 0.0 <= lo <= hi <= 1.0


def test_interval_narrows_with_n():
    widths = []
    for n in (50, 500, 5000):
        lo, hi = stats.bootstrap_ci(binary(n, 0.5, n))
        widths.append(hi - lo)
    assert widths[0] > widths[1] > widths[2] > 0
    # close to the normal approximation 2 * 1.96 * sqrt(p(1-p)/n)
    assert widths[2] == pytest.approx(2 * 1.96 * np.sqrt(0.25 / 5000), rel=0.15)


def test_deterministic_with_seed():
    values = binary(300, 0.4, 0)
    assert stats.bootstrap_ci(values, seed=7) == stats.bootstrap_ci(values, seed=7)
    assert stats.bootstrap_ci(values, seed=7) != stats.bootstrap_ci(values, seed=8)
    # resample count and block size do not change the draw order of a small problem
    assert stats.bootstrap_means(values, 50, seed=3).shape == (50,)


def test_stratified_bootstrap_keeps_benchmark_sizes():
    """All-wrong and all-right benchmarks of fixed sizes: the pooled mean cannot vary; unstratified it would."""
    wrong, right = np.zeros(40), np.ones(60)
    assert stats.bootstrap_ci([wrong, right]) == pytest.approx((0.6, 0.6))
    lo, hi = stats.bootstrap_ci(np.concatenate([wrong, right]))
    assert hi - lo > 0.1
    assert stats.pooled_mean([wrong, right]) == pytest.approx(0.6)


def test_pooled_mean_is_the_size_weighted_mean():
    a, b, c = binary(646, 0.5, 1), binary(308, 0.6, 2), binary(1273, 0.7, 3)
    weighted = (a.mean() * 646 + b.mean() * 308 + c.mean() * 1273) / (646 + 308 + 1273)
    assert stats.pooled_mean([a, b, c]) == pytest.approx(weighted)
    lo, hi = stats.bootstrap_ci([a, b, c])
    assert lo < weighted < hi


def test_large_strata_are_drawn_in_blocks(monkeypatch):
    monkeypatch.setattr(stats, "_BLOCK_CELLS", 1000)
    values = binary(300, 0.5, 0)
    means = stats.bootstrap_means(values, 200, seed=1)
    assert means.shape == (200,) and 0.3 < means.min() <= means.max() < 0.7


def two_sided_binomial(a_only: int, b_only: int) -> float:
    """By hand: 2 * P(X <= min) for X ~ Bin(a_only + b_only, 1/2), capped at 1."""
    n = a_only + b_only
    return min(1.0, 2 * sum(comb(n, i) for i in range(min(a_only, b_only) + 1)) / 2**n)


@pytest.mark.parametrize("a_only,b_only,expected", [(8, 2, 112 / 1024), (0, 6, 2 / 64), (3, 1, 10 / 16), (5, 5, 1.0), (0, 0, 1.0)])
def test_mcnemar_exact_against_hand_computed_binomial(a_only, b_only, expected):
    both, neither = 7, 4
    a = [1] * a_only + [0] * b_only + [1] * both + [0] * neither
    b = [0] * a_only + [1] * b_only + [1] * both + [0] * neither
    got = stats.mcnemar_exact(a, b)
    assert got[:2] == (a_only, b_only)
    assert got[2] == pytest.approx(expected)
    if a_only + b_only:
        assert got[2] == pytest.approx(two_sided_binomial(a_only, b_only))


def test_mcnemar_is_symmetric_and_rejects_fractions():
    a, b = binary(80, 0.6, 1), binary(80, 0.5, 2)
    assert stats.mcnemar_exact(a, b)[2] == pytest.approx(stats.mcnemar_exact(b, a)[2])
    with pytest.raises(ValueError):
        stats.mcnemar_exact([0.5, 1.0], [1.0, 0.0])


def test_paired_bootstrap():
    a = binary(400, 0.7, 1)
    flips = np.random.default_rng(5).random(400) < 0.05
    b = np.where(flips, 1 - a, a)  # b agrees with a on ~95% of the questions
    diff = a.mean() - b.mean()
    lo, hi = stats.paired_bootstrap_ci(a, b)
    assert lo <= diff <= hi
    # the pairing matters: far narrower than the difference of two independent bootstraps
    independent = stats.bootstrap_means(a, seed=1) - stats.bootstrap_means(b, seed=2)
    assert hi - lo < 0.5 * (np.quantile(independent, 0.975) - np.quantile(independent, 0.025))
    assert stats.paired_bootstrap_ci(a, a) == (0.0, 0.0)
    assert stats.paired_bootstrap_ci(np.ones(30), np.zeros(30)) == (1.0, 1.0)
    # stratified: per-benchmark lists, sizes must match
    lo2, hi2 = stats.paired_bootstrap_ci([a[:100], a[100:]], [b[:100], b[100:]])
    assert lo2 <= diff <= hi2
    with pytest.raises(ValueError):
        stats.paired_bootstrap_ci([a[:100]], [b[:99]])


def test_cohen_kappa():
    assert stats.cohen_kappa([1, 1, 0, 0], [1, 0, 0, 0]) == pytest.approx(0.5)
    assert stats.cohen_kappa([1, 0, 1, 0], [1, 0, 1, 0]) == pytest.approx(1.0)
    assert np.isnan(stats.cohen_kappa([1, 1], [1, 1]))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_resamples": 0}, "n_resamples must be a whole number of at least 1, got 0"),
        ({"n_resamples": -10}, "n_resamples must be a whole number of at least 1, got -10"),
        ({"n_resamples": 2.5}, "n_resamples must be a whole number of at least 1, got 2.5"),
        ({"confidence": 0.0}, "confidence must be between 0 and 1 (exclusive), got 0.0"),
        ({"confidence": 1.0}, "confidence must be between 0 and 1 (exclusive), got 1.0"),
        ({"confidence": 95}, "confidence must be between 0 and 1 (exclusive), got 95"),
    ],
)
def test_nonsense_settings_are_refused_not_turned_into_an_interval(kwargs, message):
    values = binary(50, 0.5, 0)
    with pytest.raises(ValueError) as refused:
        stats.bootstrap_ci(values, **kwargs)
    assert str(refused.value) == message
    with pytest.raises(ValueError) as refused:
        stats.paired_bootstrap_ci(values, values, **kwargs)
    assert str(refused.value) == message

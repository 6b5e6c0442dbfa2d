"""Every run counted (issue 18, item 5): :mod:`lsa_theory.experiments.stats` and the tables, documents and
intervals built on it never drop a diverged loop, and the (M7)-by-training interval treats the
loops of one held-out MDP as one cluster."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from lsa_theory.experiments import stats

T975 = {3: 3.182446305284263, 4: 2.7764451051977987, 9: 2.2621571627982053}  # t_{0.975, dof}


def test_paired_ci_scores_a_diverged_loop_and_counts_it():
    a = np.array([1.0, 2.0, 3.0, 1.5, np.nan])  # the fifth loop diverged
    b = np.array([0.0, 1.0, 1.0, 0.5, 5.0])
    ci = stats.paired_ci(a, b)
    d = np.array([1.0, 1.0, 2.0, 1.0, -5.0])  # scored 0 - 5
    assert ci["n"] == 5 and ci["n_diverged_a"] == 1 and ci["n_diverged_b"] == 0
    assert ci["diverged_score"] == stats.DIVERGED_SCORE == 0.0
    assert ci["mean"] == pytest.approx(d.mean(), abs=1e-15)
    sem = d.std(ddof=1) / np.sqrt(5)
    assert ci["sem"] == pytest.approx(sem, rel=1e-14)
    assert ci["ci_high"] - ci["mean"] == pytest.approx(T975[4] * sem, rel=1e-12)
    # counted, the interval contains 0; the four survivors alone give +1.25 [+0.45, +2.05]
    assert ci["ci_low"] < 0 < ci["ci_high"]
    assert stats.mean_sem(a) == pytest.approx((1.5, np.std([1, 2, 3, 1.5, 0], ddof=1) / np.sqrt(5)))


def test_paired_ci_small_and_bad_input():
    assert stats.paired_ci([1.0], [0.0])["sem"] is None
    assert stats.paired_ci([], [])["mean"] is None and stats.mean_sem([]) == (None, None)
    for a, b, match in (([1.0, 2.0], [1.0], "shapes"), ([[1.0]], [1.0], "vector")):
        with pytest.raises(ValueError, match=match):
            stats.paired_ci(a, b)
    with pytest.raises(ValueError, match="level"):
        stats.paired_ci([1.0, 2.0], [0.0, 0.0], level=1.0)
    with pytest.raises(ValueError, match="expected"):
        stats.clustered_paired_ci(np.ones((3, 2)), np.ones(4))


def test_clustered_ci_averages_within_each_mdp_then_pairs():
    """Loops of one MDP share its difficulty ``m_i`` (spread 1): the block is the teacher minus 0.1
    plus small per-loop noise. The clustered interval pairs per-MDP means with the teacher on the
    same MDP (N = 10 clusters, not 30 loops) and is tight around -0.1; pooling the 30 loops
    unpaired gives an s.e. about 10 times larger and an interval containing 0."""
    rng = np.random.default_rng(0)
    N, R = 10, 3
    m = rng.standard_normal(N)
    a = m[:, None] - 0.1 + 0.01 * rng.standard_normal((N, R))
    a[2, 1] = np.nan  # one diverged loop: scored 0 inside its cluster
    ci = stats.clustered_paired_ci(a, m)
    abar = np.where(np.isfinite(a), a, 0.0).mean(axis=1)
    d = abar - m
    assert ci["n"] == N and ci["n_loops_a"] == N * R and ci["n_diverged_a"] == 1
    assert ci["mean"] == pytest.approx(d.mean(), abs=1e-15)
    assert ci["sem"] == pytest.approx(d.std(ddof=1) / np.sqrt(N), rel=1e-13)
    assert ci["ci_high"] - ci["mean"] == pytest.approx(T975[9] * ci["sem"], rel=1e-12)
    assert ci["mean_a"] == pytest.approx(np.where(np.isfinite(a), a, 0.0).mean(), abs=1e-15)
    pooled = np.where(np.isfinite(a), a, 0.0).ravel()
    unpaired_se = np.hypot(pooled.std(ddof=1) / np.sqrt(pooled.size), m.std(ddof=1) / np.sqrt(N))
    assert unpaired_se > 5 * ci["sem"]
    # without the diverged loop the clustered interval lies below 0 (the block is worse)
    clean = stats.clustered_paired_ci(np.where(np.isfinite(a), a, m[:, None] - 0.1), m)
    assert clean["ci_high"] < 0
    assert clean["sem"] < 0.01 and clean["mean"] == pytest.approx(-0.1, abs=0.01)


def test_clustered_ci_with_one_loop_per_mdp_is_the_paired_ci():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((2, 5))
    c, p = stats.clustered_paired_ci(a[:, None], b), stats.paired_ci(a, b)
    assert {k: c[k] for k in p} == p
    q = scipy.stats.t.ppf(0.975, 4)
    assert q == pytest.approx(T975[4], rel=1e-12)


def test_the_three_mean_sem_variants_differ_only_in_what_they_do_with_a_diverged_entry():
    """One module, three stated rules for a non-finite entry: ``mean_sem`` scores it 0,
    ``mean_sem_columns`` lets it propagate (the control curves count divergences apart),
    ``mean_sem_finite`` leaves it out and counts it (the context-length rows)."""
    x = np.array([1.0, 2.0, 4.0, np.nan])
    assert stats.mean_sem(x) == pytest.approx((7 / 4, np.std([1, 2, 4, 0], ddof=1) / 2))
    m, s = stats.mean_sem_columns(x)
    assert np.isnan(m) and np.isnan(s)
    assert stats.mean_sem_finite(x) == pytest.approx((7 / 3, np.std([1, 2, 4], ddof=1) / np.sqrt(3), 1))
    c = np.arange(12.0).reshape(4, 3) ** 1.5  # columns: the same formula per column, bit for bit
    m, s = stats.mean_sem_columns(c)
    assert np.array_equal(m, c.mean(axis=0)) and np.array_equal(s, c.std(axis=0, ddof=1) / 2)
    assert stats.mean_sem_columns([3.0])[1] == 0.0 and stats.mean_sem_finite([3.0, np.inf])[1:] == (None, 1)
    with pytest.raises(ValueError, match="at least one row"):
        stats.mean_sem_columns([])


def test_paired_difference_is_b_minus_a_over_the_finite_pairs():
    a, b = np.array([1.0, 2.0, np.nan, 4.0, 0.0]), np.array([2.0, 4.0, 5.0, 5.0, 3.0])
    d = np.array([1.0, 2.0, 1.0, 3.0])
    got = stats.paired_difference(a, b)
    half = T975[3] * d.std(ddof=1) / 2
    assert got["n_pairs"] == 4 and got["mean"] == pytest.approx(7 / 4, abs=1e-15)
    assert got["ci"] == pytest.approx([7 / 4 - half, 7 / 4 + half], rel=1e-12)

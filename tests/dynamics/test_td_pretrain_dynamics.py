"""(WP3), (WP6) of THEORY §10: meta-features, the stationary point (a*, b*) against THEORY's values,
the flow of the expected update on Fix reaching theta* (not (W3)), distances, resumable pretraining."""

from __future__ import annotations

import numpy as np
import pytest

from lsa_theory import td_pretrain as tp
from lsa_theory.dynamics import td_pretrain as dt

#: THEORY §10 (WP3): (d, n, windows per trajectory) -> ((a*, s.e.), (b*, s.e.)).
THEORY_WP3 = {(3, 10, 16): ((1.547, 0.021), (0.100, 0.022)), (4, 30, 64): ((1.702, 0.025), (0.255, 0.028))}


def _sample(rng, T=6, d=3, s=10, n=10, K=16, gamma=0.9):
    tasks = tp.sample_tasks(T, s, d, rng)
    x = tp.sample_trajectories(tasks, K + n + 2, rng)
    return tasks, x


def test_value_on_fix_is_linear_in_the_meta_features(rng):
    """On Fix at L = 1, ``v = a f1 + b f2`` with ``a = -p x``, ``b = -p y`` (round-off: a sum of
    n (d + 1) products of O(1) terms, 1e-13 relative is 100x that)."""
    d, gamma, n, K = 3, 0.9, 10, 16
    tasks, x = _sample(rng)
    Z, _ = tp.prompts(tasks, x, gamma, n, K)
    f, _ = dt.meta_features(tasks, x, gamma, n, K)
    c = rng.normal(size=(2, 1, 5))
    Ps, Qs = tp.fix_from_coordinates(c[0], d), tp.fix_from_coordinates(c[1], d)
    p, xq, yq = Ps[0, -1, -1], Qs[0, 0, 0], Qs[0, d, 0]
    v = tp.values(Z, Ps, Qs)
    pred = -p * xq * f[..., 0] - p * yq * f[..., 1]
    assert np.max(np.abs(v - pred)) <= 1e-13 * np.max(np.abs(v))


def test_fix_update_is_the_projected_sampled_update(rng):
    """The (p, x, y) flow field from the sample's moments equals the Fix coordinates of the exact
    sampled update on the same sample (relative 1e-12; a 1 % error in any moment is 1e-2)."""
    d, gamma, n, K = 3, 0.9, 10, 16
    tasks, x = _sample(rng, T=20)
    Z, rq = tp.prompts(tasks, x, gamma, n, K)
    f, rq2 = dt.meta_features(tasks, x, gamma, n, K)
    assert np.array_equal(rq, rq2)
    st = dt.stationary_point(f, rq, gamma)
    start = np.array([0.7, -0.9, 0.4])
    Ps, Qs = np.zeros((1, 7, 7)), np.zeros((1, 7, 7))
    Ps[0, -1, -1] = start[0]
    Qs[0, :d, :d] = start[1] * np.eye(d)
    Qs[0, d:, :d][:d] = start[2] * np.eye(d)
    _, _, dP, dQ = tp.value_and_td_direction(Z, rq, Ps, Qs, gamma)
    got = np.array([dP[0, -1, -1], np.trace(dQ[0, :d, :d]) / d, np.trace(dQ[0, d : 2 * d, :d]) / d])
    want = dt.fix_update(start, st.A, st.b, d)
    assert np.max(np.abs(got - want)) <= 1e-12 * np.max(np.abs(want))


@pytest.mark.parametrize(("d", "n", "K", "tasks"), [(3, 10, 16, 64_000), (4, 30, 64, 12_000)])
def test_stationary_point_reproduces_theory(d, n, K, tasks):
    """(WP3): our (a*, b*) within two standard errors of THEORY's (the s.e. of the difference of the
    two independent estimates, ``sqrt(se_ours^2 + se_theory^2)``), seed 0; the moments matrix
    has positive eigenvalues (TD in (a, b) stable)."""
    st = dt.stationary_sample(tasks, 10, d, n, K, 0.9, np.random.default_rng(0))
    for value, sem, (ref, ref_sem) in zip(st.c, st.sem, THEORY_WP3[(d, n, K)], strict=True):
        assert abs(value - ref) <= 2 * np.hypot(sem, ref_sem), (value, sem, ref, ref_sem)
    assert np.all(np.real(st.eig) > 0)
    assert st.c[1] > 3 * st.sem[1]  # b* > 0: (W3) (b = 0) is not stationary


def test_flow_on_fix_reaches_theta_star_not_w3():
    """From the (W3) point (p = 1, x = -alpha, y = 0) the flow of the expected update on Fix ends at
    ``(a, b) = (a*, b*)`` (relative 1e-6, solver rtol 1e-10), away from (W3) (b = 0)."""
    st = dt.stationary_sample(8000, 10, 3, 10, 16, 0.9, np.random.default_rng(1))
    _, z, c = dt.fix_flow([1.0, -0.3, 0.0], st.A, st.b, 3)
    assert np.linalg.norm(c[-1] - st.c) <= 1e-6 * np.linalg.norm(st.c)
    P, Q = np.zeros((1, 7, 7)), np.zeros((1, 7, 7))
    P[0, -1, -1], Q[0, :3, :3], Q[0, 3:6, :3] = z[-1, 0], z[-1, 1] * np.eye(3), z[-1, 2] * np.eye(3)
    dist = dt.distances(P, Q, st.c)
    assert dist["dist_theta_star"] <= 1e-6 and dist["dist_fix"] <= 1e-15
    assert dist["dist_w3"] >= 0.5 * st.c[1] / np.linalg.norm(st.c)


def test_distances_of_the_reference_points():
    d = 3
    P3, Q3 = dt.w3_theta(d, 1, 0.7)
    r = dt.distances(P3, Q3, [1.5, 0.1])
    assert r["dist_fix"] <= 1e-15 and r["dist_w3"] <= 1e-15
    Pt, Qt = dt.theta_star(d, [1.5, 0.1])
    r = dt.distances(2 * Pt, Qt / 2, [1.5, 0.1])  # the scaling symmetry does not move it
    assert r["dist_theta_star"] <= 1e-15 and r["dist_w3"] > 0.05


def test_pretraining_resumes_exactly():
    held = tp.sample_tasks(5, 10, 3, np.random.default_rng(9))
    kw = {
        "d": 3,
        "s": 10,
        "n": 10,
        "L": 1,
        "gamma": 0.9,
        "k": 4,
        "heldout": held,
        "n_windows": 16,
        "log_every": 3,
    }
    one = dt.pretrain(outer=6, rng=np.random.default_rng(0), **kw)
    half = dt.pretrain(outer=3, rng=np.random.default_rng(0), **kw)
    two = dt.pretrain(outer=3, rng=None, state=half, **kw)
    assert np.array_equal(one.Ps, two.Ps) and np.array_equal(one.Qs, two.Qs)
    assert one.log == two.log and one.adam.t == 30


def test_standard_errors_are_calibrated():
    """The delta-method s.e. against the spread of 30 independent estimates (1000 tasks each, d = 3):
    their ratio is within [0.7, 1.4] (the sd of 30 draws is within 13 % of its value at one sigma, so
    the band is about 3 sigma; an s.e. that ignores the windows' correlation within a trajectory, or
    divides by the number of windows, is 4x off)."""
    rng = np.random.default_rng(5)
    est = [dt.stationary_sample(1000, 10, 3, 10, 16, 0.9, rng) for _ in range(30)]
    c = np.array([e.c for e in est])
    sem = np.array([e.sem for e in est]).mean(axis=0)
    ratio = c.std(axis=0, ddof=1) / sem
    assert np.all((ratio > 0.7) & (ratio < 1.4)), ratio


def test_heldout_value_error_by_hand():
    """(WP5) ``rel_msve`` against a loop: per task the context is the first window of a fresh
    trajectory, every state the query, weights the stationary law (power iteration), true values by
    solving the Bellman equation; the zero predictor scores exactly 1."""
    gamma, n, d = 0.9, 10, 3
    tasks = tp.sample_tasks(3, 10, d, np.random.default_rng(1))
    Ps, Qs = tp.xavier_start(1, 7, np.random.default_rng(2), gain=2.0)
    got = dt.heldout_value_error(Ps, Qs, tasks, gamma, n, np.random.default_rng(3))
    x = tp.sample_trajectories(tasks, n + 1, np.random.default_rng(3))
    errs = []
    for t in range(3):
        phi, r, P = tasks.phi[t], tasks.r[t], tasks.P[t]
        mu = np.full(10, 0.1)
        for _ in range(5000):
            mu = mu @ P
        v = np.linalg.solve(np.eye(10) - gamma * P, r)
        num = den = 0.0
        for s in range(10):
            Z = np.zeros((7, n + 1))
            for i in range(n):
                Z[:, i] = np.concatenate([phi[x[t, i]], gamma * phi[x[t, i + 1]], [r[x[t, i]]]])
            Z[:d, n] = phi[s]
            v_tf = tp.values(Z, Ps, Qs)
            num += mu[s] * (v_tf - v[s]) ** 2
            den += mu[s] * v[s] ** 2
        errs.append(num / den)
    assert abs(got - np.mean(errs)) <= 1e-10 * got
    zero = np.zeros((1, 7, 7))
    assert dt.heldout_value_error(zero, zero, tasks, gamma, n, np.random.default_rng(3)) == 1.0

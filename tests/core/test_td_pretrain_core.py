"""(WP1)-(WP2) of THEORY §10: the task law, the prompts, the exact TD direction, Adam against torch,
and the exact orbit average of the update over the symmetry group of the task law."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lsa_theory as lt
from lsa_theory import td_pretrain as tp

D3 = 7  # D = 2d + 1 at d = 3


def _batch(rng, T=6, d=3, s=10, n=10, K=16, gamma=0.9):
    tasks = tp.sample_tasks(T, s, d, rng)
    x = tp.sample_trajectories(tasks, K + n + 2, rng)
    Z, rq = tp.prompts(tasks, x, gamma, n, K)
    return tasks, x, Z, rq


def test_boyan_chains_are_the_authors_law(rng):
    P, mu, r = tp.boyan_chains(200, 10, rng)
    assert np.allclose(P.sum(-1), 1.0, atol=1e-15) and np.allclose(mu.sum(-1), 1.0, atol=1e-15)
    i = np.arange(8)
    assert np.all(P[:, i, i + 1] + P[:, i, i + 2] == 1.0)
    assert np.all((P[:, i, i + 1] >= 0.01) & (P[:, i, i + 1] <= 0.99))
    assert np.all(P[:, 8, 9] == 1.0) and np.all(P[:, 9] > 0)
    assert np.abs(r).max() <= 1.0


def test_random_mrps_and_the_task_kinds(rng):
    P, mu, r = tp.random_mrps(50, 6, rng)
    assert np.allclose(P.sum(-1), 1.0, atol=1e-14) and np.allclose(mu.sum(-1), 1.0, atol=1e-14)
    assert P.min() > 0 and np.abs(r).max() <= 1.0
    tasks = tp.sample_tasks(3, 6, 2, rng, kind="random")
    assert tasks.phi.shape == (3, 6, 2) and np.abs(tasks.phi).max() <= 1.0
    with pytest.raises(ValueError, match="kind"):
        tp.sample_tasks(3, 6, 2, rng, kind="garnet")


def test_prompts_follow_the_window_indexing(rng):
    gamma, n, K = 0.9, 10, 16
    tasks, x, Z, rq = _batch(rng, n=n, K=K, gamma=gamma)
    d = 3
    for t, k in ((0, 0), (3, 7), (5, 16)):
        for i in range(n):
            s0, s1 = x[t, k + i], x[t, k + i + 1]
            col = np.concatenate([tasks.phi[t, s0], gamma * tasks.phi[t, s1], [tasks.r[t, s0]]])
            assert np.array_equal(Z[t, k, :, i], col)
        q = x[t, k + n + 1]
        assert np.array_equal(Z[t, k, :, n], np.concatenate([tasks.phi[t, q], np.zeros(d + 1)]))
        if k < K:
            assert rq[t, k] == tasks.r[t, q]


def test_values_agree_with_the_masked_block(rng):
    _, _, Z, _ = _batch(rng)
    Ps, Qs = tp.xavier_start(3, D3, rng, gain=1.0, shared=False)
    v = tp.values(Z, Ps, Qs)
    ref = -lt.masked_lsa_stack(Z, list(zip(Ps, Qs, strict=True)))[..., -1, -1]
    assert np.max(np.abs(v - ref)) <= 1e-12 * np.max(np.abs(ref))


@pytest.mark.parametrize("L", [1, 3])
def test_td_direction_is_the_gradient(rng, L):
    """Central differences of ``J = mean(delta_fixed v)``: truncation h^2 |v'''| + round-off eps/h,
    about 1e-10 relative at h = 1e-6; a 1 % error in any entry is 1e-2."""
    _, _, Z, rq = _batch(rng)
    Ps, Qs = tp.xavier_start(L, D3, rng, gain=1.0, shared=False)
    _, delta, dP, dQ = tp.value_and_td_direction(Z, rq, Ps, Qs, 0.9)

    def J(P, Q):
        return float((delta * tp.values(Z, P, Q)[:, :-1]).mean())

    h = 1e-6
    for l, i, j in ((0, 6, 6), (L - 1, 0, 3), (0, 2, 5), (L - 1, 6, 1)):
        E = np.zeros_like(Ps)
        E[l, i, j] = h
        fdP = (J(Ps + E, Qs) - J(Ps - E, Qs)) / (2 * h)
        fdQ = (J(Ps, Qs + E) - J(Ps, Qs - E)) / (2 * h)
        scale = max(np.abs(dP).max(), np.abs(dQ).max())
        assert abs(dP[l, i, j] - fdP) <= 1e-7 * scale
        assert abs(dQ[l, i, j] - fdQ) <= 1e-7 * scale


def test_one_training_step_equals_torch_adam_on_the_authors_loss(rng):
    """THEORY §10 check 1: the authors' step (loss ``mean (r + gamma v'.detach() - v)^2``, shared
    weights, torch's Adam with lr 1e-3 and weight decay 1e-6), three steps, to 1e-12."""
    L, gamma = 3, 0.9
    Ps, Qs = tp.xavier_start(L, D3, rng, gain=0.5, shared=True)
    params = (Ps[:1], Qs[:1])
    state = tp.adam_init(params)
    Pt = torch.tensor(Ps[0], dtype=torch.float64, requires_grad=True)
    Qt = torch.tensor(Qs[0], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([Pt, Qt], lr=1e-3, weight_decay=1e-6)
    for _ in range(3):
        _, _, Z, rq = _batch(rng, T=1, K=64)
        _, _, dP, dQ = tp.value_and_td_direction(Z, rq, *(np.repeat(p, L, 0) for p in params), gamma)
        params, state = tp.adam_step(
            params, (-2 * dP.sum(0, keepdims=True), -2 * dQ.sum(0, keepdims=True)), state
        )
        Zt = torch.tensor(Z[0])
        out = lt.masked_lsa_stack(Zt, [(Pt, Qt)] * L)
        v = -out[:, -1, -1]
        loss = ((torch.tensor(rq[0]) + gamma * v[1:].detach() - v[:-1]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert np.max(np.abs(params[0][0] - Pt.detach().numpy())) <= 1e-12
    assert np.max(np.abs(params[1][0] - Qt.detach().numpy())) <= 1e-12


def test_groups_and_fix():
    assert len(tp.signed_permutations(3)) == 48 and len(tp.signed_permutations(4)) == 384
    for G in (tp.signed_permutations(3), tp.sign_group(3), tp.first_half_permutations(3)):
        assert np.allclose(G @ np.swapaxes(G, -1, -2), np.eye(3))
    M = np.random.default_rng(0).normal(size=(D3, D3))
    gh = tp.lift(tp.signed_permutations(3))
    orbit = (gh @ M @ np.swapaxes(gh, -1, -2)).mean(0)
    assert np.max(np.abs(orbit - tp.fix_project(M))) <= 1e-15
    gh = tp.lift(tp.sign_group(3))
    assert np.max(np.abs((gh @ M @ np.swapaxes(gh, -1, -2)).mean(0) - tp.fix_project(M, "even"))) <= 1e-15


def _points(rng, d, L, shared):
    from lsa_theory.dynamics.td_pretrain import w3_theta

    P3, Q3 = w3_theta(d, L, 0.3)
    k = 1 if shared else L
    c = rng.normal(size=(2, k, 5)) * 0.3
    Pf, Qf = tp.fix_from_coordinates(c[0], d), tp.fix_from_coordinates(c[1], d)
    if shared:
        Pf, Qf = np.repeat(Pf, L, 0), np.repeat(Qf, L, 0)
    E = rng.normal(size=(2, k, 2 * d + 1, 2 * d + 1)) * 0.05
    E = np.repeat(E, L // k, axis=1)
    return {"w3": (P3, Q3), "fix": (Pf, Qf), "off": (P3 + E[0], Q3 + E[1])}


@pytest.mark.parametrize("L", [1, 3])
@pytest.mark.parametrize("shared", [True, False])
def test_orbit_average_stays_in_fix(rng, L, shared):
    """(WP2) exact orbit average over the 48 signed permutations (d = 3): outside Fix <= 1e-14
    relative (and <= its first-order round-off bound) at (W3) and at a random point of Fix; >= 1e-4
    at (W3) + 0.05 noise. The mutated group (permutations of the first half) fails the in-set check.

    Round-off: the first-order worst-case bound of :func:`lsa_theory.td_pretrain.td_direction_error_bound`
    is 1e-12 (L = 1) to 5e-11 (L = 3) relative here, so the verdict ``<= bound`` holds on any
    machine; the issue's ``<= 1e-14`` is a measurement on this one (observed <= 4e-16), not implied by
    the bound. The off-set threshold 1e-4 is far above the bound (<= 4e-8), so that verdict is
    resolvable everywhere."""
    d = 3
    _, _, Z, rq = _batch(rng, T=4)
    G = tp.signed_permutations(d)
    for name, (Ps, Qs) in _points(rng, d, L, shared).items():
        dP, dQ, bP, bQ = tp.orbit_averaged_direction(Z, rq, Ps, Qs, 0.9, G, shared, with_bound=True)
        out, inside = tp.fix_outside(np.stack([dP, dQ]))
        if name == "off":
            assert out / inside >= 1e-4, (name, out / inside)
        else:
            bound = np.linalg.norm(np.stack([bP, bQ])) / inside
            assert out / inside <= min(1e-14, bound), (name, out / inside, bound)
        dP, dQ = tp.orbit_averaged_direction(Z, rq, Ps, Qs, 0.9, tp.first_half_permutations(d), shared)
        out, inside = tp.fix_outside(np.stack([dP, dQ]))
        assert out / inside >= 1e-4, ("mutated group", name, out / inside)

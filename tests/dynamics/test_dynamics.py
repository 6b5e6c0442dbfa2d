"""Level 3 of the proofs: the gradient flow of (M1) near the optimal manifold, at S = A = 2.

(M5) richness table, (M6) local exponential rate against ``lambda_min^+``, (M3) conservation
and the predicted limit scale, (M4) distance to the manifold, (M7) held-out cost, and that a flow
that does not converge says so.
"""

from __future__ import annotations

import numpy as np
import pytest

from lsa_theory import dynamics as dy
from lsa_theory.experiments.diversity import heldout_error


def _dataset(seed=0, **kw):
    return dy.teacher_dataset(dy.TeacherSpec(**kw), np.random.default_rng(seed))


def _perturb(theta, radius, seed):
    z = np.random.default_rng([seed, 1]).standard_normal(theta.size)
    return theta + radius * np.linalg.norm(theta) * z / np.linalg.norm(z)


# ---------------------------------------------------------------------------------------------
# (M5): the table of docs/theory.md at S = A = 2, alpha = 0.2, gamma = 0.5
# ---------------------------------------------------------------------------------------------

M5_TABLE = [
    (dict(k=20), 1),
    (dict(k=20, features="onehot"), 10),
    (dict(k=20, shared_features=True), 10),
    (dict(k=1, frames=200), 19),
    (dict(k=1, frames=200, reward="sas"), 10),
]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(("kw", "kernel"), M5_TABLE)
def test_m5_table(kw, kernel, seed):
    ds = _dataset(seed, **kw)
    assert dy.loss(ds, dy.construction(ds, 1.0)) < 1e-28
    rich = dy.richness(ds)
    assert rich.ker_dim == kernel
    assert rich.tangent_dim == kernel  # tangent from (M4), not from the Hessian
    assert rich.morse_bott and rich.subspace_gap < rich.gap_tol < 1e-3
    assert rich.scaling_only == (kernel == 1)
    # the split is clear: kernel at round-off, the rest at least 1e4 times larger
    assert rich.kernel_max < 1e-15 * rich.lambda_max
    assert rich.lambda_min_plus > 1e4 * max(rich.kernel_max, 1e-300)


def test_onehot_invisible_direction_is_the_sum_to_one_vector():
    """(M4): one-hot features give u = [1; -1/gamma; 0] (normalised)."""
    ds = _dataset(k=20, features="onehot")
    U = dy.invisible_directions(ds)
    assert U.shape == (9, 1)
    u = np.concatenate([np.ones(4), -np.ones(4) / 0.5, [0.0]])
    u /= np.linalg.norm(u)
    assert abs(abs(U[:, 0] @ u) - 1.0) < 1e-12


def test_single_mdp_reward_direction():
    """(M4): one MDP with r(s, a) = rho^T phi(s, a) adds u = [rho; 0; -1] to the invisible space."""
    ds = _dataset(k=1, frames=50, shared_features=True)
    U = dy.invisible_directions(ds)
    assert U.shape[1] == 2
    # every u in U is orthogonal to every context column
    assert np.abs(np.einsum("mr,fm->fr", U, ds.Sigma.mean(0))).max() < 1e-12


def test_tangent_space_is_orthonormal_and_flat():
    """Moving along the (M4) tangent keeps the loss at zero to second order."""
    ds = _dataset(k=20, shared_features=True)
    theta = dy.construction(ds, -1.5)
    T = dy.tangent_space(ds, theta)
    np.testing.assert_allclose(T.T @ T, np.eye(T.shape[1]), atol=1e-12)
    rng = np.random.default_rng(3)
    for _ in range(3):
        v = T @ rng.standard_normal(T.shape[1])
        v /= np.linalg.norm(v)
        assert dy.loss(ds, theta + 1e-4 * v) < 1e-14  # second order would be ~1e-9
        w = rng.standard_normal(theta.size)
        w -= T @ (T.T @ w)
        w /= np.linalg.norm(w)
        assert dy.loss(ds, theta + 1e-4 * w) > 1e-15


# ---------------------------------------------------------------------------------------------
# (M4) distance and (M3) scale prediction
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("c", [1.0, -2.0, 0.3])
def test_distance_and_scale_on_the_manifold(c):
    ds = _dataset()
    theta = dy.construction(ds, c)
    dist, c_near = dy.distance_to_manifold(ds, theta)
    assert dist < 1e-12 and abs(c_near - c) < 1e-12 * abs(c)
    assert abs(dy.predict_scale(ds, theta) - c) < 1e-12 * abs(c)


def test_distance_of_a_normal_offset():
    """A step of length eps normal to the manifold is at distance eps (to O(eps^2))."""
    ds = _dataset()
    theta = dy.construction(ds, 1.0)
    T = dy.tangent_space(ds, theta)
    w = np.random.default_rng(0).standard_normal(theta.size)
    w -= T @ (T.T @ w)
    w /= np.linalg.norm(w)
    for eps in (1e-3, 1e-5):
        dist, _ = dy.distance_to_manifold(ds, theta + eps * w)
        assert abs(dist - eps) < 10 * eps**2


def test_distance_ignores_invisible_directions():
    ds = _dataset(k=20, features="onehot")
    theta = dy.construction(ds, 1.0)
    U = dy.invisible_directions(ds)
    A, B = dy.unpack(theta, dy.shapes(ds))
    A2 = A + np.random.default_rng(1).standard_normal((A.shape[0], 1)) @ U.T
    assert dy.loss(ds, dy.pack(A2, B)) < 1e-28
    assert dy.distance_to_manifold(ds, dy.pack(A2, B))[0] < 1e-12


# ---------------------------------------------------------------------------------------------
# (M6) rate, (M3) conservation and the limit, for SARSA and actor-critic
# ---------------------------------------------------------------------------------------------

FLOW_CASES = [
    ("sarsa", {}, 1.0, 1e-2),
    ("sarsa", {}, -2.0, 1e-1),
    ("actor_critic", {"d_pi": 2}, 1.0, 1e-2),
    ("actor_critic", {"d_pi": 2}, -2.0, 1e-1),
]


@pytest.mark.parametrize(("algo", "kw", "c", "radius"), FLOW_CASES)
def test_local_exponential_convergence(algo, kw, c, radius):
    ds = _dataset(algorithm=algo, **kw)
    theta0 = _perturb(dy.construction(ds, c), radius, seed=7)
    flow = dy.gradient_flow(ds, theta0, 1e12, error_bounds=True)
    assert flow.converged, flow.message
    assert flow.loss[-1] < 1e-26 and flow.loss[0] > 1e-8
    assert flow.dist[-1] < 1e-8
    rich = dy.richness(ds, flow.theta_final)
    assert rich.morse_bott and rich.scaling_only
    fit = dy.fit_modes(flow.t, flow.loss, flow.loss_err)  # points whose loss is resolved
    assert fit.n_points >= 100
    mu = fit.mu
    ratio = mu / rich.lambda_min_plus
    assert abs(ratio - 1.0) + fit.roundoff < 0.01, (ratio, fit)  # observed within 0.03 %
    # a priori: lambda_min^+ at theta*(c_pred) of (M3), computed from the start alone
    prior = dy.hessian_spectrum(ds, dy.construction(ds, dy.predict_scale(ds, theta0))).lambda_min_plus
    assert abs(mu / prior - 1.0) + fit.roundoff < 0.01, mu / prior
    assert flow.conserved_drift < 1e-8
    c_pred = dy.predict_scale(ds, theta0)
    assert abs(flow.c_final / c_pred - 1.0) < 1e-6
    # the loss is non-increasing along a gradient flow, up to the round-off bounds of the losses
    assert np.all(np.diff(flow.loss) <= dy.loss_increase_bound(flow))


def test_flow_that_does_not_converge_says_so():
    ds = _dataset()
    theta0 = _perturb(dy.construction(ds, 1.0), 1e-1, seed=1)
    flow = dy.gradient_flow(ds, theta0, 10.0)
    assert not flow.converged
    assert "NOT reached" in flow.message
    assert flow.status == 0 and flow.t[-1] == pytest.approx(10.0)


def test_gradient_descent_stable_and_unstable_steps():
    ds = _dataset()
    theta0 = _perturb(dy.construction(ds, 1.0), 1e-2, seed=2)
    lam_max = dy.hessian_spectrum(ds, dy.construction(ds, 1.0)).lambda_max
    good = dy.gradient_descent(ds, theta0, eta=1.0 / lam_max, max_steps=2000, record_every=50)
    assert not good.converged and "max_steps" in good.message
    assert good.loss[-1] < 1e-3 * good.loss[0]
    assert np.all(np.diff(good.loss) <= 0)
    bad = dy.gradient_descent(ds, theta0, eta=1e3 / lam_max, max_steps=20_000, record_every=50)
    assert not bad.converged and bad.status == -2 and "diverged" in bad.message
    assert bad.stats["steps"] < 20_000


@pytest.mark.slow
def test_lsoda_and_dop853_reach_the_same_limit():
    """A stiff (LSODA + Hessian) and an explicit (DOP853) integrator agree on the limit (~60 s)."""
    ds = _dataset(d=2, alpha=1.0, k=5)
    theta0 = _perturb(dy.construction(ds, 1.0), 5e-2, seed=1)
    a = dy.gradient_flow(ds, theta0, 1e9, method="LSODA")
    b = dy.gradient_flow(ds, theta0, 1e9, method="DOP853", grad_floor=1e-15)
    assert a.converged and b.converged
    assert np.linalg.norm(a.theta_final - b.theta_final) < 1e-8
    assert a.stats["nfev"] * 100 < b.stats["nfev"]  # why the stiff solver is the default


# ---------------------------------------------------------------------------------------------
# (M7) the cost of missing diversity
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "scaling_only"),
    [(dict(k=20), True), (dict(k=20, shared_features=True), False), (dict(k=1, frames=200), False)],
)
def test_heldout_error(kw, scaling_only):
    ds = _dataset(**kw)
    held = dy.teacher_dataset(
        ds.spec.replace(k=20, frames=10, shared_features=False), np.random.default_rng(99)
    )
    theta0 = _perturb(dy.construction(ds, 1.0), 5e-2, seed=3)
    flow = dy.gradient_flow(ds, theta0, 1e14)
    assert flow.converged and flow.loss[-1] < 1e-20
    err = heldout_error(flow.theta_final, held)
    if scaling_only:
        assert err < 1e-9  # zero up to the distance left at the gradient floor (~1e-12)
    else:
        assert err > 1e-3  # the invisible components are frozen by the flow
    # the invisible parts of A and B are conserved exactly by the flow (Sigma U = 0)
    U = dy.invisible_directions(ds)
    sh = dy.shapes(ds)
    (A0, B0), (A1, B1) = dy.unpack(theta0, sh), dy.unpack(flow.theta_final, sh)
    assert np.abs(A1 @ U - A0 @ U).max(initial=0) < 1e-9
    assert np.abs(U.T @ B1 - U.T @ B0).max(initial=0) < 1e-9


def test_bad_flow_arguments():
    ds = _dataset(k=2, frames=2)
    theta = dy.construction(ds, 1.0)
    with pytest.raises(ValueError, match="^theta0:"):
        dy.gradient_flow(ds, theta[:-1], 1.0)
    with pytest.raises(ValueError, match="^t_max:"):
        dy.gradient_flow(ds, theta, -1.0)
    with pytest.raises(ValueError, match="^method:"):
        dy.gradient_flow(ds, theta, 1.0, method="Euler")
    with pytest.raises(ValueError, match="^eta:"):
        dy.gradient_descent(ds, theta, eta=0.0, max_steps=1)
    with pytest.raises(ValueError, match="^theta0:"):
        dy.gradient_flow(ds, np.full_like(theta, np.nan), 1.0)

"""The structured stiff path (dynamics.stiff, ``gradient_flow(method="structured")``) against the dense
LSODA reference: Newton solves, (M3) projection, and the (M3)/(M6) checks of the flow it integrates."""

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lsa_theory import dynamics as dy
from lsa_theory.dynamics.stiff import NegHessian, ScaleProjection, StructuredBDF


def _dataset(seed=0, **kw):
    return dy.teacher_dataset(dy.TeacherSpec(**kw), np.random.default_rng(seed))


def _perturb(theta, radius, seed):
    z = np.random.default_rng([seed, 1]).standard_normal(theta.size)
    return theta + radius * np.linalg.norm(theta) * z / np.linalg.norm(z)


@settings(max_examples=30, deadline=None)
@given(log_c=st.floats(-3.0, 9.0), radius=st.sampled_from([1e-2, 0.3, 1.0]), seed=st.integers(0, 5))
@example(log_c=6.0, radius=1.0, seed=0)  # I + c H indefinite: the LU branch
def test_schur_factor_solves_the_newton_system(log_c, radius, seed):
    ds = _dataset(k=3, frames=4, algorithm="actor_critic", d_pi=2)
    theta = _perturb(dy.construction(ds, 1.0), radius, seed)
    c = 10.0**log_c
    H = dy.hessian(ds, theta)
    fac = None - c * NegHessian(dy.hessian_blocks(ds, theta))
    b = np.random.default_rng(seed).standard_normal(theta.size)
    x = fac.solve(b)
    x_ref = np.linalg.solve(np.eye(theta.size) + c * H, b)
    cond = np.linalg.cond(np.eye(theta.size) + c * H)
    assert np.linalg.norm(x - x_ref) <= 1e-13 * cond * np.linalg.norm(x_ref)
    assert fac.kind == ("cholesky" if np.linalg.eigvalsh(np.eye(theta.size) + c * H).min() > 0 else "lu")


def test_scale_projection_keeps_the_loss_and_restores_m3():
    ds = _dataset(shared_features=True)  # invisible directions: U has r > 0 columns
    U = dy.invisible_directions(ds)
    assert U.shape[1] > 0
    theta0 = _perturb(dy.construction(ds, 1.0), 0.1, 3)
    proj = ScaleProjection(dy.shapes(ds), U, theta0)
    sh = dy.shapes(ds)
    A, B = dy.unpack(theta0, sh)
    moved = dy.pack(A / 1.01, 1.01 * B) + 0.0  # a move along the symmetry changes Q_v, not the loss
    back = moved + proj.delta(moved)
    Pv = np.eye(sh.m) - U @ U.T

    def q_v(th):
        a, b = dy.unpack(th, sh)
        return np.sum((a @ Pv) ** 2) - np.sum((Pv @ b) ** 2)

    assert abs(q_v(moved) - q_v(theta0)) > 1e-3
    assert abs(q_v(back) - q_v(theta0)) < 1e-13 * max(1.0, abs(q_v(theta0)))
    assert dy.loss(ds, back) == pytest.approx(dy.loss(ds, moved), rel=1e-13)
    (A1, B1), (Am, Bm) = dy.unpack(back, sh), dy.unpack(moved, sh)
    np.testing.assert_allclose(A1 @ U, Am @ U, atol=1e-15)  # invisible parts untouched
    np.testing.assert_allclose(U.T @ B1, U.T @ Bm, atol=1e-15)


CASES = [
    ({}, 1.0, 1e-2),
    ({}, -2.0, 1e-1),
    pytest.param({"algorithm": "actor_critic", "d_pi": 2}, 1.0, 1e-2, marks=pytest.mark.slow),  # dense: ~25 s
    ({"shared_features": True}, 1.0, 5e-2),
]


@pytest.mark.parametrize(("kw", "c", "radius"), CASES)
def test_structured_flow_reaches_the_dense_limit(kw, c, radius):
    """Same limit as the dense LSODA to 1e-9 relative (seen: <= 8e-14), (M3) to round-off, (M6) rate
    (:func:`lsa_theory.dynamics.fit_modes`, plus its round-off bound) within 1 % of lambda_min^+ (seen:
    0.9997-1.0000), the (M3) prediction of the scale, PL along the path."""
    ds = _dataset(**kw)
    theta0 = _perturb(dy.construction(ds, c), radius, seed=7)
    dense = dy.gradient_flow(ds, theta0, 1e12, method="LSODA")
    fast = dy.gradient_flow(ds, theta0, 1e12, error_bounds=True)
    assert fast.method == "structured"
    assert dense.converged and fast.converged, fast.message
    U = dy.invisible_directions(ds)
    lim_d, lim_f = (dy.nearest_manifold_point(ds, f.theta_final, U) for f in (dense, fast))
    assert np.linalg.norm(lim_f - lim_d) <= 1e-9 * np.linalg.norm(lim_d)
    assert fast.conserved_drift < 1e-12
    assert abs(fast.c_final / dy.predict_scale(ds, theta0, U) - 1.0) < 1e-9
    rich = dy.richness(ds, fast.theta_final)
    fit = dy.fit_modes(fast.t, fast.loss, fast.loss_err)  # resolved points only; (M6) criterion
    assert fit.n_points >= 100
    assert abs(fit.mu / rich.lambda_min_plus - 1.0) + fit.roundoff < 0.01
    # non-increasing up to the round-off bounds of the two computed losses (seen: every step
    # decreases by more than 0.3 times that bound, also with OPENBLAS_CORETYPE=Haswell)
    assert np.all(np.diff(fast.loss) <= dy.loss_increase_bound(fast))
    # PL: ||grad||^2 >= 2 mu L with mu = lambda_min^+ / 2 (a loose constant), where the loss and the
    # gradient norm are known to 1e-3 (their round-off bounds)
    late = dy.resolved(fast.loss, fast.loss_err) & dy.resolved(fast.grad_norm, fast.grad_err)
    assert late.sum() > 100
    assert np.all(fast.grad_norm[late] ** 2 >= rich.lambda_min_plus * fast.loss[late])
    # the time at which the distance first falls below 1e-6 agrees with the dense path's
    t6 = [f.t[np.argmax(f.dist < 1e-6)] for f in (dense, fast)]
    assert abs(t6[1] / t6[0] - 1.0) < 0.01
    if U.shape[1]:
        sh = dy.shapes(ds)
        (A0, B0), (A1, B1) = dy.unpack(theta0, sh), dy.unpack(fast.theta_final, sh)
        assert np.abs(A1 @ U - A0 @ U).max() < 1e-12 and np.abs(U.T @ B1 - U.T @ B0).max() < 1e-12


def test_factorisation_reuse_reaches_the_same_point():
    ds = _dataset(S=3, A=3, d=4)
    theta0 = _perturb(dy.construction(ds, 1.0), 1e-2, seed=2)

    def rhs(_t, th):
        return -dy.loss_and_grad(ds, th)[1]

    def jac(_t, th):
        return NegHessian(dy.hessian_blocks(ds, th))

    ends = {}
    for reuse in (1.0, 1.6):
        solver = StructuredBDF(rhs, 0.0, theta0, 1e4, rtol=1e-11, atol=1e-14, jac=jac, reuse=reuse)
        while solver.status == "running":
            solver.step()
        ends[reuse] = (solver.y, solver.nlu)
    assert np.linalg.norm(ends[1.0][0] - ends[1.6][0]) < 1e-10 * np.linalg.norm(ends[1.0][0])
    assert ends[1.6][1] < ends[1.0][1]


def test_bad_structured_arguments():
    ds = _dataset(k=2, frames=2)
    theta = dy.construction(ds, 1.0)
    with pytest.raises(ValueError, match="^dist_rtol:"):
        dy.gradient_flow(ds, theta, 1.0, method="LSODA", dist_rtol=1e-6)
    with pytest.raises(ValueError, match="^dist_rtol:"):
        dy.gradient_flow(ds, theta, 1.0, dist_rtol=-1.0)
    with pytest.raises(ValueError, match="^method:"):
        dy.gradient_flow(ds, theta, 1.0, method="dense")


def test_extended_precision_loss():
    from lsa_theory.dynamics.near_kernel import extended_precision_loss

    ds = _dataset(k=3, frames=4)
    theta = _perturb(dy.construction(ds, 1.0), 1e-3, seed=1)
    assert float(extended_precision_loss(ds, theta)) == pytest.approx(dy.loss(ds, theta), rel=1e-12)
    # at the construction only the float64 rounding of the data y is left
    assert float(extended_precision_loss(ds, dy.construction(ds, 1.0))) < 1e-30

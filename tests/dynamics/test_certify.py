"""(M5) with a certified kernel: exact rational / modular arithmetic decides the Hessian kernel
dimension (``lsa_theory.dynamics.certify``), never a threshold; the third (M4) tangent family; the rank
bound."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import lsa_theory.dynamics.certify as dc
from lsa_theory import dynamics as dy


def _dataset(seed=0, **kw):
    return dy.teacher_dataset(dy.TeacherSpec(**kw), np.random.default_rng(seed), keep_prompts=True)


M5_CERTIFIED = [
    (dict(k=20), 1),
    (dict(k=20, features="onehot"), 10),
    (dict(k=20, shared_features=True), 10),
    (dict(k=1, frames=200, shared_features=True), 19),
    (dict(k=1, frames=200, shared_features=True, reward="sas"), 10),
    (dict(k=1, frames=200, shared_features=True, d=3), 1),  # d < S A: one MDP is scaling-only (M7)
    (dict(k=1, frames=200, shared_features=True, d=2), 1),
]


@pytest.mark.parametrize(("kw", "kernel"), M5_CERTIFIED)
def test_certified_kernel_equals_the_tangent(kw, kernel):
    """S = A = 2: the exact kernel dimension is decided and equals the exact (M4) tangent."""
    ds = _dataset(**kw)
    cert = dy.certify_kernel(ds)
    assert cert.certified, cert.reason
    assert cert.lower == cert.upper == cert.ker_dim == kernel
    assert cert.tangent_dim == kernel and cert.kernel_is_tangent
    assert not cert.rank_limited
    # the float64 margin at the certified split is wide at S = A = 2
    assert cert.float_kernel_max < 1e-14 and cert.float_nonzero_min > 1e-12
    assert cert.float_ker_dim == kernel


def test_rank_bound_row_is_certified_above_the_tangent():
    """One MDP, 3 frames: 3 x 4 = 12 residual rows < 81 parameters, so the kernel is at least 69,
    far above every (M4) tangent (which includes the parameter-column blind spot: wt_f spans 3 of 5
    dimensions). The certificate says 69 exactly; (M5) with the (M4) tangent fails, and says why."""
    ds = _dataset(seed=3, k=1, frames=3, shared_features=True)
    cert = dy.certify_kernel(ds)
    assert cert.certified and cert.ker_dim == 69 == cert.size - cert.rows
    assert cert.rank_limited and cert.blind_dim == 2
    assert cert.tangent_dim < 69 and not cert.kernel_is_tangent
    with pytest.warns(RuntimeWarning, match="rank bound: 3 frames x 4 outputs = 12 < 81"):
        rich = dy.richness(ds)
    assert rich.blind_dim == 2 and rich.tangent_dim == cert.tangent_dim


def test_third_tangent_family_is_flat():
    """(M4) parameter-column blind spot: B + x v^T with v^T wt_f = 0 leaves every residual unchanged."""
    ds = _dataset(seed=3, k=1, frames=3, shared_features=True)
    W = dy.parameter_blind_spots(ds)
    assert W.shape == (5, 2) and np.abs(ds.wt @ W).max() < 1e-12
    theta = dy.construction(ds, 1.0)
    A, B = dy.unpack(theta, dy.shapes(ds))
    x = np.random.default_rng(0).standard_normal(B.shape[0])
    assert dy.loss(ds, dy.pack(A, B + np.outer(x, W[:, 0]))) < 1e-28
    T = dy.tangent_space(ds, theta)
    without = dy.tangent_space(ds, theta, W=np.zeros((5, 0)))
    assert T.shape[1] - without.shape[1] == 2 * B.shape[0] - 2 * dy.invisible_directions(ds).shape[1]


@pytest.mark.slow
def test_certified_kernel_at_s3_where_the_threshold_is_wrong():
    """S = A = 3, one MDP, one feature map (361 parameters): float64 eigenvalues run through the
    1e-13 threshold, which counts 41; the exact kernel is 39 = the (M4) tangent (a few seconds)."""
    ds = _dataset(seed=[0, 3], S=3, A=3, k=1, frames=200, shared_features=True)
    cert = dy.certify_kernel(ds)
    assert cert.certified and cert.ker_dim == 39 == cert.tangent_dim
    assert cert.float_ker_dim == 41  # what the threshold would have printed
    assert cert.float_nonzero_min < 1e-14  # a non-zero eigenvalue float64 cannot resolve


def test_a_missing_tangent_vector_leaves_the_kernel_undecided(monkeypatch):
    """Mutation: drop one exact invisible direction; the bounds no longer meet and the row says so."""
    real = dc.exact_null_space
    monkeypatch.setattr(dc, "exact_null_space", lambda rows, *a: real(rows, *a)[1:])
    cert = dy.certify_kernel(_dataset(k=1, frames=200, shared_features=True))
    assert not cert.certified and cert.ker_dim is None
    assert cert.lower < cert.upper == 19 and "not decided" in cert.reason


def test_a_wrong_tangent_vector_is_caught(monkeypatch):
    """Mutation: a vector that is not in the kernel passed off as an invisible direction."""
    monkeypatch.setattr(
        dc, "exact_null_space", lambda rows, *a: [[Fraction(1)] + [Fraction(0)] * (rows.shape[1] - 1)]
    )
    with pytest.raises(RuntimeError, match="not in ker J"):
        dy.certify_kernel(_dataset(k=20))


def test_certify_needs_the_context_columns():
    ds = dy.teacher_dataset(dy.TeacherSpec(k=2, frames=2), np.random.default_rng(0))
    with pytest.raises(ValueError, match="^dataset:"):
        dy.certify_kernel(ds)
    with pytest.raises(ValueError, match="^primes:"):
        dy.certify_kernel(_dataset(k=2, frames=2), primes=(2**31 - 1,))


@settings(deadline=None, max_examples=30)
@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300))
@example(0.2)
@example(-1e-300)
@example(5e-324)
def test_float_residue_is_exact(x):
    p = dc.PRIMES[0]
    f = Fraction(x)
    assert int(dc._float_mod(np.array([x]), p)[0]) == f.numerator % p * pow(f.denominator, -1, p) % p


@settings(deadline=None, max_examples=20)
@given(st.integers(1, 8), st.integers(1, 8), st.integers(0, 8), st.integers(0, 2**32 - 1))
def test_rank_mod_p_matches_the_rank_of_low_rank_integer_matrices(n, m, r, seed):
    rng = np.random.default_rng(seed)
    M = rng.integers(-5, 6, (n, r)) @ rng.integers(-5, 6, (r, m))
    assert dc.rank_mod_p(M, dc.PRIMES[0]) == np.linalg.matrix_rank(M.astype(float))


def test_exact_null_space_of_a_rational_matrix():
    rows = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [0.5, 0.0, -0.25]])
    basis = dc.exact_null_space(rows)
    assert len(basis) == 1
    v = basis[0]
    for r in rows:
        assert sum(Fraction(float(a)) * b for a, b in zip(r, v, strict=True)) == 0

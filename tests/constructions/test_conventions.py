"""Converters to [Ahn]'s and [vO]'s parameterisations reproduce the peers' forward passes (1e-12),
and fail without the transpose / the sign (negative controls)."""

import numpy as np
import pytest

from lsa_theory import masked_lsa
from lsa_theory.constructions import conventions as cv
from lsa_theory.constructions.algorithms.regression import gd, precond_gd, regression_prompt

TOL = 1e-12


def ahn_layer(heads, Z):
    """[Ahn]'s layer as their code writes it: ``Z`` (N+1, d+1) tokens as rows; each head
    ``(P, Q)`` (d, d) embedded as P_full = [[P, 0], [0, 1]], Q_full = [[Q, 0], [0, 0]];
    ``Z + sum_h (1/N) Attn A K``, ``Attn = Z Q_full Z^T``, ``K = Z P_full^T``, ``A = diag(I_N, 0)``."""
    N, d = Z.shape[0] - 1, Z.shape[1] - 1
    A = np.eye(N + 1)
    A[N, N] = 0.0
    out = Z.copy()
    for P, Q in heads:
        P_full = np.zeros((d + 1, d + 1))
        P_full[:d, :d] = P
        P_full[d, d] = 1.0
        Q_full = np.zeros((d + 1, d + 1))
        Q_full[:d, :d] = Q
        attn = np.einsum("ni,ij,mj->nm", Z, Q_full, Z)
        key = np.einsum("ij,nj->ni", P_full, Z)
        out = out + np.einsum("nm,ml,li->ni", attn, A, key) / N
    return out


def vo_layer(W_K, W_Q, W_V, P_vo, E):
    """[vO]'s Prop. 1 layer: ``e_j + P_vO sum_{i<=N} (W_V e_i)(W_K e_i)^T (W_Q e_j)``, columns."""
    N = E.shape[1] - 1
    out = E.copy()
    for j in range(N + 1):
        acc = np.zeros(E.shape[0])
        for i in range(N):
            acc += (W_V @ E[:, i]) * ((W_K @ E[:, i]) @ (W_Q @ E[:, j]))
        out[:, j] += P_vo @ acc
    return out


def _prompt(rng, d=4, N=7):
    X, w, xq = rng.standard_normal((N, d)), rng.standard_normal(d), rng.standard_normal(d)
    return regression_prompt(X, X @ w, xq), X, w, xq


def _rel(a, b):
    return np.max(np.abs(a - b)) / max(1.0, np.max(np.abs(b)))


@pytest.mark.parametrize("seed", range(5))
def test_ahn_forward_matches_and_needs_the_transpose(seed):
    rng = np.random.default_rng(seed)
    E, *_ = _prompt(rng)
    d = E.shape[0] - 1
    P_a, Q_a = rng.standard_normal((d, d)), rng.standard_normal((d, d))  # non-symmetric
    assert np.abs(Q_a - Q_a.T).max() > 0.1
    P, Q = cv.from_ahn(P_a, Q_a)
    ref = ahn_layer([(P_a, Q_a)], E.T).T
    assert _rel(masked_lsa(E, P, Q), ref) < TOL
    # two heads add
    P2_a, Q2_a = rng.standard_normal((d, d)), rng.standard_normal((d, d))
    P2, Q2 = cv.from_ahn(P2_a, Q2_a)
    two = masked_lsa(E, P, Q) + masked_lsa(E, P2, Q2) - E
    assert _rel(two, ahn_layer([(P_a, Q_a), (P2_a, Q2_a)], E.T).T) < TOL
    # round trip
    back = cv.to_ahn(P, Q)
    assert np.array_equal(back[0], P_a) and np.array_equal(back[1], Q_a)
    # negative control: without the transpose the forward pass is different
    P_bad = P.copy()
    Q_bad = np.zeros_like(Q)
    Q_bad[:d, :d] = Q_a
    assert _rel(masked_lsa(E, P_bad, Q_bad), ref) > 1e-3


@pytest.mark.parametrize("seed", range(5))
def test_ahn_lemma1_is_precond_gd_of_the_transpose(seed):
    rng = np.random.default_rng(100 + seed)
    E, X, w, xq = _prompt(rng)
    d = E.shape[0] - 1
    A = 0.5 * np.eye(d) + 0.3 * rng.standard_normal((d, d))
    ((P, Q),) = precond_gd([A.T])
    P_a, Q_a = cv.from_ahn(np.zeros((d, d)), -A)
    assert np.array_equal(P, P_a) and np.array_equal(Q, Q_a)
    out = ahn_layer([(np.zeros((d, d)), -A)], E.T)
    # their prediction: sign * Z_out[N, d] is one preconditioned GD step w_1 = A grad-descent
    w1 = -A @ (X.T @ (X @ np.zeros(d) - X @ w) / X.shape[0])
    pred = cv.AHN_PREDICTION_SIGN * out[-1, -1]
    assert abs(pred - xq @ w1) < TOL * max(1.0, abs(xq @ w1))
    # negative controls: precond_gd([A]) (no transpose) and the (R2) sign both miss
    ((P0, Q0),) = precond_gd([A])
    assert _rel(masked_lsa(E, P0, Q0), out.T) > 1e-3
    assert abs(out[-1, -1] - xq @ w1) > 1e-3


@pytest.mark.parametrize("seed", range(5))
def test_von_oswald_forward_matches_and_needs_the_sign(seed):
    rng = np.random.default_rng(200 + seed)
    E, X, w, xq = _prompt(rng)
    D, N = E.shape[0], E.shape[1] - 1
    W_K, W_Q, W_V, P_vo = (rng.standard_normal((D, D)) for _ in range(4))
    P, Q = cv.from_von_oswald(W_K, W_Q, W_V, P_vo, N)
    ref = vo_layer(W_K, W_Q, W_V, P_vo, E)
    assert _rel(masked_lsa(E, P, Q), ref) < TOL
    # the canonical factorisation of our (P, Q) gives the same pass
    h = cv.to_von_oswald(P, Q, N)
    assert _rel(vo_layer(h["W_K"], h["W_Q"], h["W_V"], h["P_vo"], E), ref) < TOL
    # negative control: W_K W_Q^T (transpose on the wrong factor) misses
    assert _rel(masked_lsa(E, P, W_K @ W_Q.T), ref) > 1e-3


@pytest.mark.parametrize("seed", range(5))
def test_von_oswald_gd_weights_are_r2_with_the_opposite_sign(seed):
    rng = np.random.default_rng(300 + seed)
    E, X, w, xq = _prompt(rng)
    d, N, eta = E.shape[0] - 1, E.shape[1] - 1, 0.7
    Ix = np.zeros((d + 1, d + 1))
    Ix[:d, :d] = np.eye(d)
    W_V = np.zeros((d + 1, d + 1))
    W_V[d, d] = -1.0  # W_0 = 0
    out = vo_layer(Ix, Ix, W_V, eta / N * np.eye(d + 1), E)
    gd_pred = xq @ (eta * X.T @ (X @ w) / N)
    assert abs(cv.VO_PREDICTION_SIGN * out[-1, -1] - gd_pred) < TOL * max(1.0, abs(gd_pred))
    P, Q = cv.from_von_oswald(Ix, Ix, W_V, eta / N * np.eye(d + 1), N)
    P_r2, Q_r2 = gd(d, eta)
    assert _rel(P, -eta * P_r2) < TOL and _rel(Q, Q_r2 / eta) < TOL  # P = -eta e e^T, Q = I_x
    # (R2) reads +E_out[-1, -1]; read with vO's sign it is minus the prediction (negative control)
    r2 = masked_lsa(E, P_r2, Q_r2)[-1, -1]
    assert abs(r2 - gd_pred) < TOL * max(1.0, abs(gd_pred))
    assert abs(cv.VO_PREDICTION_SIGN * r2 - gd_pred) > 1e-3


def test_converter_inputs():
    with pytest.raises(ValueError, match="Q_ahn"):
        cv.from_ahn(np.eye(3), np.eye(2))
    with pytest.raises(ValueError, match="Ahn"):
        cv.to_ahn(np.eye(4), np.eye(4))
    with pytest.raises(ValueError, match="W_V"):
        cv.from_von_oswald(np.eye(3), np.eye(3), np.eye(2), np.eye(3), 5)
    with pytest.raises(ValueError, match="N"):
        cv.to_von_oswald(np.eye(3), np.eye(3), 0)

"""Converters to [W]'s InContextTD parameterisation (theory.md §5, (W3)-(W7)) reproduce their
forward passes, and fail without the transpose / the sign / their running-mean mask (negative
controls).

[W]'s layers are written below as their code defines them (``experiment/model.py`` LinearAttention,
``verification/model.py`` DiscoutedTDLayer, RGLayer, AVGREWTDLayer; their TD loops in
``verification/prompt.py``), in numpy, evaluated in their order (``P @ Z @ M @ Z.T @ Q @ Z``).

Float comparisons (random Gaussian inputs, every entry of ``Z`` random, non-symmetric ``C``, ``P``,
``Q``): each side is within Higham's bound ``gamma_K (|Z| + |s| |A_1| ... |A_k|)`` of the exact layer
(``K`` the sum of the inner dimensions of the longest product plus the scalar operations, ``s`` the
scalar ``alpha / n``), so the two differ by at most twice that, entrywise; the tests assert it and that
the bound is below 1e-12 relative. Readout and TD-step checks run in exact rational arithmetic
(:class:`fractions.Fraction`, inputs small dyadic rationals, exact in float64 too): equalities, no
tolerance. Negative controls must miss by more than 1e-3 (relative).
"""

from fractions import Fraction
from functools import reduce

import numpy as np
import pytest

from lsa_theory import masked_lsa, trace_mask
from lsa_theory.constructions import conventions as cv
from lsa_theory.constructions import numeric
from lsa_theory.constructions.algorithms.residual_gradient import residual_gradient
from lsa_theory.constructions.algorithms.td_average_reward import average_reward_layer, td_average_reward
from lsa_theory.constructions.symbolic import exact_masked_block
from lsa_theory.roundoff import gamma

MISS = 1e-3  # a negative control must miss by more than this (relative)
REL = 1e-12  # the round-off bound, relative to the largest entry, must be below this


# ------------------------------------------------------------------ [W]'s code, as they write it


def stack_four(A, B, C, D):
    return np.block([[A, B], [C, D]])


def w_mask(n, lmbd):
    """Their eligibility-trace mask (LinearAttention, DiscoutedTDLayer): ``M = eye(n+1)``,
    ``M[row, col] = lmbd * M[row-1, col]`` for ``col < row < n``, ``M[-1, -1] = 0``."""
    M = np.eye(n + 1, dtype=object if isinstance(lmbd, Fraction) else float)
    if isinstance(lmbd, Fraction):
        M = M * Fraction(1)
    for col in range(n):
        for row in range(col + 1, n):
            M[row, col] = lmbd * M[row - 1, col]
    M[-1, -1] = 0
    return M


def w_td_weights(d, C):
    """DiscoutedTDLayer's ``(P, Q)`` with preconditioner ``C`` (their code: ``C = I``; their
    earlier scripts: ``C = randn``)."""
    P = np.zeros((2 * d + 1, 2 * d + 1))
    P[-1, -1] = 1
    I, O = np.eye(d), np.zeros((d, d))
    M1 = stack_four(-I, I, O, O)
    B = stack_four(C.T, O, O, O)
    Q = np.zeros_like(P)
    Q[: 2 * d, : 2 * d] = B @ M1
    return P, Q


def w_rg_weights(d, C):
    """RGLayer's ``(P, Q)``: ``A = M2^T B M1``, ``M2 = -M1``."""
    P, _ = w_td_weights(d, C)
    I, O = np.eye(d), np.zeros((d, d))
    M1 = stack_four(-I, I, O, O)
    M2 = -M1
    B = stack_four(C.T, O, O, O)
    Q = np.zeros_like(P)
    Q[: 2 * d, : 2 * d] = M2.T @ B @ M1
    return P, Q


def w_layer(Z, P, Q, M, alpha=1.0):
    """``Z + alpha / n * P @ Z @ M @ Z.T @ Q @ Z``."""
    n = Z.shape[1] - 1
    return Z + alpha / n * P @ Z @ M @ Z.T @ Q @ Z


def w_avg_weights(d, n, C):
    """AVGREWTDLayer's ``P1, P2, R, M, Q, W``."""
    D = 2 * d + 2
    P1 = np.zeros((D, D))
    P1[-2, -2] = 1
    P2 = np.zeros((D, D))
    P2[-1, -1] = 1
    s = np.triu(np.ones((n + 1, n + 1)))
    diag = np.diag([1 / k for k in range(1, n + 2)])
    R = s @ diag - np.eye(n + 1)
    M = np.eye(n + 1)
    M[-1, -1] = 0
    I, O = np.eye(d), np.zeros((d, d))
    M1 = stack_four(-I, I, O, O)
    B = stack_four(C.T, O, O, O)
    Q = np.zeros((D, D))
    Q[: 2 * d, : 2 * d] = B @ M1
    W = np.zeros((D, 2 * D))
    W[-1, 2 * d] = 1
    W[-1, -1] = 1
    return P1, P2, R, M, Q, W


def w_avg_layer(Z, P1, P2, R, M, Q, W, alpha=1.0):
    """``Z + alpha / n * W @ concat(P1 Z R M Z^T Q Z, P2 Z M Z^T Q Z)``."""
    n = Z.shape[1] - 1
    head1 = P1 @ Z @ R @ M @ Z.T @ Q @ Z
    head2 = P2 @ Z @ M @ Z.T @ Q @ Z
    return Z + alpha / n * W @ np.concatenate([head1, head2], axis=0)


def w_td_update(phi, phi_prime, r, w, C, lmbd, alpha):
    """Their ``Prompt.td_update``: one batch TD(lambda) step ``w += C u``; returns ``w``, value."""
    d, n = phi.shape[0], phi.shape[1] - 1
    u, e = np.zeros(d, dtype=object), np.zeros(d, dtype=object)
    for i in range(n):
        tde = r[i] + w @ phi_prime[:, i] - w @ phi[:, i]
        e = lmbd * e + phi[:, i]
        u = u + tde * e
    u = u * alpha / n
    w = w + C @ u
    return w, w @ phi[:, -1]


def w_avg_rew_td_update(phi, phi_prime, r, w, C, alpha):
    """Their ``Prompt.avg_rew_td_update`` with ``r_bar[i] = mean(r[:i+1])``."""
    d, n = phi.shape[0], phi.shape[1] - 1
    r_bar = [sum(r[: i + 1]) / (i + 1) for i in range(n)]
    u = np.zeros(d, dtype=object)
    for i in range(n):
        tde = r[i] - r_bar[i] + w @ phi_prime[:, i] - w @ phi[:, i]
        u = u + tde * phi[:, i]
    u = u * alpha / n
    w = w + C @ u
    return w, w @ phi[:, -1]


# ------------------------------------------------------------------------------------ helpers


def _abs_chain(*mats):
    return reduce(np.matmul, [np.abs(A) for A in mats])


def _bound(K, Z, chain):
    """Twice Higham's ``gamma_K (|Z| + chain)``: the largest difference of two evaluations."""
    return 2 * gamma(K) * (np.abs(Z) + chain)


def _assert_within(ours, theirs, bound, rel=REL):
    """Entrywise within the round-off ``bound``, and the bound itself below ``rel`` relative to the
    largest entry (so the comparison resolves that much; measured differences are ~1e-16)."""
    diff = np.abs(ours - theirs)
    assert np.all(diff <= bound), f"difference {diff.max():.3e} above the round-off bound"
    assert bound.max() / np.abs(theirs).max() < rel, f"bound {bound.max():.2e} is not below {rel} relative"


def _rel(a, b):
    return np.max(np.abs(a - b)) / max(1.0, np.max(np.abs(b)))


def _frac(A):
    """Exact rationals of a float array (exact: every float is a dyadic rational)."""
    return np.vectorize(Fraction, otypes=[object])(np.asarray(A, dtype=float))


def _dyadic(rng, shape, top=7, den=4):
    """Random small dyadic rationals ``k / den``, ``1 <= |k| <= top`` (exact in float64; no zeros,
    so that no value is zero by a coincidence of the draw)."""
    k = rng.integers(1, top + 1, size=shape)
    return np.where(rng.random(shape) < 0.5, -k, k) / den


def _nonsymmetric(rng, d):
    C = _dyadic(rng, (d, d), top=3)
    while np.abs(C - C.T).max() < 0.5:
        C = _dyadic(rng, (d, d), top=3)
    return C


def _w1_prompt(rng, d, n, gamma_=0.5, exact=False):
    """Their verification prompt ``[phi; gamma phi'; r]``, query ``[phi(s); 0; 0]`` (D, n+1)."""
    if exact:
        phi, phi_p, r = _dyadic(rng, (d, n + 1)), _dyadic(rng, (d, n + 1)), _dyadic(rng, n + 1)
    else:
        phi, phi_p, r = (
            rng.standard_normal((d, n + 1)),
            rng.standard_normal((d, n + 1)),
            rng.standard_normal(n + 1),
        )
    phi_p[:, -1], r[-1] = 0, 0
    return phi, gamma_ * phi_p, r


# ------------------------------------------------------------------ discounted: (W3)-(W6)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("lmbd", [0.0, 0.5, 0.9])
def test_w_layer_is_our_block_through_the_converter(seed, lmbd):
    """LinearAttention / DiscoutedTDLayer with any ``(P_W, Q_W, alpha)`` and their mask is our
    masked block with ``from_incontexttd`` and ``trace_mask(n, lmbd)`` (not its transpose), on a
    random ``Z`` (every entry), random non-symmetric ``P_W, Q_W``."""
    rng = np.random.default_rng(seed)
    d, n = 3, 8
    D = 2 * d + 1
    Z = rng.standard_normal((D, n + 1))
    P_w, Q_w = rng.standard_normal((D, D)), rng.standard_normal((D, D))
    alpha = float(rng.uniform(0.1, 1.0))
    M_w = w_mask(n, lmbd)
    # their mask is ours up to the rounding of lmbd**k (k <= n products against one power)
    assert np.all(np.abs(M_w - trace_mask(n, lmbd)) <= gamma(n + 1) * np.abs(M_w))
    theirs = w_layer(Z, P_w, Q_w, M_w, alpha)
    P, Q = cv.from_incontexttd(P_w, Q_w, alpha)
    ours = masked_lsa(Z, P, Q, mask=trace_mask(n, lmbd))
    K = 3 * D + 3 * (n + 1) + 8 + n  # inner dimensions, scalar ops, the mask's rounding
    _assert_within(ours, theirs, _bound(K, Z, abs(alpha) / n * _abs_chain(P_w, Z, M_w, Z.T, Q_w, Z)))
    # round trip (alpha = 1)
    back = cv.to_incontexttd(*cv.from_incontexttd(P_w, Q_w))
    assert np.array_equal(back[0], P_w) and np.array_equal(back[1], Q_w)
    # negative controls: [Ahn]'s transpose of Q, the transposed mask (lmbd > 0), alpha dropped
    assert _rel(masked_lsa(Z, P, Q.T, mask=trace_mask(n, lmbd)), theirs) > MISS
    if lmbd > 0:
        assert _rel(masked_lsa(Z, P, Q, mask=trace_mask(n, lmbd).T), theirs) > MISS
    assert _rel(masked_lsa(Z, P_w, Q_w, mask=trace_mask(n, lmbd)), theirs) > MISS


@pytest.mark.parametrize("seed", range(3))
def test_w_hardcoded_weights_are_our_constructions(seed):
    """Their hard-coded TD layer with ``C`` is (W4) ``td_precond(d, alpha, C)`` (their ``C`` is our
    ``C_l``, the transpose inside ``Q`` in both codes); ``C = I`` is (W3); their RG layer with
    ``C = I`` is (W6). Negative control: ``td_precond(d, alpha, C^T)`` misses on a (W1) prompt."""
    rng = np.random.default_rng(10 + seed)
    d, n, alpha = 3, 8, 0.375
    C = _nonsymmetric(rng, d)
    P, Q = cv.from_incontexttd(*w_td_weights(d, C), alpha)
    P4, Q4 = numeric.td_precond(d, alpha, C)
    assert np.array_equal(P, P4) and np.array_equal(Q, Q4)
    P3, Q3 = cv.from_incontexttd(*w_td_weights(d, np.eye(d)), alpha)
    assert all(np.array_equal(a, b) for a, b in zip((P3, Q3), numeric.td(d, alpha), strict=True))
    P6, Q6 = cv.from_incontexttd(*w_rg_weights(d, np.eye(d)), alpha)
    assert all(np.array_equal(a, b) for a, b in zip((P6, Q6), residual_gradient(d, alpha), strict=True))
    # their RG layer with a random C is our block through the converter (float, round-off bound)
    phi, phi_p, r = _w1_prompt(rng, d, n, 0.9)
    Z = np.vstack([phi, phi_p, r[None]])
    Prg, Qrg = w_rg_weights(d, rng.standard_normal((d, d)))
    M = w_mask(n, 0.0)
    theirs = w_layer(Z, Prg, Qrg, M, alpha)
    K = 3 * (2 * d + 1) + 3 * (n + 1) + 8
    ours = masked_lsa(Z, *cv.from_incontexttd(Prg, Qrg, alpha))
    _assert_within(ours, theirs, _bound(K, Z, alpha / n * _abs_chain(Prg, Z, M, Z.T, Qrg, Z)))
    # negative control: C instead of C^T in Q
    ref = w_layer(Z, *w_td_weights(d, C), M, alpha)
    assert _rel(masked_lsa(Z, *numeric.td_precond(d, alpha, C.T)), ref) > MISS


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("lmbd", [Fraction(0), Fraction(1, 2)])
def test_w_discounted_readout_is_minus_the_last_entry_exactly(seed, lmbd):
    """Exact: their L = 3 stack of TD(lambda) layers with a random ``C_l`` per layer reads
    ``-Z_l[-1, -1] = w_l^T phi(s)`` of their TD loop after every layer, and so does ours through the
    converter (equal prompts: the same layout); ``+Z_l[-1, -1]`` misses."""
    rng = np.random.default_rng(20 + seed)
    d, n, alpha, L = 2, 4, Fraction(1, 2), 3
    phi, phi_p, r = (_frac(a) for a in _w1_prompt(rng, d, n, exact=True))
    Z_w = np.vstack([phi, phi_p, r[None]])
    Z = Z_w.copy()
    w = np.zeros(d, dtype=object) * Fraction(1)
    M_w = w_mask(n, lmbd)
    mask = _frac(trace_mask(n, float(lmbd)))  # powers of 1/2: exact in float64
    assert np.array_equal(M_w, mask)
    for _ in range(L):
        C = _nonsymmetric(rng, d)
        P_w, Q_w = w_td_weights(d, C)
        Z_w = w_layer(Z_w, _frac(P_w), _frac(Q_w), M_w, alpha)
        P, Q = cv.from_incontexttd(P_w, Q_w, float(alpha))  # dyadic: exact in float64
        Z = exact_masked_block(Z, _frac(P), _frac(Q), mask)
        w, v = w_td_update(phi, phi_p, r, w, _frac(C), lmbd, alpha)
        assert np.array_equal(Z, Z_w)
        assert cv.INCONTEXTTD_PREDICTION_SIGN * Z_w[-1, -1] == v
        assert abs(-cv.INCONTEXTTD_PREDICTION_SIGN * Z_w[-1, -1] - v) > MISS * max(1, abs(v))


# ------------------------------------------------------------------- average reward: (W7)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("weights", ["their default", "random"])
def test_w_average_reward_layer_is_ours_through_the_converter(seed, weights):
    """AVGREWTDLayer (their default: ``C`` random; or every matrix random) on a random ``Z`` (every
    entry, the last row too) is ``flip_value_row`` of our two-head layer on ``flip_value_row(Z)``
    with the converted heads. Negative controls: no flip, and their head with our running-mean mask
    ``N`` in place of ``R M`` (``R M = -N``)."""
    rng = np.random.default_rng(30 + seed)
    d, n = 3, 8
    D = 2 * d + 2
    Z = rng.standard_normal((D, n + 1))
    alpha = float(rng.uniform(0.1, 1.0))
    P1, P2, R, M, Q_w, W = w_avg_weights(d, n, rng.standard_normal((d, d)))
    if weights == "random":
        P1, P2, Q_w = (rng.standard_normal((D, D)) for _ in range(3))
        W = rng.standard_normal((D, 2 * D))
    theirs = w_avg_layer(Z, P1, P2, R, M, Q_w, W, alpha)
    heads = cv.from_incontexttd_average_reward(P1, P2, W, Q_w, alpha)
    ours = cv.flip_value_row(average_reward_layer(cv.flip_value_row(Z), heads))
    chain = np.concatenate([_abs_chain(P1, Z, R, M, Z.T, Q_w, Z), _abs_chain(P2, Z, M, Z.T, Q_w, Z)])
    K = 5 * D + 3 * (n + 1) + 12  # inner dimensions (W @ heads, W_1 P1), scalar ops, mask rounding
    # fully random heads cancel more: their bound reaches 1.4e-12 relative (seed 30), so 1e-11 there
    rel = REL if weights == "their default" else 10 * REL
    _assert_within(ours, theirs, _bound(K, Z, alpha / n * _abs_chain(W) @ chain), rel)
    # their mask is minus ours: R M = -N up to the rounding of 1/k and one subtraction
    N = numeric.running_mean_mask(n)
    assert np.all(np.abs(R @ M + N) <= 2 * gamma(2) * np.abs(N))
    # round trip through [W]'s parameterisation (alpha = 1)
    back = cv.to_incontexttd_average_reward(heads)
    again = w_avg_layer(Z, back["P1"], back["P2"], R, M, back["Q_w"], back["W"])
    assert _rel(again, theirs) < 1e-12
    # negative controls
    assert _rel(average_reward_layer(Z, heads), theirs) > MISS  # no value-row flip
    assert _rel(w_avg_layer(Z, P1, P2, N, np.eye(n + 1), Q_w, W, alpha), theirs) > MISS  # our N for R M


@pytest.mark.parametrize("seed", range(3))
def test_w_average_reward_readout_and_steps_exactly(seed):
    """Exact: their L = 3 AVGREWTDTransformer (a random ``C_l`` per layer, their default) reads
    ``+Z_l[-1, -1] = w_l^T phi(s)`` of their average-reward TD loop after every layer; ours through
    the converter holds ``flip_value_row(Z_l)`` (minus their value row) and reads ``-Z[-1, -1]``.
    With ``C = I`` the converted heads are :func:`td_average_reward`. Negative controls: their
    readout with our sign, and our reward head with their sign (no flip) both miss."""
    rng = np.random.default_rng(40 + seed)
    d, n, alpha, L = 2, 4, 0.5, 3
    phi, phi_p, r = (_frac(a) for a in _w1_prompt(rng, d, n, gamma_=1.0, exact=True))
    Z_w = np.vstack([phi, phi_p, r[None], np.zeros((1, n + 1), dtype=int) * Fraction(1)])
    Z = _frac(cv.flip_value_row(Z_w.astype(float)))  # the same prompt
    assert np.array_equal(Z, Z_w)
    Z_bad = Z.copy()
    w = np.zeros(d, dtype=object) * Fraction(1)
    N = numeric.running_mean_mask(n, exact=True)
    M = np.diag([1] * n + [0]).astype(object)
    P1, P2, _, _, _, W = w_avg_weights(d, n, np.eye(d))
    s = np.triu(np.ones((n + 1, n + 1), dtype=int)).astype(object)  # their R, in exact rationals
    R = s @ np.diag([Fraction(1, k) for k in range(1, n + 2)]) - np.eye(n + 1, dtype=int)
    for _ in range(L):
        C = _nonsymmetric(rng, d)
        *_, Q_w, _ = w_avg_weights(d, n, C)
        Z_w = w_avg_layer(Z_w, _frac(P1), _frac(P2), R, M, _frac(Q_w), _frac(W), Fraction(alpha))
        (P_r, Q_r), (P_v, Q_v) = cv.from_incontexttd_average_reward(P1, P2, W, Q_w, alpha)
        P_r, Q_r, P_v, Q_v = (_frac(A) for A in (P_r, Q_r, P_v, Q_v))
        Z = exact_masked_block(Z, P_v, Q_v, M) + (exact_masked_block(Z, P_r, Q_r, N) - Z)
        Z_bad = exact_masked_block(Z_bad, P_v, Q_v, M) + (exact_masked_block(Z_bad, -P_r, Q_r, N) - Z_bad)
        w, v = w_avg_rew_td_update(phi, phi_p, r, w, _frac(C), Fraction(alpha))
        assert cv.INCONTEXTTD_AVERAGE_REWARD_PREDICTION_SIGN * Z_w[-1, -1] == v
        assert np.array_equal(Z[:-1], Z_w[:-1]) and np.array_equal(Z[-1], -Z_w[-1])
        assert -Z[-1, -1] == v
        assert abs(-cv.INCONTEXTTD_AVERAGE_REWARD_PREDICTION_SIGN * Z_w[-1, -1] - v) > MISS * max(1, abs(v))
        assert abs(-Z_bad[-1, -1] - v) > MISS * max(1, abs(v))
    heads = cv.from_incontexttd_average_reward(P1, P2, W, w_avg_weights(d, n, np.eye(d))[4], alpha)
    ref = td_average_reward(d, alpha)
    assert all(
        np.array_equal(a, b) for h, g in zip(heads, ref, strict=True) for a, b in zip(h, g, strict=True)
    )


def test_w_average_reward_draft_with_a_mean_row_precomputes_it():
    """Their deleted draft (``theory_verification/avg_reward_in_context_td.py``): one head, prompt
    ``[phi; phi'; r; rbar; 0]`` (2d+3 rows: the running mean precomputed outside the model, in a
    prompt row), ``P[-3:, -3:] = [[1, 0, 0], [0, 1, 0], [-1, 1, 0]]``. Exact, L = 3 layers with a
    random ``C_l`` each: the rows ``r - rbar`` carry the TD errors and the last row is ``(r - rbar)_0``
    minus them, so ``+Z_l[-1, -1] = w_l^T phi(s)`` after every layer. Negative controls: the readout
    with our sign, and the prompt with its mean row zeroed (plain TD errors, no mean) miss. Their
    kept (W7) layer (above) computes the mean in the model, through the mask ``R``."""
    rng = np.random.default_rng(50)
    d, n, alpha = 2, 4, Fraction(1, 2)
    phi, phi_p, r = (_frac(a) for a in _w1_prompt(rng, d, n, gamma_=1.0, exact=True))
    r_bar = np.array([sum(r[: i + 1]) / (i + 1) for i in range(n)] + [Fraction(0)], dtype=object)
    zero = np.zeros(n + 1, dtype=int).astype(object) * Fraction(1)
    Z = np.vstack([phi, phi_p, r[None], r_bar[None], zero[None]])
    Z_no_mean = np.vstack([phi, phi_p, r[None], zero[None], zero[None]])
    D = 2 * d + 3
    P = np.zeros((D, D))
    P[-3:, -3:] = [[1, 0, 0], [0, 1, 0], [-1, 1, 0]]
    M = np.diag([1] * n + [0]).astype(object)
    I, O = np.eye(d), np.zeros((d, d))
    w = np.zeros(d, dtype=object) * Fraction(1)
    for _ in range(3):
        C = _nonsymmetric(rng, d)
        Q = np.zeros((D, D))
        Q[: 2 * d, : 2 * d] = stack_four(C.T, O, O, O) @ stack_four(-I, I, O, O)
        Z = w_layer(Z, _frac(P), _frac(Q), M, alpha)
        Z_no_mean = w_layer(Z_no_mean, _frac(P), _frac(Q), M, alpha)
        w, v = w_avg_rew_td_update(phi, phi_p, r, w, _frac(C), alpha)
        assert Z[-1, -1] == v
        assert abs(-Z[-1, -1] - v) > MISS * max(1, abs(v))
        assert abs(Z_no_mean[-1, -1] - v) > MISS * max(1, abs(v))


def test_incontexttd_converter_inputs():
    with pytest.raises(ValueError, match="Q_w"):
        cv.from_incontexttd(np.eye(3), np.eye(2))
    with pytest.raises(ValueError, match="alpha"):
        cv.from_incontexttd(np.eye(3), np.eye(3), float("nan"))
    with pytest.raises(ValueError, match="W"):
        cv.from_incontexttd_average_reward(np.eye(4), np.eye(4), np.eye(4), np.eye(4))
    with pytest.raises(ValueError, match="shares one Q"):
        cv.to_incontexttd_average_reward(((np.eye(4), np.eye(4)), (np.eye(4), 2 * np.eye(4))))
    with pytest.raises(ValueError, match="heads"):
        cv.to_incontexttd_average_reward((np.eye(4),))
    with pytest.raises(ValueError, match="Z"):
        cv.flip_value_row(np.ones(3))

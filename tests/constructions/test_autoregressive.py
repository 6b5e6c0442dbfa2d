"""In-context autoregressive learning, docs/theory.md §9: the process (AR1), the tokens (AR2), the
causal pass (AR3) and the GD-class construction (AR4)/(AR5) at every position and all at once.

Tolerance: each prediction entry is a sum of ``O(t d^3)`` products of ``O(1)`` numbers, so its
float64 round-off is a few ulps times ``t d^3`` (``12 * 216 * 2.2e-16 = 5.8e-13`` at the largest
size here, far above what is observed, ~1e-15); ``READOUT_TOL = 1e-12`` relative to
``max(1, max|ref|)``, as derive's rows. A 1 % error in any entry is 10^10 times larger."""

from __future__ import annotations

import numpy as np
import pytest

import lsa_theory as lt
from lsa_theory import autoregressive as ar
from lsa_theory import constructions
from lsa_theory.constructions import derive
from lsa_theory.constructions.algorithms import autoregressive as arc

ALG = constructions.ALGORITHMS["gd_autoregressive"]
TOL = derive.READOUT_TOL


def _instance(d, T, seed):
    inst = arc.ar_instance(d, T, np.random.default_rng(seed))
    return inst["s"], inst["hyper"]["A"], inst["hyper"]["B"]


def _per_position(s, A, B):
    """(AR3) position by position: (W2) on ``Z_t = [e_1..e_t | e_t]``, first d entries of the query
    column, and the largest change of the middle and last blocks of every column."""
    d, T = s.shape[1], s.shape[0] - 1
    E = ar.augmented_tokens(s)
    P, Q = arc.gd_class(A, B)
    preds, inv = [], 0.0
    for t in range(1, T + 1):
        Z = ar.position_prompt(E, t)
        out = lt.masked_lsa(Z, P, Q)
        preds.append(out[:d, -1])
        inv = max(inv, float(np.abs(out[d:] - Z[d:]).max()))
    return np.array(preds), inv


def _naive(s, A, B, transpose_B=False):
    Bn = B.T if transpose_B else B
    T = s.shape[0] - 1
    return np.array([arc.naive_gd_step(s.tolist(), A.tolist(), Bn.tolist(), t) for t in range(1, T + 1)])


def _rel(a, b):
    return derive.relative_residual(np.ravel(a), np.ravel(b))


@pytest.mark.parametrize(("d", "T"), [(1, 12), (2, 5), (3, 12), (4, 1), (6, 12)])
def test_every_position_and_the_causal_pass_are_one_gd_step(d, T):
    """(AR5): per position and in one causal pass, against the loops, relative error <= 1e-12;
    the middle and last blocks of every column change by exactly 0 (non-orthogonal W, random A, B)."""
    errs = []
    for seed in range(3):
        s, A, B = _instance(d, T, seed)
        ref = _naive(s, A, B)
        per, inv = _per_position(s, A, B)
        E = ar.augmented_tokens(s)
        out = lt.causal_lsa(E, *arc.gd_class(A, B))
        errs += [_rel(per, ref), _rel(out[:d].T, ref), _rel(arc.gd_predictions(s, A, B), ref)]
        assert inv == 0.0
        assert np.abs(out[d:] - E[d:]).max() == 0.0
    assert max(errs) <= TOL, errs


def test_a_transposed_b_fails_every_check():
    """The mutation ``B -> B^T`` of (AR5): the loops with ``B^T`` disagree with the construction by
    far more than the tolerance, per position, in the causal pass and in the sympy identity."""
    s, A, B = _instance(3, 8, 0)
    per, _ = _per_position(s, A, B)
    assert _rel(per, _naive(s, A, B, transpose_B=True)) > 1e-4
    bad = type(ALG)()
    bad.construction = lambda sizes, hyper, c=1.0, depth=1: [arc.gd_class(hyper["A"], hyper["B"].T)]
    sizes = ALG.sizes(quick=True)
    assert derive.residuals(bad, ALG.draw(sizes, np.random.default_rng(1)), sizes).readout > 1e-4
    assert not derive.prove(bad).holds


def test_a_dropped_one_over_t_fails():
    """Without the per-position ``1/t`` (one fixed norm ``1/T`` for every column, as a plain masked
    pass over the whole sequence would use) the causal pass is not the GD step at t < T."""
    s, A, B = _instance(2, 6, 3)
    E = ar.augmented_tokens(s)
    P, Q = arc.gd_class(A, B)
    T = E.shape[1]
    C = np.triu(np.ones((T, T))) / T
    out = E + P @ (E @ (C * (E.T @ Q @ E)))
    assert _rel(out[:2].T, _naive(s, A, B)) > 1e-3


def test_only_two_blocks_reach_the_prediction():
    """(AR3): for a random dense (P, Q), the causal pass's first d rows equal ``V S_t K z_t`` with
    ``V = P[:d, d:3d]``, ``K = Q[d:3d, d:3d]``; the blocks outside do not enter (changing them
    leaves the prediction unchanged to round-off)."""
    rng = np.random.default_rng(5)
    d, T = 2, 9
    seq = ar.rotation_sequences(1, d, T, rng)
    s = seq.s[0, : T + 1]
    E = ar.augmented_tokens(s)
    P, Q = rng.standard_normal((2, 3 * d, 3 * d)) / 3
    V, K = arc.blocks_of(P, Q)
    shat = arc.causal_predictions(E[d:], V, K)
    assert _rel(lt.causal_lsa(E, P, Q)[:d].T, shat) <= TOL
    P2, Q2 = arc.embed_blocks(V, K)
    P2[d:] += rng.standard_normal((2 * d, 3 * d))
    Q2[:d] += rng.standard_normal((d, 3 * d))
    Q2[:, :d] += rng.standard_normal((3 * d, d))
    assert _rel(lt.causal_lsa(E, P2, Q2)[:d].T, shat) <= TOL


def test_the_declaration_rows_pass_and_the_proof_holds(rng):
    rows = derive.verify_rows(ALG, rng, quick=True)
    assert rows and all(r.passed for r in rows), [(r.check, r.residual) for r in rows]
    proof = derive.prove(ALG)
    assert proof.holds and proof.n_entries == 2 + 4 * 4  # readout d + invariant 2d x (T + 1)


# ------------------------------------------------------------------------------ (AR1), (AR2)


@pytest.mark.parametrize("phase", ar.PHASES)
def test_rotation_law(phase):
    """``W = Q R(theta) Q^T`` is orthogonal with block energies conserved; fixed phase with balanced
    energies is [Sa]'s ``s_0 = 1/sqrt(d)``; unbalanced energies are those asked for."""
    rng = np.random.default_rng(0)
    d, T = 4, 7
    Qm = ar.haar_orthogonal(1, d, rng)[0]
    r2 = np.array([0.7, 0.3])
    seq = ar.rotation_sequences(50, d, T, rng, phase=phase, energies=r2, Q=Qm)
    assert seq.s.shape == (50, T + 2, d) and seq.T == T
    np.testing.assert_allclose(
        seq.W @ np.swapaxes(seq.W, 1, 2), np.broadcast_to(np.eye(d), (50, d, d)), atol=1e-14
    )
    np.testing.assert_allclose(seq.W, Qm @ ar.rotation(seq.theta) @ Qm.T, atol=1e-15)
    x = seq.s @ Qm  # eigen-coordinates Q^T s_j
    energy = x[..., 0::2] ** 2 + x[..., 1::2] ** 2
    np.testing.assert_allclose(energy, np.broadcast_to(r2, energy.shape), atol=1e-14)
    if phase == "fixed":
        bal = ar.rotation_sequences(3, d, T, rng, phase="fixed")
        np.testing.assert_allclose(bal.s[:, 0], np.full((3, d), 1 / np.sqrt(d)), atol=1e-16)
    else:  # the start phases are spread: |mean exp(i psi)| ~ 1/sqrt(n)
        assert abs(np.exp(1j * seq.psi).mean()) < 0.5


def test_haar_law_moments():
    """Haar-orthogonal W: ``E[W_ij] = 0``, ``E[W_ij^2] = 1/d`` (z-scores of 4000 draws), ``W^T W = I``."""
    rng = np.random.default_rng(1)
    d, n = 3, 4000
    seq = ar.haar_sequences(n, d, 4, rng)
    W = seq.W
    np.testing.assert_allclose(np.swapaxes(W, 1, 2) @ W, np.broadcast_to(np.eye(d), W.shape), atol=1e-14)
    z_mean = W.mean(0) / (W.std(0) / np.sqrt(n))
    w2 = W**2
    z_var = (w2.mean(0) - 1 / d) / (w2.std(0) / np.sqrt(n))
    assert np.abs(z_mean).max() < 4 and np.abs(z_var).max() < 4
    np.testing.assert_allclose(seq.s[:, 0], np.full((n, d), 1 / np.sqrt(d)))
    np.testing.assert_allclose(seq.s[:, 3], (W @ W @ W @ seq.s[:, 0, :, None])[..., 0], atol=1e-14)


def test_tokens_and_prompts():
    s = np.arange(12.0).reshape(4, 3)  # s_0..s_3, d = 3
    E = ar.augmented_tokens(s)
    assert E.shape == (9, 3)
    np.testing.assert_array_equal(E[:, 1], np.concatenate([np.zeros(3), s[2], s[1]]))
    np.testing.assert_array_equal(ar.plain_tokens(s), s[1:].T)
    Z = ar.position_prompt(E, 2)
    np.testing.assert_array_equal(Z, np.concatenate([E[:, :2], E[:, 1:2]], axis=1))


def test_bad_input_is_refused():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="rng"):
        ar.rotation_sequences(2, 2, 3, 0)
    with pytest.raises(ValueError, match="even"):
        ar.rotation_sequences(2, 3, 3, rng)
    with pytest.raises(ValueError, match="phase"):
        ar.rotation_sequences(2, 2, 3, rng, phase="uniform")
    with pytest.raises(ValueError, match="energies"):
        ar.rotation_sequences(2, 4, 3, rng, energies=[0.5, 0.6])
    with pytest.raises(ValueError, match="Q"):
        ar.rotation_sequences(2, 2, 3, rng, Q=np.ones((2, 2)))
    with pytest.raises(ValueError, match="t: must be"):
        ar.position_prompt(np.zeros((6, 3)), 4)
    with pytest.raises(ValueError, match="B"):
        arc.gd_class(np.eye(2), np.eye(3))
    with pytest.raises(ValueError, match="s: position"):
        arc.naive_gd_step([[1.0]], [[1.0]], [[1.0]], 2)


# ------------------------------------------------------------------------------ every size


def test_all_sizes_proof_and_its_link_to_the_declaration():
    """(AR5) for symbolic d, t by block algebra (6 blocks, all zero), tied to the code at d = t = 1 and
    two unequal sizes: the declaration's prompt and construction are the proof's prompt and blocks
    evaluated on the instance, its forward pass equals the proof's target (round-off bound of
    :func:`proof_link.check_obligation`), and the numeric forward pass agrees with the target on
    random values. The mutation ``B -> B^T`` in the blocks leaves 2 blocks non-zero."""
    from sympy import MatrixSymbol

    from lsa_theory.constructions import matrix_words as mw
    from lsa_theory.constructions import proof_link as pl
    from lsa_theory.constructions import symbolic_sizes as ss
    from lsa_theory.constructions import symbolic_sizes_autoregressive as sa
    from lsa_theory.constructions.registry import forward, prompt

    proof = sa.prove_gd_all_sizes()
    assert proof.holds and proof.n_entries == 6
    (ob,) = sa.gd_obligations()
    P_expr, Q_expr = ob.layers[0][1]
    rng = np.random.default_rng(8)
    for d, T in ((1, 1), (2, 3), (3, 2)):
        inst = ALG.draw({"d": d, "T": T}, rng)
        s, A, B = inst["s"], inst["hyper"]["A"], inst["hyper"]["B"]
        arrays = {"S": s[1:].T, "S_prev": s[:-1].T, "s_t": s[-1:].T, "s_tm1": s[-2:-1].T, "A": A, "B": B}
        subs = pl.size_subs({"d": d, "n": T})
        Z = prompt(ALG, *ALG.columns(inst, inst["hyper"]))
        assert np.array_equal(mw.evaluate(ob.prompt, arrays, subs, {}), Z)
        layers = ALG.construction({"d": d, "T": T}, inst["hyper"])
        assert np.array_equal(mw.evaluate(P_expr, arrays, subs, {}), layers[0][0])
        assert np.array_equal(mw.evaluate(Q_expr, arrays, subs, {}), layers[0][1])
        target = mw.evaluate(ob.rhs, arrays, subs, {})
        assert _rel(forward(ALG, Z, layers), target) <= TOL
        res = pl.check_obligation(ob, {"d": d, "n": T}, rng)
        assert res["forward"][1] and res["direct"][1], res
    A_s, B_s = (MatrixSymbol(x, ss.d_s, ss.d_s) for x in "AB")
    Z = sa.prompt_expr()
    P = ss._grid(sa.ROWS, sa.ROWS, {(0, 1): A_s})
    Q = ss._grid(sa.ROWS, sa.ROWS, {(2, 1): B_s.T})
    bad = mw.Obligation("layer", ss.masked_block_expr(Z, P, Q, ss.n_s), ob.rhs, sa.ROWS, sa.COLS, Z)
    assert sum(1 for r in bad.residuals() if r) == 2

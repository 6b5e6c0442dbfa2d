"""The all-sizes proofs are sound against one-sided terms, every proof expression is the numeric
forward pass at concrete sizes (d = n = 1 included), and an all-sizes row is claimed for a
declaration only once its construction is the proved block form (constructions.proof_link)."""

from __future__ import annotations

import functools
import json
import textwrap

import numpy as np
import pytest
import sympy as sp
from sympy import BlockMatrix, MatrixSymbol, ZeroMatrix

import lsa_theory as lt
from lsa_theory import constructions
from lsa_theory.cli import main
from lsa_theory.constructions import derive
from lsa_theory.constructions import matrix_words as mw
from lsa_theory.constructions import proof_link as pl
from lsa_theory.constructions import symbolic_sizes as ss
from lsa_theory.constructions import symbolic_sizes_regression as reg
from lsa_theory.constructions import symbolic_sizes_w7 as w7
from lsa_theory.roundoff import assert_same_verdicts, gamma

# ------------------------------------------------------------ one-sided terms are never lost

Phi, w, r = ss.Phi, ss.w_vec, ss.r_vec


@pytest.mark.parametrize(
    "expr",
    [w, Phi * r, ss.alpha_s / ss.n_s * Phi * (r - Phi.T * w), w * (w.T * Phi * r), Phi * Phi.T * w],
    ids=["w", "Phi r", "update", "scalar word", "Phi Phi^T w"],
)
def test_a_term_on_one_side_only_is_a_residual(expr):
    """``X = 0`` and ``0 = X`` leave X's normal form, and ``w + X = w`` leaves X: a word present
    on one side only always counts (block_residuals iterates the words of both sides)."""
    zero = ZeroMatrix(*expr.shape)
    for lhs, rhs in [(expr, zero), (zero, expr), (w + expr, w), (w, w + expr)]:
        (res,) = mw.block_residuals(lhs, rhs, (expr.shape[0],), (expr.shape[1],))
        assert res, (lhs, rhs)
    (res,) = mw.block_residuals(zero, expr, (expr.shape[0],), (expr.shape[1],))
    assert res == {k: -v for k, v in mw.normal_form(expr).items()}


def _zero_block(make, which: int, ij: tuple[int, int]):
    """``make`` with block ``ij`` of its ``which``-th output matrix set to zero."""

    def mutated(*args, **kwargs):
        mats = list(make(*args, **kwargs))
        blocks = mats[which].blocks.tolist()
        blocks[ij[0]][ij[1]] = ZeroMatrix(*blocks[ij[0]][ij[1]].shape)
        mats[which] = BlockMatrix(blocks)
        return tuple(mats)

    return mutated


def _nonzero_blocks(builder: str, *args) -> list[tuple[int, tuple[int, int]]]:
    mats = getattr(ss if hasattr(ss, builder) else w7, builder)(*args)
    return [
        (k, (i, j))
        for k, M in enumerate(mats)
        for i in range(M.blockshape[0])
        for j in range(M.blockshape[1])
        if not isinstance(M.blocks[i, j], ZeroMatrix)
    ]


def _whole_matrix_zero(builder: str, which: int):
    real = getattr(ss, builder)

    def mutated(*args, **kwargs):
        mats = list(real(*args, **kwargs))
        mats[which] = ZeroMatrix(*mats[which].shape)
        return tuple(mats)

    return mutated


@pytest.mark.parametrize(
    ("proof", "builder", "which"),
    [
        ("prove_sarsa_all_sizes", "sarsa_blocks", 1),  # V = 0: the layer is the identity
        ("prove_actor_critic_all_sizes", "actor_critic_blocks", 1),
        ("prove_td_all_sizes", "td_blocks", 1),  # Q = 0
        ("prove_preconditioned_gd_all_sizes", "regression_blocks", 1),
        ("prove_regression_gd_all_sizes", "regression_blocks", 0),  # P = 0
    ],
    ids=["(S4) V = 0", "(A4) V = 0", "(W3) Q = 0", "(R3) Q = 0", "(R2) P = 0"],
)
def test_a_layer_that_does_nothing_proves_nothing(monkeypatch, proof, builder, which):
    """With V = 0 (or Q = 0, P = 0) the layer's output is its input: the target's update terms are
    on the right side only, and the proof must fail (it held with ``set(a)`` for ``set(a) | set(b)``)."""
    monkeypatch.setattr(ss, builder, _whole_matrix_zero(builder, which))
    assert not getattr(ss if hasattr(ss, proof) else reg, proof)().holds


SINGLE_BLOCKS = [
    (proof, builder, args, which, ij)
    for proof, builder, args in [
        ("prove_sarsa_all_sizes", "sarsa_blocks", ()),
        ("prove_actor_critic_all_sizes", "actor_critic_blocks", ()),
        ("prove_td_all_sizes", "td_blocks", (ss.alpha_s * sp.Identity(ss.d_s),)),
        ("prove_residual_gradient_all_sizes", "residual_gradient_blocks", ()),
        ("prove_preconditioned_gd_all_sizes", "regression_blocks", (MatrixSymbol("A", ss.d_s, ss.d_s),)),
    ]
    for which, ij in _nonzero_blocks(builder, *args)
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("proof", "builder", "args", "which", "ij"),
    SINGLE_BLOCKS,
    ids=[f"{b}[{k}]{ij}" for _, b, _, k, ij in SINGLE_BLOCKS],
)
def test_every_single_block_zeroed_fails_the_proof(monkeypatch, proof, builder, args, which, ij):
    monkeypatch.setattr(ss, builder, _zero_block(getattr(ss, builder), which, ij))
    assert not getattr(ss if hasattr(ss, proof) else reg, proof)().holds


@pytest.mark.parametrize("ij", [(3, 2), (3, 3)], ids=["P_r", "P_v"])
def test_w7_without_a_head_fails(monkeypatch, ij):
    real = w7.average_reward_blocks

    def without(alpha=ss.alpha_s):
        P_r, P_v, Q = real(alpha)
        zero = ZeroMatrix(*P_r.shape)
        return (zero, P_v, Q) if ij == (3, 2) else (P_r, zero, Q)

    monkeypatch.setattr(w7, "average_reward_blocks", without)
    assert not w7.prove_td_average_reward_all_sizes().holds


# ------------------------------------------- every proof expression = the numeric forward pass

POINTS = [{"d": 1, "n": 1, "d_pi": 1}, {"d": 2, "n": 3, "d_pi": 2}, {"d": 3, "n": 2, "d_pi": 1}]
OBLIGATIONS = functools.cache(pl.proof_obligations)


def test_every_block_proof_has_obligations():
    """Every block-algebra proof function (``prove_*_all_sizes`` of both modules) has its
    obligations in proof_obligations(); only the (W7) running mean (entrywise) has none."""
    proofs = {n for mod in (ss, w7, reg) for n in dir(mod) if n.startswith("prove_") and "all_sizes" in n}
    assert set(OBLIGATIONS()) == proofs - {"prove_running_mean_mask_all_sizes"}
    assert all(OBLIGATIONS().values())


@pytest.mark.parametrize("name", sorted(OBLIGATIONS()))
def test_proof_expressions_are_the_numeric_forward_pass(name):
    """At (d, n) = (1, 1), (2, 3), (3, 2) on random values, each obligation's prompt and blocks run
    through lsa_block / masked_lsa (the package's forward pass) equal its evaluated target, and so
    does its lhs evaluated directly; tolerance: the two sides' roundoff_bound (gamma_K |e|_abs)."""
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    for ob in OBLIGATIONS()[name]:
        for point in POINTS:
            res = pl.check_obligation(ob, point, rng)
            assert res["forward"][1] and res["direct"][1], (ob.what, point, res)


def test_forward_verdicts_survive_a_1e13_perturbation():
    """The verdicts of the direct evaluation are not decided by rounding: the same on the values and
    on 5 copies moved by relative 1e-13 (assert_same_verdicts), for a (W7) step at d = n = 1 and an
    (S5) two-layer composition at (2, 3)."""
    rng = np.random.default_rng(8)
    for name, i, point in [("prove_td_average_reward_all_sizes", 1, POINTS[0]),
                           ("prove_sarsa_composition_all_sizes", 0, POINTS[1])]:  # fmt: skip
        ob = OBLIGATIONS()[name][i]
        subs = pl.size_subs(point)
        values = pl.random_values([pl.forward_tree(ob), ob.lhs, ob.rhs], subs, rng)

        def verdicts(v, ob=ob, point=point):
            return tuple(ok for _, ok in pl.check_obligation(ob, point, rng, values=v).values())

        assert assert_same_verdicts(verdicts, values, rng) == (True, True)


def test_forward_check_catches_a_proof_about_another_block(monkeypatch):
    """A proof whose layer expression is not the package's (a factor 2 in (L1), matched by 2 alpha in
    the target) still 'holds'; evaluating it against lsa_block at d = n = 1 does not."""
    real_update = ss.sarsa_update_expr
    monkeypatch.setattr(ss, "lsa_block_expr", lambda H, P, V, n=ss.n_s: H + 2 * V * H * H.T * P * H / n)
    monkeypatch.setattr(ss, "sarsa_update_expr", lambda w, alpha=ss.alpha_s: real_update(w, 2 * alpha))
    assert ss.prove_sarsa_all_sizes().holds
    (ob,) = ss.sarsa_obligations()
    res = pl.check_obligation(ob, POINTS[0], np.random.default_rng(0))
    assert not res["forward"][1] and res["direct"][1], res


def test_forward_check_catches_a_transposed_mask(monkeypatch):
    """(W5) proved for ``Z M^T Z^T`` (target with ``M_n`` instead of ``M_n^T``) holds; the masked
    forward pass (``Z M Z^T``) tells them apart at (d, n) = (2, 3)."""
    real = ss.masked_block_expr

    def transposed(Z, P, Q, n=ss.n_s, mask=None):
        return real(Z, P, Q, n, None if mask is None else mask.T)

    monkeypatch.setattr(ss, "masked_block_expr", transposed)
    M = MatrixSymbol("M_n", ss.n_s, ss.n_s)

    def update(w):
        return w + ss.alpha_s / ss.n_s * ss.Phi * M * ss.td_errors_expr(w)

    obs = ss.td_induction_obligations(*ss.td_blocks(ss.alpha_s * sp.Identity(ss.d_s)), update, mask=M)
    assert all(not res for ob in obs for res in ob.residuals())  # the wrong statement "holds"
    res = pl.check_obligation(obs[1], POINTS[1], np.random.default_rng(1))
    assert not res["forward"][1] and res["direct"][1], res


def test_roundoff_bound_covers_a_reordered_product():
    """The bound of ``A B C`` holds for the other association and is about gamma_K |A||B||C|."""
    rng = np.random.default_rng(4)
    A, B, C = (MatrixSymbol(k, 5, 5) for k in "ABC")
    arrays = {k: rng.standard_normal((5, 5)) for k in "ABC"}
    bound = mw.roundoff_bound(A * B * C, arrays, {}, {})
    exact = (
        sp.Matrix(arrays["A"].tolist()) * sp.Matrix(arrays["B"].tolist()) * sp.Matrix(arrays["C"].tolist())
    )
    for value in (
        (arrays["A"] @ arrays["B"]) @ arrays["C"],
        arrays["A"] @ (arrays["B"] @ arrays["C"]),
    ):
        err = np.abs(value - np.array(exact.tolist(), dtype=np.float64))
        assert np.all(err <= bound)
    magnitude = np.abs(arrays["A"]) @ np.abs(arrays["B"]) @ np.abs(arrays["C"])
    # K = 5 + 5 (inner dimensions) + 2 (the coefficient 1 evaluated, then the scaling: counted)
    np.testing.assert_allclose(bound / magnitude, gamma(5 + 5 + 2), rtol=1e-12)


# ------------------------------------------------ a row is claimed only for a linked construction


@pytest.mark.slow  # verify (tests/cli/test_cli_experiments.py) runs the same links
def test_every_shipped_declaration_is_linked_to_its_proofs():
    """Every registered declaration's all-sizes forms pass the link (prompt, each layer at L = 1, 2
    and every scale, one-layer forward pass at d = n = 1, (2, 3), (3, 2))."""
    rng = np.random.default_rng(0)
    linked = 0
    for alg in constructions.ALGORITHMS.values():
        seen = set()
        for form in alg.all_sizes_forms():
            if form.blocks in seen:
                continue
            seen.add(form.blocks)
            res, reason = pl.link_check(alg, form, rng)
            assert reason == "", (alg.name, reason)
            assert form.prove().claim == form.claim
            linked += 1
    assert linked == 10  # sarsa, actor_critic(_q), td, td_precond, td_lambda, rg, (W7), (R2), (R3)


BROKEN_AT_D1 = '''
import numpy as np
from lsa_theory.constructions.algorithms.sarsa import Sarsa


class BrokenSarsa(Sarsa):
    """SARSA whose construction is wrong at d = 1 only (V doubled)."""

    name = "broken_sarsa"
    depths = (1,)
    scales = (1.0,)

    def sizes(self, quick):
        return {"S": 2, "A": 2, "d": 2, "n": 5}

    def symbolic_sizes(self):  # d = 2: the one construction is also the exact proof's, right at d >= 2
        return {"S": 1, "A": 2, "d": 2, "n": 1}

    def size_ranges(self):
        return {"S": (1, 2), "A": (1, 2), "d": (2, 3), "n": (1, 4)}

    def construction(self, sizes, hyper, c=1.0, depth=1):
        layers = super().construction(sizes, hyper, c, depth)
        if sizes["d"] == 1:
            layers = [(P, 2 * V) for P, V in layers]
        return layers
'''


def _broken_module(tmp_path):
    path = tmp_path / "broken_sarsa.py"
    path.write_text(textwrap.dedent(BROKEN_AT_D1))
    return path


def test_a_subclass_broken_at_d1_gets_no_all_sizes_rows_api(tmp_path):
    """Its numeric rows (d >= 2) and fixed-size sympy rows pass, yet no all-sizes row is claimed:
    the link finds V differing from the proved block form at d = 1."""
    (alg,) = constructions.load_module(_broken_module(tmp_path))
    rows = derive.verify_rows(alg, np.random.default_rng(3), quick=True)
    all_sizes = [r for r in rows if "block algebra" in r.check or "NOT claimed" in r.check]
    assert len(all_sizes) == 3 and not any(r.passed for r in all_sizes)
    assert all("d = 1" in r.check and "construction block 1" in r.check for r in all_sizes)
    assert all(r.passed for r in rows if r not in all_sizes)


def test_a_subclass_broken_at_d1_gets_no_all_sizes_rows_cli(tmp_path, capsys):
    code = main(["verify", "--module", str(_broken_module(tmp_path)), "--quick", "--seed", "3", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1 and doc["passed"] is False
    assert not any(r["passed"] and "block algebra" in r["check"] for r in doc["rows"])
    assert sum("NOT claimed" in r["check"] for r in doc["rows"]) == 3


def test_proofs_without_a_form_are_not_claimed():
    """A declaration listing proofs (``proofs_all_sizes``) but no block form gets failed rows."""

    class Unlinked(type(constructions.ALGORITHMS["sarsa"])):
        name = "unlinked"

        def all_sizes_forms(self):
            return []

        def proofs_all_sizes(self):
            return [(ss.prove_sarsa_all_sizes(), "one layer")]

    (row,) = pl.link_rows(Unlinked(), np.random.default_rng(0))
    assert not row.passed and "NOT claimed" in row.check and "no proved block form" in row.check


def test_the_l2_row_is_claimed_only_for_the_shipped_block(monkeypatch):
    """verify's (L2) block-algebra row runs its obligation through lsa_block first: a block that
    reads ``P^T`` (the same at d = n = 1 only if P is symmetric) makes it 'NOT claimed'."""
    from lsa_theory.constructions import verify

    row = verify.lemma_c1_all_sizes_row(np.random.default_rng(0))
    assert row.passed and "= lsa_block at d = 1, n = 1" in row.check
    real = lt.lsa_block
    monkeypatch.setattr(lt, "lsa_block", lambda H, P, V: real(H, np.swapaxes(P, -1, -2), V))
    row = verify.lemma_c1_all_sizes_row(np.random.default_rng(0))
    assert not row.passed and "NOT claimed" in row.check and "'d': 1, 'n': 1" in row.check

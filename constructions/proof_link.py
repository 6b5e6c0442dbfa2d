r"""What ties an all-sizes proof to the code that runs: direct evaluation at concrete sizes.

The block-algebra proofs of :mod:`lsa_theory.constructions.symbolic_sizes` show ``lhs = rhs`` for symbolic
``d, n``. Two checks at concrete sizes tie them to the shipped code:

1. :func:`check_obligation` (every proof expression): the matrix symbols of an
   :class:`~lsa_theory.constructions.matrix_words.Obligation` get random float64 values at concrete sizes;
   the proof's prompt and layer blocks are evaluated and run through the **numeric forward pass**
   (:func:`lsa_theory.lsa_block` (L1), :func:`lsa_theory.masked_lsa` (W2), two heads for (W7)),
   and the result is compared with the evaluated target ``rhs``. So the ``lhs`` the proof reduced
   is the computation the package runs, and the target is its value.
2. :func:`link_rows` (a declaration): an all-sizes row of an
   :class:`~lsa_theory.constructions.registry.Algorithm` is claimed only if, at :data:`LINK_SIZES` (``d = n
   = 1``
   first), on an instance drawn by the declaration itself, (a) its prompt (``columns`` through
   :func:`lsa_theory.constructions.registry.prompt`) equals the proof's prompt expression, (b) every layer of
   its
   ``construction`` at depths 1 and 2 and every declared scale ``c`` equals the proof's block form,
   and (c) its forward pass (:func:`lsa_theory.constructions.registry.forward`, with its mask) of one layer
   equals
   the proof's target. The :class:`ProvedForm` of a proof says which blocks, prompt, update and
   values of the symbols a declaration's objects are compared with.

Tolerances: both sides of each comparison are float64 evaluations of one exact quantity (the
proof shows it); the tolerance is the sum of the two sides' bounds
:func:`lsa_theory.constructions.matrix_words.roundoff_bound` (:math:`\gamma_K |e|_{\rm abs}`, any summation
order), see :func:`excess`. A comparison passes when ``|a - b| <= tol`` entrywise.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp
from sympy import MatrixSymbol

import lsa_theory as lt

from . import matrix_words as mw
from . import symbolic_sizes as ss
from ._residuals import Row
from .registry import forward, instance_hyper, prompt, sizes_text
from .symbolic import SymbolicProof

__all__ = [
    "LINK_SIZES",
    "ProvedForm",
    "random_values",
    "size_subs",
    "forward_tree",
    "forward_numeric",
    "check_obligation",
    "proof_obligations",
    "excess",
    "link_check",
    "link_rows",
]

#: Concrete sizes of the link: every size 1 first (where ``d`` or ``n`` = 1 could break a
#: construction written for larger sizes), then two unequal pairs.
LINK_SIZES = ({"d": 1, "n": 1}, {"d": 2, "n": 3}, {"d": 3, "n": 2})


def size_subs(sizes: Mapping[str, int]) -> dict:
    """``{d_s: d, n_s: n, N_s: n, d_pi_s: d_pi}`` from a dict with keys ``d``, ``n`` (and ``d_pi``)."""
    n = sizes.get("n", sizes.get("N"))
    return {ss.d_s: sizes["d"], ss.n_s: n, ss.N_s: n, ss.d_pi_s: sizes.get("d_pi", sizes["d"])}


def random_values(exprs, sizes: Mapping, rng: np.random.Generator) -> tuple[dict, dict]:
    """``(arrays, scalars)``: a standard normal array for every matrix symbol of ``exprs`` (at the
    concrete ``sizes``, a dict of size symbols) and ``U(0.2, 1.5)`` for every other scalar symbol."""
    mats, scal = {}, {}
    for expr in exprs:
        for m in expr.atoms(MatrixSymbol):
            if m.name not in mats:
                mats[m.name] = rng.standard_normal([int(sp.sympify(k).subs(sizes)) for k in m.shape])
        for s in expr.free_symbols:
            if type(s) is sp.Symbol and s not in sizes and s not in scal:
                scal[s] = float(rng.uniform(0.2, 1.5))
    return mats, scal


def _layer_expr(kind: str, Z, blocks, mask):
    """The un-collapsed expression of one layer of ``kind`` on ``Z`` (the tree the forward computes)."""
    if kind == "lsa":
        return ss.lsa_block_expr(Z, *blocks)
    if kind == "masked":
        n = Z.blocks[0, 0].shape[1] if hasattr(Z, "blocks") else ss.n_s
        return ss.masked_block_expr(Z, *blocks, n=n, mask=mask)
    if kind == "two_heads":
        from . import symbolic_sizes_w7 as w7

        return w7.average_reward_layer_expr(Z, blocks[:3], mask=mask)
    raise ValueError(f"layer kind: expected 'lsa', 'masked' or 'two_heads', got {kind!r}")


def _mask_value(mask, arrays, sizes, n: int) -> np.ndarray | None:
    if mask is None:
        return None
    full = np.zeros((n + 1, n + 1))
    full[:n, :n] = mw.evaluate(mask, arrays, sizes, {})
    return full


def _run_layer(kind: str, Z: np.ndarray, mats: tuple, mask_full) -> np.ndarray:
    """The package's numeric forward pass of one layer (float64)."""
    if kind == "lsa":
        return lt.lsa_block(Z, *mats)
    if kind == "masked":
        return lt.masked_lsa(Z, *mats, mask=mask_full)
    P_r, P_v, Q = mats
    return lt.masked_lsa(Z, P_v, Q) + (lt.masked_lsa(Z, P_r, Q, mask=mask_full) - Z)


def _slice(value: np.ndarray, ob: mw.Obligation, sizes: Mapping) -> np.ndarray:
    """Block ``ob.select`` of a full output (the whole output if ``select`` is None)."""
    if ob.select is None:
        return value
    rows = [int(sp.sympify(r).subs(sizes)) for r in ob.prompt.rowblocksizes]
    cols = [int(sp.sympify(c).subs(sizes)) for c in ob.prompt.colblocksizes]
    i, j = ob.select
    r0, c0 = sum(rows[:i]), sum(cols[:j])
    return value[r0 : r0 + rows[i], c0 : c0 + cols[j]]


def forward_numeric(ob: mw.Obligation, arrays: Mapping, sizes: Mapping, scalars: Mapping) -> np.ndarray:
    """The obligation's lhs computed by the numeric forward pass: its prompt and layer blocks
    evaluated in float64, then each layer run by the package's block (the ``select`` block of the
    output); for a base case (no layers) the evaluated lhs."""
    if not ob.layers:
        return mw.evaluate(ob.lhs, arrays, sizes, scalars)
    Z = mw.evaluate(ob.prompt, arrays, sizes, scalars)
    n = Z.shape[1] - 1
    for kind, blocks, mask in ob.layers:
        mats = tuple(mw.evaluate(b, arrays, sizes, scalars) for b in blocks)
        Z = _run_layer(kind, Z, mats, _mask_value(mask, arrays, sizes, n))
    return _slice(Z, ob, sizes)


@functools.lru_cache(maxsize=64)
def forward_tree(ob: mw.Obligation):
    """The un-collapsed tree of the obligation's forward pass (the layers applied to the prompt)."""
    if not ob.layers:
        return ob.lhs
    Z = ob.prompt
    for kind, blocks, mask in ob.layers:
        Z = _layer_expr(kind, Z, blocks, mask)
    return Z


def excess(a: np.ndarray, b: np.ndarray, tol: np.ndarray) -> tuple[float, bool]:
    """``(max |a - b|, all |a - b| <= tol)`` entrywise (False on a shape mismatch)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf"), False
    diff = np.abs(a - b)
    return float(diff.max(initial=0.0)), bool(np.all(diff <= np.broadcast_to(tol, diff.shape)))


def check_obligation(
    ob: mw.Obligation, sizes: Mapping[str, int], rng: np.random.Generator, values: tuple | None = None
) -> dict:
    """Evaluate one obligation at concrete ``sizes`` (keys ``d``, ``n``, optional ``d_pi``) on
    random values (or ``values = (arrays, scalars)``): ``forward`` (numeric forward pass vs
    target), ``direct`` (the lhs expression evaluated directly vs target), each ``(max |diff|,
    passed)``; tolerances: the two sides'
    :func:`~lsa_theory.constructions.matrix_words.roundoff_bound` summed."""
    subs = size_subs(sizes)
    tree = forward_tree(ob)
    arrays, scalars = random_values([tree, ob.lhs, ob.rhs], subs, rng) if values is None else values
    target = mw.evaluate(ob.rhs, arrays, subs, scalars)
    tol_rhs = mw.roundoff_bound(ob.rhs, arrays, subs, scalars)
    tol_fwd = _slice(mw.roundoff_bound(tree, arrays, subs, scalars), ob, subs) + tol_rhs
    direct = _slice(mw.evaluate(ob.lhs, arrays, subs, scalars), ob, subs)
    tol_dir = _slice(mw.roundoff_bound(ob.lhs, arrays, subs, scalars), ob, subs)
    return {
        "forward": excess(forward_numeric(ob, arrays, subs, scalars), target, tol_fwd),
        "direct": excess(direct, target, tol_dir + tol_rhs),
    }


def proof_obligations() -> dict[str, list[mw.Obligation]]:
    """The obligations of every block-algebra proof, by proof function name (the (W7) block row
    from :mod:`lsa_theory.constructions.symbolic_sizes_w7`; its running-mean row is entrywise, not blocks):
    what the tests evaluate at concrete sizes against the numeric forward pass."""
    from . import symbolic_sizes_regression as reg
    from . import symbolic_sizes_w7 as w7

    td_pair = ss.td_blocks(ss.alpha_s * sp.Identity(ss.d_s))
    return {
        "prove_sarsa_all_sizes": ss.sarsa_obligations(),
        "prove_sarsa_stack_all_sizes": ss.sarsa_stack_obligations(),
        "prove_sarsa_composition_all_sizes": ss.sarsa_composition_obligations(2),
        "prove_actor_critic_all_sizes": ss.actor_critic_obligations(),
        "prove_td_all_sizes": ss.td_induction_obligations(*td_pair, ss.td_update_expr),
        "prove_lemma_c1_all_sizes": ss.lemma_c1_obligations()[0],
        "prove_td_preconditioned_all_sizes": ss.td_induction_obligations(
            *ss.td_blocks(MatrixSymbol("C", ss.d_s, ss.d_s)), ss.td_precond_update_expr
        ),
        "prove_residual_gradient_all_sizes": ss.td_induction_obligations(
            *ss.residual_gradient_blocks(), ss.residual_gradient_update_expr
        ),
        "prove_td_lambda_all_sizes": ss.td_induction_obligations(
            *td_pair, ss.td_lambda_update_expr, mask=MatrixSymbol("M_n", ss.n_s, ss.n_s)
        ),
        "prove_regression_gd_all_sizes": reg.regression_gd_obligations(),
        "prove_preconditioned_gd_all_sizes": reg.preconditioned_gd_obligations(),
        "prove_td_average_reward_all_sizes": w7.average_reward_obligations(),
    }


# ------------------------------------------------------------------ declarations <-> proofs


@dataclass(frozen=True)
class ProvedForm:
    """An all-sizes proof and the block form it is about.

    ``prove``: the proof (e.g. :func:`lsa_theory.constructions.symbolic_sizes.prove_sarsa_all_sizes`),
    ``what``: the row's text; ``kind``: the layer (``"lsa"``, ``"masked"``, ``"two_heads"``);
    ``prompt(w)``: the prompt expression at parameter ``w`` (the induction's invariant), with
    ``start`` the parameter of the declaration's prompt (``w`` or ``0``); ``blocks``: one layer's
    block expressions, in the order of ``flatten(layer)`` of a declaration's layer; ``update(w)``:
    the proved parameter update; ``mask``: the mask symbol of the layer or None; ``values(alg, inst,
    hyper, sizes, c, layer)``: ``(arrays, scalars)``, the value of every symbol for one instance of
    the declaration ``alg`` at layer ``layer`` (KeyError / ValueError if the instance has another
    form: the link then fails); ``claim``: the proof's label, for a row not claimed (default: the
    declaration's)."""

    prove: Callable[[], SymbolicProof]
    what: str
    kind: str
    prompt: Callable[[Any], Any]
    start: Any
    blocks: tuple
    update: Callable[[Any], Any]
    values: Callable[..., tuple[dict, dict]]
    mask: Any = None
    flatten: Callable[[Any], tuple] = tuple
    claim: str = ""


def _sizes_of(alg, point: Mapping[str, int]) -> dict[str, int]:
    """The declaration's size dict at a link point: ``d``, ``n`` (or ``N``), ``d_pi`` from the
    point, every other size (``S``, ``A``) at the low end of its ``size_ranges``."""
    out = {}
    for key, (lo, _hi) in alg.size_ranges().items():
        if key in ("n", "N"):
            out[key] = point["n"]
        elif key in ("d", "d_pi"):
            out[key] = point["d"]
        else:
            out[key] = lo
    return out


def _block_value(sym, arrays: Mapping, subs: Mapping, scalars: Mapping, cache: dict) -> tuple:
    """``(value, 2 * roundoff_bound)`` of a block expression, cached on the values of the symbols
    (the layers of a stack and repeated scales share them)."""
    key = (
        sym,
        tuple(sorted((k, np.asarray(v).tobytes()) for k, v in arrays.items())),
        tuple(sorted(((str(k), v) for k, v in {**subs, **scalars}.items()))),
    )
    if key not in cache:
        bound = mw.roundoff_bound(sym, arrays, subs, scalars)
        cache[key] = (mw.evaluate(sym, arrays, subs, scalars), 2 * bound)
    return cache[key]


def link_check(alg, form: ProvedForm, rng: np.random.Generator, points=LINK_SIZES) -> tuple[float, str]:
    """``(max |diff|, reason)``: the declaration's prompt, construction and one-layer forward
    pass against the proof's block form at every point of ``points`` (module docstring, checks
    (a)-(c)); ``reason`` is ``""`` when all agree within their round-off bounds, else one line
    saying what differs where."""
    worst, cache = 0.0, {}
    for point in points:
        sizes = _sizes_of(alg, point)
        where = ", ".join(f"{k} = {v}" for k, v in sizes.items())
        try:
            inst = alg.draw(sizes, rng)
            hyper = instance_hyper(alg, inst)
            X, last = alg.columns(inst, hyper)
            Z = prompt(alg, np.asarray(X, dtype=np.float64), np.asarray(last, dtype=np.float64))
            n = Z.shape[1] - 1
            subs = size_subs({**sizes, "n": n})
            for depth in sorted({1, 2} & set(alg.depths) or {1}):
                for c in alg.scales:
                    layers = alg.construction(sizes, hyper, c, depth)
                    for l, layer in enumerate(layers):
                        arrays, scalars = form.values(alg, inst, hyper, sizes, c, l)
                        if l == 0 and depth == 1 and c == alg.scales[0]:  # (a) the prompt
                            expr = form.prompt(form.start)
                            value = mw.evaluate(expr, arrays, subs, scalars)
                            tol = 2 * mw.roundoff_bound(expr, arrays, subs, scalars)
                            diff, ok = excess(Z, value, tol)
                            worst = max(worst, diff)
                            if not ok:
                                return worst, f"prompt differs from the proof's at {where} ({diff:.2e})"
                        mats = form.flatten(layer)  # (b) every layer's blocks
                        if len(mats) != len(form.blocks):
                            return float(
                                "inf"
                            ), f"layer {l} has {len(mats)} blocks, the proof {len(form.blocks)}"
                        for k, (num, sym) in enumerate(zip(mats, form.blocks, strict=True)):
                            value, tol = _block_value(sym, arrays, subs, scalars, cache)
                            diff, ok = excess(num, value, tol)
                            worst = max(worst, diff)
                            if not ok:
                                return worst, (
                                    f"construction block {k} of layer {l} (L = {depth}, c = {c}) differs "
                                    f"from the proof's at {where} ({diff:.2e})"
                                )
            # (c) one layer of the declaration's forward pass against the proved target
            layers = alg.construction(sizes, hyper, alg.scales[0], 1)
            arrays, scalars = form.values(alg, inst, hyper, sizes, alg.scales[0], 0)
            out = forward(alg, Z, layers, alg.mask(sizes, hyper))
            target = form.prompt(form.update(form.start))
            tree = _layer_expr(form.kind, form.prompt(form.start), form.blocks, form.mask)
            value = mw.evaluate(target, arrays, subs, scalars)
            # the declaration's inputs are within (a), (b)'s bounds of the proof's: 3K roundings
            tol = 3 * mw.roundoff_bound(tree, arrays, subs, scalars) + mw.roundoff_bound(
                target, arrays, subs, scalars
            )
            diff, ok = excess(out, value, tol)
            worst = max(worst, diff)
            if not ok:
                return worst, f"forward pass differs from the proof's target at {where} ({diff:.2e})"
        except (KeyError, ValueError, TypeError, IndexError) as exc:
            return float("inf"), f"not comparable at {where}: {type(exc).__name__}: {exc}"
    return worst, ""


def link_rows(alg, rng: np.random.Generator) -> list[Row]:
    """The all-sizes rows of a declaration, each claimed only after :func:`link_check` passes.

    For each :class:`ProvedForm` of ``alg.all_sizes_forms()``: if the link holds, the proof's row
    (residual = its number of non-zero blocks, tolerance 0); otherwise a failed row saying why,
    the proof not claimed. A declaration whose ``proofs_all_sizes`` returns proofs without forms
    gets one failed row per proof (nothing links it to the construction)."""
    rows = []
    forms = alg.all_sizes_forms()
    points = "; ".join(f"d = {p['d']}, n = {p['n']}" for p in LINK_SIZES)
    done: dict = {}  # forms that share their block form (e.g. (S4), (S5)) are linked once
    for form in forms:
        key = (form.kind, form.prompt, form.start, form.blocks, form.update, form.values, form.mask)
        if key not in done:
            done[key] = link_check(alg, form, rng)
        res, reason = done[key]
        if reason:
            rows.append(
                Row(
                    form.claim or alg.claim,
                    f"{alg.name}: all-sizes row NOT claimed ({form.what}): {reason}",
                    res,
                    0.0,
                    False,
                )
            )
            continue
        proof = form.prove()
        rows.append(
            Row(
                proof.claim,
                f"{alg.name}: sympy, block algebra: {form.what} ({sizes_text(proof.sizes)}; "
                f"construction = proved block form at {points})",
                float(proof.nonzero),
                0.0,
                proof.holds,
            )
        )
    if not forms:
        for proof, what in alg.proofs_all_sizes():
            rows.append(
                Row(
                    proof.claim,
                    f"{alg.name}: all-sizes row NOT claimed ({what}): no proved block "
                    "form links it to the construction (all_sizes_forms)",
                    float("inf"),
                    0.0,
                    False,
                )
            )
    return rows


def all_size_proofs() -> list[tuple[SymbolicProof, str]]:
    """Every all-sizes proof with a short description, for the ``verify`` table (the (W7) rows
    from :mod:`lsa_theory.constructions.symbolic_sizes_w7`, (R2), (R3) from
    :mod:`lsa_theory.constructions.symbolic_sizes_regression`)."""
    from . import symbolic_sizes_regression as reg
    from . import symbolic_sizes_w7 as w7

    return [
        (ss.prove_sarsa_all_sizes(), "one layer = (S2), whole output, c symbolic"),
        (ss.prove_sarsa_stack_all_sizes(), "induction step: one layer maps H(z; w) to H(z; w_SARSA)"),
        (ss.prove_sarsa_composition_all_sizes(2), "two layers composed explicitly, no induction"),
        (ss.prove_actor_critic_all_sizes(), "actor-critic layer = (A2), whole output"),
        (ss.prove_td_all_sizes(), "induction: base + step of the last-row invariant"),
        (ss.prove_lemma_c1_all_sizes(), "arbitrary P, V blocks; readout uses P12, P22, Vbar21, Vbar22 only"),
        (ss.prove_td_preconditioned_all_sizes(), "THEORY statement, generic C_l, induction"),
        (ss.prove_residual_gradient_all_sizes(), "THEORY statement, our Q, induction"),
        (ss.prove_td_lambda_all_sizes(), "THEORY statement, any context mask M_n, induction"),
        (reg.prove_regression_gd_all_sizes(), "THEORY statement, one GD step from 0"),
        (reg.prove_preconditioned_gd_all_sizes(), "THEORY statement, generic A_l, induction"),
        (w7.prove_td_average_reward_all_sizes(), "two heads, any reward mask N_n, induction"),
        (w7.prove_running_mean_mask_all_sizes(), "running-mean mask, entrywise sympy Sum (no blocks)"),
    ]

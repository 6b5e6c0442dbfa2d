r"""What ties an all-sizes proof to the code that runs: direct evaluation at concrete sizes.

The block-algebra proofs of :mod:`constructions.symbolic_sizes` show ``lhs = rhs`` for symbolic
``d, n``. Two checks at concrete sizes tie them to the shipped code:

1. :func:`check_obligation` (every proof expression): the matrix symbols of an
   :class:`~constructions.matrix_words.Obligation` get random float64 values at concrete sizes;
   the proof's prompt and layer blocks are evaluated and run through the **numeric forward pass**
   (:func:`lsa_theory.lsa_block` (L1), :func:`lsa_theory.masked_lsa` (W2), two heads for (W7)),
   and the result is compared with the evaluated target ``rhs``. So the ``lhs`` the proof reduced
   is the computation the package runs, and the target is its value.
2. :func:`link_rows` (a declaration): an all-sizes row of an
   :class:`~constructions.registry.Algorithm` is claimed only if, at :data:`LINK_SIZES` (``d = n = 1``
   first), on an instance drawn by the declaration itself, (a) its prompt (``columns`` through
   :func:`constructions.derive.prompt`) equals the proof's prompt expression, (b) every layer of its
   ``construction`` at depths 1 and 2 and every declared scale ``c`` equals the proof's block form,
   and (c) its forward pass (:func:`constructions.derive.forward`, with its mask) of one layer equals
   the proof's target. The :class:`ProvedForm` of a proof says which blocks, prompt, update and
   values of the symbols a declaration's objects are compared with.

Tolerances: both sides of each comparison are float64 evaluations of one exact quantity (the
proof shows it); the tolerance is the sum of the two sides' bounds
:func:`constructions.matrix_words.roundoff_bound` (:math:`\gamma_K |e|_{\rm abs}`, any summation
order), see :func:`excess`. A comparison passes when ``|a - b| <= tol`` entrywise.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp
from sympy import MatrixSymbol, ZeroMatrix

import lsa_theory as lt

from . import matrix_words as mw
from . import symbolic_sizes as ss
from ._residuals import Row
from .symbolic import SymbolicProof

__all__ = [
    "LINK_SIZES",
    "ProvedForm",
    "random_values",
    "forward_numeric",
    "check_obligation",
    "excess",
    "link_check",
    "link_rows",
]

#: Concrete sizes of the link: every size 1 first (where ``d`` or ``n`` = 1 could break a
#: construction written for larger sizes), then two unequal pairs.
LINK_SIZES = ({"d": 1, "n": 1}, {"d": 2, "n": 3}, {"d": 3, "n": 2})


def _size_subs(sizes: Mapping[str, int]) -> dict:
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
def _tree(ob: mw.Obligation):
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


def check_obligation(ob: mw.Obligation, sizes: Mapping[str, int], rng: np.random.Generator) -> dict:
    """Evaluate one obligation at concrete ``sizes`` (keys ``d``, ``n``, optional ``d_pi``) on
    random values: ``forward`` (numeric forward pass vs target), ``direct`` (the lhs expression
    evaluated directly vs target), each ``(max |diff|, passed)``; tolerances: the two sides'
    :func:`~constructions.matrix_words.roundoff_bound` summed."""
    subs = _size_subs(sizes)
    tree = _tree(ob)
    arrays, scalars = random_values([tree, ob.lhs, ob.rhs], subs, rng)
    target = mw.evaluate(ob.rhs, arrays, subs, scalars)
    tol_rhs = mw.roundoff_bound(ob.rhs, arrays, subs, scalars)
    tol_fwd = _slice(mw.roundoff_bound(tree, arrays, subs, scalars), ob, subs) + tol_rhs
    direct = _slice(mw.evaluate(ob.lhs, arrays, subs, scalars), ob, subs)
    tol_dir = _slice(mw.roundoff_bound(ob.lhs, arrays, subs, scalars), ob, subs)
    return {
        "forward": excess(forward_numeric(ob, arrays, subs, scalars), target, tol_fwd),
        "direct": excess(direct, target, tol_dir + tol_rhs),
    }


# ------------------------------------------------------------------ declarations <-> proofs


@dataclass(frozen=True)
class ProvedForm:
    """An all-sizes proof and the block form it is about.

    ``prove``: the proof (e.g. :func:`constructions.symbolic_sizes.prove_sarsa_all_sizes`),
    ``what``: the row's text; ``kind``: the layer (``"lsa"``, ``"masked"``, ``"two_heads"``);
    ``prompt(w)``: the prompt expression at parameter ``w`` (the induction's invariant), with
    ``start`` the parameter of the declaration's prompt (``w`` or ``0``); ``blocks``: one layer's
    block expressions, in the order of ``flatten(layer)`` of a declaration's layer; ``update(w)``:
    the proved parameter update; ``mask``: the mask symbol of the layer or None; ``values(alg, inst,
    hyper, sizes, c, layer)``: ``(arrays, scalars)``, the value of every symbol for one instance of
    the declaration ``alg`` at layer ``layer`` (KeyError / ValueError if the instance has another
    form: the link then fails)."""

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


def _col(v) -> np.ndarray:
    return np.asarray(v, dtype=np.float64).reshape(-1, 1)


def td_values(alg, inst, hyper, sizes, c, layer) -> tuple[dict, dict]:
    """Symbol values of the TD family's instances (``phi``, ``phi_next`` (n, d), ``r``, ``q``)."""
    arrays = {"Phi": np.asarray(inst["phi"], float).T, "Phi_next": np.asarray(inst["phi_next"], float).T}
    arrays |= {"r": _col(inst["r"]), "q": _col(inst["q"])}
    scalars = {ss.alpha_s: hyper["alpha"]}
    if "gamma" in hyper:
        scalars[ss.gamma_s] = hyper["gamma"]
    return arrays, scalars


def sarsa_values(alg, inst, hyper, sizes, c, layer) -> tuple[dict, dict]:
    """Symbol values of an (H) instance (``phi``, ``phi_next``, ``r``, ``w``) and of an (A1) one
    (plus ``g`` (n, d_pi), ``lam``)."""
    arrays = {"Phi": np.asarray(inst["phi"], float).T, "Phi_next": np.asarray(inst["phi_next"], float).T}
    arrays |= {"r": _col(inst["r"]), "w": _col(inst["w"])}
    if "g" in inst:
        arrays |= {"G": np.asarray(inst["g"], float).T, "lambda": _col(inst["lam"])}
    scalars = {ss.alpha_s: hyper["alpha"], ss.gamma_s: hyper["gamma"], ss.c_s: c}
    if "beta" in hyper:
        scalars[ss.beta_s] = hyper["beta"]
    return arrays, scalars


def regression_values(alg, inst, hyper, sizes, c, layer) -> tuple[dict, dict]:
    """Symbol values of an (R1) instance (``X`` (N, d), ``y``, ``xq``); ``A`` the layer's ``A_l``."""
    arrays = {"X": np.asarray(inst["X"], float).T, "y": _col(inst["y"]), "x_q": _col(inst["xq"])}
    scalars = {}
    if "eta" in hyper:
        scalars[ss.eta_s] = hyper["eta"]
    if "A" in hyper:
        arrays["A"] = np.asarray(hyper["A"][layer], dtype=np.float64)
    return arrays, scalars


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
    from . import derive

    worst, cache = 0.0, {}
    for point in points:
        sizes = _sizes_of(alg, point)
        where = ", ".join(f"{k} = {v}" for k, v in sizes.items())
        try:
            inst = alg.draw(sizes, rng)
            hyper = derive.instance_hyper(alg, inst)
            X, last = alg.columns(inst, hyper)
            Z = derive.prompt(alg, np.asarray(X, dtype=np.float64), np.asarray(last, dtype=np.float64))
            n = Z.shape[1] - 1
            subs = _size_subs({**sizes, "n": n})
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
            out = derive.forward(alg, Z, layers, alg.mask(sizes, hyper))
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
    from .derive import sizes_text

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
                    "(all)", f"{alg.name}: all-sizes row NOT claimed ({form.what}): {reason}", res, 0.0, False
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


# ------------------------------------------------------------------ the shipped forms

ZERO = ZeroMatrix(ss.d_s, 1)


def td_precond_values(alg, inst, hyper, sizes, c, layer) -> tuple[dict, dict]:
    """:func:`td_values` with the proof's ``C`` = ``alpha C_l`` of the layer (``C_l = I`` if none)."""
    arrays, scalars = td_values(alg, inst, hyper, sizes, c, layer)
    C = hyper.get("C")
    C_l = np.eye(sizes["d"]) if C is None else np.asarray(C[layer], dtype=np.float64)
    return arrays | {"C": hyper["alpha"] * C_l}, scalars


def td_lambda_values(alg, inst, hyper, sizes, c, layer) -> tuple[dict, dict]:
    """:func:`td_values` with ``M_n`` the context block of the declaration's own mask."""
    arrays, scalars = td_values(alg, inst, hyper, sizes, c, layer)
    n = len(inst["r"])
    return arrays | {"M_n": np.asarray(alg.mask(sizes, hyper), dtype=np.float64)[:n, :n]}, scalars


def average_reward_values(alg, inst, hyper, sizes, c, layer) -> tuple[dict, dict]:
    """:func:`td_values` with ``N_n`` the context block of the shipped running-mean mask."""
    from .algorithms.td_average_reward import running_mean_mask

    arrays, scalars = td_values(alg, inst, hyper, sizes, c, layer)
    n = len(inst["r"])
    return arrays | {"N_n": running_mean_mask(n)[:n, :n]}, scalars


def _heads(layer) -> tuple:
    (P_r, Q_r), (P_v, Q_v) = layer
    return P_r, P_v, Q_r, Q_v


def sarsa_forms() -> list[ProvedForm]:
    """(S4), (S5) (induction) and (S5) at L = 2: one (L1) layer of :func:`symbolic_sizes.sarsa_blocks`."""
    common = dict(
        kind="lsa",
        prompt=ss.sarsa_prompt_expr,
        start=ss.w_vec,
        blocks=ss.sarsa_blocks(),
        update=ss.sarsa_update_expr,
        values=sarsa_values,
    )
    return [
        ProvedForm(ss.prove_sarsa_all_sizes, "one layer = (S2), whole output, c symbolic", **common),
        ProvedForm(
            ss.prove_sarsa_stack_all_sizes,
            "(S5), every L by induction: one layer maps H(z; w) to H(z; w_SARSA)",
            **common,
        ),
        ProvedForm(_sarsa_two_layers, "two layers composed explicitly, no induction", **common),
    ]


def _sarsa_two_layers() -> SymbolicProof:
    return ss.prove_sarsa_composition_all_sizes(2)


def _ac_prompt(p):
    return ss.actor_critic_prompt_expr(*p)


def _ac_update(p):
    return ss.actor_critic_update_expr(*p)


def actor_critic_forms() -> list[ProvedForm]:
    """(A4): one (L1) layer of :func:`symbolic_sizes.actor_critic_blocks` on the (A1) prompt."""
    return [
        ProvedForm(
            ss.prove_actor_critic_all_sizes,
            "actor-critic layer = (A2), whole output, any critic features",
            "lsa",
            _ac_prompt,
            (ss.w_vec, ss.lam_vec),
            ss.actor_critic_blocks(),
            _ac_update,
            sarsa_values,
        )
    ]


def td_forms() -> list[ProvedForm]:
    """(W3): the (W3) induction on :func:`symbolic_sizes.td_blocks` with ``C = alpha I``."""
    blocks = ss.td_blocks(ss.alpha_s * sp.Identity(ss.d_s))
    return [
        ProvedForm(
            ss.prove_td_all_sizes,
            "every L by induction: base + step of the last-row invariant",
            "masked",
            ss.td_prompt_expr,
            ZERO,
            blocks,
            ss.td_update_expr,
            td_values,
        )
    ]


def td_precond_forms() -> list[ProvedForm]:
    """(W4): generic ``C`` per layer (the proof's ``C`` is ``alpha C_l``)."""
    blocks = ss.td_blocks(MatrixSymbol("C", ss.d_s, ss.d_s))
    return [
        ProvedForm(
            ss.prove_td_preconditioned_all_sizes,
            "generic C_l, every L by induction (THEORY's statement)",
            "masked",
            ss.td_prompt_expr,
            ZERO,
            blocks,
            ss.td_precond_update_expr,
            td_precond_values,
        )
    ]


def td_lambda_forms() -> list[ProvedForm]:
    """(W5): the (W3) pair with any context mask ``M_n`` (the declaration's trace mask)."""
    blocks = ss.td_blocks(ss.alpha_s * sp.Identity(ss.d_s))
    return [
        ProvedForm(
            ss.prove_td_lambda_all_sizes,
            "any context mask M_n, every L by induction (THEORY's statement)",
            "masked",
            ss.td_prompt_expr,
            ZERO,
            blocks,
            ss.td_lambda_update_expr,
            td_lambda_values,
            mask=MatrixSymbol("M_n", ss.n_s, ss.n_s),
        )
    ]


def residual_gradient_forms() -> list[ProvedForm]:
    """(W6): :func:`symbolic_sizes.residual_gradient_blocks`."""
    return [
        ProvedForm(
            ss.prove_residual_gradient_all_sizes,
            "every L by induction (THEORY's statement, this Q)",
            "masked",
            ss.td_prompt_expr,
            ZERO,
            ss.residual_gradient_blocks(),
            ss.residual_gradient_update_expr,
            td_values,
        )
    ]


def average_reward_forms() -> list[ProvedForm]:
    """(W7): the two-head layer (any reward mask ``N_n``, here the running-mean mask) and the
    running-mean identity, both linked through the two-head block form."""
    from . import symbolic_sizes_w7 as w7

    P_r, P_v, Q = w7.average_reward_blocks()
    common = dict(
        kind="two_heads",
        prompt=w7.average_reward_prompt_expr,
        start=ZERO,
        blocks=(P_r, P_v, Q, Q),
        update=w7.average_reward_update_expr,
        values=average_reward_values,
        mask=w7.N_n,
        flatten=_heads,
    )
    return [
        ProvedForm(
            w7.prove_td_average_reward_all_sizes,
            "two heads, any reward mask N_n: one layer = one step "
            "with r_i - rbar_i -> (r^T N_n)_i, every L by induction",
            **common,
        ),
        ProvedForm(
            w7.prove_running_mean_mask_all_sizes,
            "running-mean mask entrywise, by a sympy Sum with "
            "symbolic n, i (not block algebra): (r^T N)_i = r_i - rbar_i",
            **common,
        ),
    ]


def _gd_update(w):
    return ss.preconditioned_gd_update_expr(w, -ss.eta_s * sp.Identity(ss.d_s))


def regression_gd_forms() -> list[ProvedForm]:
    """(R2): :func:`symbolic_sizes.regression_blocks` with ``A = -eta I``, one layer from 0."""
    blocks = ss.regression_blocks(-ss.eta_s * sp.Identity(ss.d_s))
    return [
        ProvedForm(
            ss.prove_regression_gd_all_sizes,
            "one GD step from 0 (THEORY's statement)",
            "masked",
            ss.regression_prompt_expr,
            ZERO,
            blocks,
            _gd_update,
            regression_values,
        )
    ]


def preconditioned_gd_forms() -> list[ProvedForm]:
    """(R3): :func:`symbolic_sizes.regression_blocks` with a generic ``A`` per layer (``A_l``)."""
    blocks = ss.regression_blocks(MatrixSymbol("A", ss.d_s, ss.d_s))
    return [
        ProvedForm(
            ss.prove_preconditioned_gd_all_sizes,
            "generic A_l, every L by induction (THEORY's statement)",
            "masked",
            ss.regression_prompt_expr,
            ZERO,
            blocks,
            ss.preconditioned_gd_update_expr,
            regression_values,
        )
    ]

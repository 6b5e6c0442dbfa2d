r"""Every proof level of an :class:`~lsa_theory.constructions.registry.Algorithm`, derived from its
declaration.

- :func:`prompt` assembles ``(X, last)`` into the block's input: (L1) ``H = [[X, 0], [0, last]]``
  or (W2) ``Z = [X, last]``; numeric (float64) or exact (``dtype=object``: sympy expressions, ring elements).
- :func:`residuals`: one numeric instance through the construction's stack, against the naive
  loop. ``readout`` is :math:`\max|TF - \text{ref}| / \max(1, \max|\text{ref}|)` (relative error;
  each entry is a sum of :math:`O(nd)` products of :math:`O(1)` numbers, so its float64 round-off is a
  few ulps times that sum and :data:`READOUT_TOL` = 1e-12 keeps two orders of margin at the [LL]
  size); ``invariant`` is the largest change of what the construction leaves unchanged (exact
  zeros in float64, tolerance 0).
- :func:`prove`: the same identity in exact arithmetic with every instance entry, every
  hyperparameter and the scale ``c`` a symbol, computed with the declaration's one construction in
  the exact ring of :mod:`lsa_theory.constructions.symbolic`: ``lhs - rhs`` is the zero polynomial entry by
  entry, at the declaration's :meth:`~lsa_theory.constructions.registry.Algorithm.symbolic_sizes` (those
  sizes only).
- :func:`verify_rows`: the ``lsa-theory verify`` rows of one declaration.
- :func:`instances`: a hypothesis strategy of ``(sizes, inst, hyper)`` for property sweeps.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from lsa_theory.checks import check_int

from ._residuals import READOUT_TOL, Row, relative_residual
from .registry import Algorithm, forward, instance_hyper, prompt, sizes_text
from .symbolic import Ring, SymbolicProof, exact_lsa_block, exact_masked_block

__all__ = [
    "READOUT_TOL",
    "Residuals",
    "SYMPY_HINT",
    "Row",
    "SymbolicProof",
    "relative_residual",
    "prompt",
    "forward",
    "residuals",
    "prove",
    "verify_rows",
    "random_case",
    "sweep_residuals",
    "instances",
]


@dataclass(frozen=True)
class Residuals:
    """``readout``: relative error of the readout; ``invariant``: largest absolute change of what
    the construction leaves unchanged; ``teacher``: relative error of the vectorised teacher
    against the naive loop (``nan`` where the declaration has none)."""

    readout: float
    invariant: float
    teacher: float = float("nan")


def _check_alg(alg: Any) -> Algorithm:
    if not isinstance(alg, Algorithm):
        raise ValueError(f"alg: expected an Algorithm declaration, got {type(alg).__name__}")
    return alg


def _forward_exact(alg: Algorithm, Z: np.ndarray, layers: list, mask: Any, ring: Any) -> np.ndarray:
    """The stack of ``alg`` on ``dtype=object`` arrays of ring elements
    (:mod:`lsa_theory.constructions.symbolic`):
    the declaration's own ``stack`` if it has one (it receives the ring arrays), else (L1)
    :func:`~lsa_theory.constructions.symbolic.exact_lsa_block` or (W2)
    :func:`~lsa_theory.constructions.symbolic.exact_masked_block` with ``mask`` (default ``diag(I_n, 0)``)."""
    own = getattr(alg, "stack", None)
    if own is not None:
        return ring.array(own(Z, layers, mask))
    n = Z.shape[1] - 1
    if alg.block == "lsa":
        for P, V in layers:
            Z = exact_lsa_block(Z, P, V)
        return Z
    M = ring.array(np.diag([1] * n + [0]) if mask is None else mask)
    for P, V in layers:
        Z = exact_masked_block(Z, P, V, M)
    return Z


class DeclarationError(ValueError):
    """An error raised while checking a user's declaration: names the declaration, the method whose
    call (or whose output's check) failed, and what it was called with (sizes, scalar
    hyperparameters, ``c``, ``depth``), then the original message."""

    def __init__(self, name: str, method: str, called_with: str, message: str):
        self.name, self.method, self.called_with = name, method, called_with
        super().__init__(f"declaration {name!r}, {method}: {message} (called with {called_with})")


def _called_with(sizes: Mapping[str, Any], hyper: Mapping[str, Any] | None, **more: Any) -> str:
    """The sizes, the scalar hyperparameters (arrays by shape) and ``more`` of a failed call, as text."""
    parts = [f"sizes {dict(sizes)}"]
    if hyper:
        shown = {}
        for key, value in hyper.items():
            arr = np.asarray(value) if not isinstance(value, str) else None
            shown[key] = value if arr is None or arr.ndim == 0 else f"array{arr.shape}"
        parts.append(f"hyper {shown}")
    parts += [f"{k} = {v}" for k, v in more.items()]
    return ", ".join(parts)


def residuals(
    alg: Algorithm,
    inst: Mapping[str, Any],
    sizes: Mapping[str, int],
    hyper: Mapping | None = None,
    c: float = 1.0,
    depth: int = 1,
) -> Residuals:
    """One instance through ``depth`` layers of ``alg``'s construction (scale ``c``) against
    ``alg.naive``: see the module docstring for the two residuals. Any error while doing so is a
    :class:`DeclarationError` naming the declaration, the method (``columns``, ``construction``,
    ``mask``, ``naive``, ``readout``, ``invariant``, ``teacher_readout``) and the sizes,
    hyperparameters, ``c`` and ``depth`` it was called with."""
    _check_alg(alg)
    depth = check_int(depth, "depth")
    hyper = instance_hyper(alg, inst, hyper)
    step = ["columns"]
    try:
        return _residuals(alg, inst, sizes, hyper, c, depth, step)
    except DeclarationError:
        raise
    except Exception as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        if not isinstance(exc, ValueError):
            message = f"{type(exc).__name__}: {message}"
        raise DeclarationError(
            alg.name, step[0], _called_with(sizes, hyper, c=c, depth=depth), message
        ) from exc


def _residuals(alg, inst, sizes, hyper, c, depth, step: list[str]) -> Residuals:
    """:func:`residuals`, recording in ``step[0]`` the method whose call or output is at hand."""
    X, last = alg.columns(inst, hyper)
    X, last = np.asarray(X, dtype=np.float64), np.asarray(last, dtype=np.float64)
    for what, value in (("X", X), ("last", last)):
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{what} of shape {value.shape} contains NaN or inf")
    Z = prompt(alg, X, last)
    step[0] = "construction"
    layers = alg.construction(sizes, hyper, c, depth)
    if len(layers) != depth:
        raise ValueError(f"{alg.name}.construction: expected {depth} layers, got {len(layers)}")
    step[0] = "mask"
    mask = alg.mask(sizes, hyper)
    step[0] = "construction (the stack's forward pass on the columns' prompt)"
    Z_out = forward(alg, Z, layers, mask)
    step[0] = "naive"
    ref = np.asarray(alg.naive(inst, hyper, depth), dtype=np.float64)
    step[0] = "readout"
    out = alg.readout(Z_out, sizes)
    step[0] = "readout against naive"
    res = relative_residual(out, ref)
    step[0] = "invariant"
    inv = np.asarray(alg.invariant(Z, Z_out, np.asarray(X).shape[0], ref.size), dtype=np.float64)
    teacher = getattr(alg, "teacher_readout", None)
    t_res = float("nan")
    if teacher is not None:
        step[0] = "teacher_readout against naive"
        t_res = relative_residual(teacher(inst, hyper, depth), ref)
    return Residuals(res, float(np.abs(inv).max(initial=0.0)), t_res)


def _symbolic_hyper(hyper: Mapping[str, Any]) -> dict[str, Any]:
    import sympy as sp

    out = {}
    for key, value in hyper.items():
        arr = np.asarray(value)
        if arr.dtype.kind not in "fiu" or isinstance(value, bool):
            out[key] = value
        elif arr.ndim == 0:
            out[key] = sp.Symbol(key, real=True)
        else:
            sym = np.empty(arr.shape, dtype=object)
            for idx in np.ndindex(arr.shape):
                sym[idx] = sp.Symbol("_".join([key, *map(str, idx)]), real=True)
            out[key] = sym
    return out


def prove(alg: Algorithm, sizes: Mapping[str, int] | None = None, depth: int = 1) -> SymbolicProof:
    """The identity of ``alg`` at ``depth`` layers as a polynomial identity at fixed ``sizes``
    (default :meth:`~lsa_theory.constructions.registry.Algorithm.symbolic_sizes`): every instance entry,
    every numeric hyperparameter and the scale ``c`` are symbols (``c`` only where the
    declaration claims the scaling symmetry). Counts the readout and invariant entries of
    ``lhs - rhs`` that are not the zero polynomial. Proves those sizes only.

    Backend: the exact ring of :class:`~lsa_theory.constructions.symbolic.Ring` (``QQ[symbols]``, the field
    ``QQ(symbols)`` when ``c`` is a symbol). The columns, the construction
    (:meth:`~lsa_theory.constructions.registry.Algorithm.construction_symbolic`, by default the one
    :meth:`~lsa_theory.constructions.registry.Algorithm.construction` called on the symbols) and the mask
    are built from sympy symbols and converted entry by entry (a non-polynomial entry such as
    ``rho ** 0.5`` becomes a generator of its own, so it does not square back to ``rho``); the
    forward pass and the naive loop run on ring elements."""
    import sympy as sp

    t0 = time.perf_counter()
    _check_alg(alg)
    depth = check_int(depth, "depth")
    sizes = dict(alg.symbolic_sizes() if sizes is None else sizes)
    inst = alg.symbolic_instance(sizes)
    hyper = _symbolic_hyper(instance_hyper(alg, alg.draw(sizes, np.random.default_rng(0))))
    c = sp.Symbol("c", real=True, nonzero=True) if len(alg.scales) > 1 else 1
    X, last = alg.columns(inst, hyper)
    layers = alg.construction_symbolic(sizes, hyper, c, depth)
    mask = alg.mask(sizes, hyper)
    built = [np.asarray(X, dtype=object), np.asarray(last, dtype=object), layers, mask]
    ring = Ring(inst, hyper, c, atoms=tuple(_atoms(built)), field=not isinstance(c, int))
    inst_r, hyper_r = ring.tree(inst), ring.tree(hyper)
    Z = prompt(alg, ring.array(X), ring.array(last))
    layers = [tuple(ring.tree(M) for M in layer) for layer in layers]
    Z_out = _forward_exact(alg, Z, layers, None if mask is None else ring.array(mask), ring)
    lhs = ring.array(np.asarray(alg.readout(Z_out, sizes), dtype=object).ravel())
    rhs = ring.array(np.asarray(alg.naive(inst_r, hyper_r, depth), dtype=object).ravel())
    if lhs.shape != rhs.shape:
        raise ValueError(f"{alg.name}: readout has {lhs.shape[0]} entries, naive {rhs.shape[0]}")
    inv = ring.array(np.asarray(alg.invariant(Z, Z_out, X.shape[0], rhs.size), dtype=object).ravel())
    entries = [*(lhs - rhs), *inv]
    nonzero = sum(1 for e in entries if e != ring.zero)
    label = alg.depth_claims.get(depth, alg.claim)
    # S and A only shape the draw: every entry of the proof's instance is a free symbol
    covered = {k: v for k, v in sizes.items() if k not in ("S", "A")}
    return SymbolicProof(label, {**covered, "L": depth}, len(entries), nonzero, time.perf_counter() - t0)


def _atoms(obj: Any) -> list:
    """The non-polynomial atoms (powers with a non-integer exponent, functions) of the sympy
    entries in ``obj`` (nested sequences, object arrays, sympy matrices): generators of their own
    in the proof's ring."""
    import sympy as sp

    if isinstance(obj, list | tuple):
        return [a for o in obj for a in _atoms(o)]
    if isinstance(obj, np.ndarray) and obj.dtype == object:
        return _atoms(list(obj.ravel()))
    if isinstance(obj, sp.MatrixBase):
        return _atoms(list(obj))
    if isinstance(obj, sp.Basic):
        pows = [p for p in obj.atoms(sp.Pow) if not p.exp.is_Integer]
        return pows + list(obj.atoms(sp.Function))
    return []


#: Appended to a failed sympy row when every float row passed (docs/extending.md, "Pitfalls").
SYMPY_HINT = (
    "the float and sympy levels disagree: check for operations that are not exact in sympy "
    "(float powers like ** 0.5, numpy functions)"
)


def verify_rows(
    alg: Algorithm, rng: np.random.Generator, quick: bool = False, k: int | None = None, *, progress=None
) -> list[Row]:
    """The ``verify`` rows of one declaration: for each depth, the readout against the naive
    loop over ``k`` random instances (default 4 quick, 20 full) and every scale, the invariant
    (tolerance 0), the vectorised teacher where declared, and the fixed-size sympy identity.
    ``progress``: called with one line of text as each level starts (``lsa-theory verify`` prints
    them on stderr)."""
    _check_alg(alg)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected numpy.random.Generator, got {type(rng).__name__}")
    say = progress if progress is not None else (lambda line: None)
    sizes = alg.sizes(quick)
    k = (4 if quick else 20) if k is None else check_int(k, "k")
    by_depth: dict[int, dict[str, list[float]]] = {L: {"r": [], "i": [], "t": []} for L in alg.depths}
    say(f"{alg.name}: numeric level, block = naive loop, {k} instances, {sizes_text(sizes)}")
    for _ in range(k):
        try:
            inst = alg.draw(sizes, rng)
        except DeclarationError:
            raise
        except Exception as exc:
            message = " ".join(str(exc).split()) or type(exc).__name__
            raise DeclarationError(alg.name, "draw", _called_with(sizes, None), message) from exc
        for L in alg.depths:
            for c in alg.scales:
                res = residuals(alg, inst, sizes, c=c, depth=L)
                by_depth[L]["r"].append(res.readout)
                by_depth[L]["i"].append(res.invariant)
                if not np.isnan(res.teacher):
                    by_depth[L]["t"].append(res.teacher)
    rows = []
    where = f"{k} instances, {sizes_text(sizes)}"
    scales = f", c in {alg.scales}" if len(alg.scales) > 1 else ""
    for L, acc in by_depth.items():
        label = alg.depth_claims.get(L, alg.claim)
        rows.append(
            Row.against(
                label,
                f"{alg.name}, L = {L}: {alg.statement}; block = naive loop, {where}{scales}",
                max(acc["r"]),
                READOUT_TOL,
            )
        )
        rows.append(
            Row.against(label, f"{alg.name}, L = {L}: {_invariant_text(alg)} unchanged", max(acc["i"]), 0.0)
        )
        if acc["t"]:
            rows.append(
                Row.against(
                    label, f"{alg.name}, L = {L}: vectorised teacher = naive loop", max(acc["t"]), READOUT_TOL
                )
            )
    say(f"{alg.name}: property sweep over random sizes and hyperparameters")
    sweep = sweep_residuals(alg, rng, n_examples=10 if quick else 40)
    rows.append(
        Row.against(
            alg.claim,
            f"{alg.name}: property sweep, {len(sweep)} random sizes and hyperparameters in "
            f"{alg.size_ranges()} / {dict(alg.hyper_ranges)}, every depth and scale",
            max(sweep),
            READOUT_TOL,
        )
    )
    from .proof_link import link_rows

    say(f"{alg.name}: all-sizes link")
    rows.extend(link_rows(alg, rng))  # all-sizes rows, each claimed only once linked to the construction
    floats_pass = all(r.passed for r in rows)
    for L in alg.symbolic_depths or alg.depths[:2]:
        say(f"{alg.name}: sympy level, L = {L}, at {sizes_text(alg.symbolic_sizes())}")
        try:
            proof = prove(alg, depth=L)
        except DeclarationError:
            raise
        except Exception as exc:
            message = " ".join(str(exc).split()) or type(exc).__name__
            where = _called_with(alg.symbolic_sizes(), None, depth=L)
            raise DeclarationError(alg.name, "sympy level (methods on symbols)", where, message) from exc
        hint = "" if proof.holds or not floats_pass else f"; {SYMPY_HINT}"
        rows.append(
            Row(
                proof.claim,
                f"{alg.name}: sympy identity, every entry symbolic (these sizes only: "
                f"{sizes_text(proof.sizes)}){hint}",
                float(proof.nonzero),
                0.0,
                proof.holds,
            )
        )
    return rows


def random_case(alg: Algorithm, rng: np.random.Generator) -> tuple[dict, dict, dict]:
    """``(sizes, inst, hyper)``: sizes uniform in ``alg.size_ranges()``, the scalar
    hyperparameters of ``alg.hyper_ranges`` uniform in their ranges (``hyper`` holds only those;
    the others come from the defaults and the instance), an instance from ``alg.draw``."""
    sizes = {key: int(rng.integers(lo, hi + 1)) for key, (lo, hi) in alg.size_ranges().items()}
    hyper = {}
    for key, (lo, hi) in alg.hyper_ranges.items():
        hyper[key] = float(rng.uniform(lo, hi))
    return sizes, alg.draw(sizes, rng), hyper


def sweep_residuals(alg: Algorithm, rng: np.random.Generator, n_examples: int = 40) -> list[float]:
    """Readout residuals against the naive loop over ``n_examples`` :func:`random_case` draws, at
    every declared depth and scale (the seeded counterpart of the hypothesis sweeps)."""
    out = []
    for _ in range(check_int(n_examples, "n_examples")):
        sizes, inst, hyper = random_case(alg, rng)
        for L in alg.depths:
            for c in alg.scales:
                out.append(residuals(alg, inst, sizes, hyper, c=c, depth=L).readout)
    return out


def _invariant_text(alg: Algorithm) -> str:
    if type(alg).invariant is not Algorithm.invariant:
        return getattr(alg, "invariant_text", "invariant entries")
    return (
        "context columns and the parameter column outside the readout"
        if alg.block == "lsa"
        else "all rows but the last"
    )


def instances(alg: Algorithm):
    """A hypothesis strategy of ``(sizes, inst, hyper)`` for ``alg``: sizes in its
    :meth:`~lsa_theory.constructions.registry.Algorithm.size_ranges`, scalar hyperparameters in its
    ``hyper_ranges`` (others at their defaults) and an instance drawn by ``alg.draw`` from a
    generator seeded by hypothesis. Needs the ``dev`` extra (hypothesis)."""
    from hypothesis import strategies as st

    _check_alg(alg)
    ranges = alg.size_ranges()

    @st.composite
    def build(draw):
        sizes = {key: draw(st.integers(lo, hi)) for key, (lo, hi) in ranges.items()}
        hyper = {}
        for key, (lo, hi) in alg.hyper_ranges.items():
            hyper[key] = draw(st.floats(lo, hi, allow_nan=False, allow_infinity=False))
        seed = draw(st.integers(0, 2**32 - 1))
        inst = alg.draw(sizes, np.random.default_rng(seed))
        return sizes, inst, hyper

    return build()

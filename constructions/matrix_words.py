r"""Canonical form of matrix expressions with symbolic sizes, for the all-sizes proofs.

A sympy matrix expression built from ``MatrixSymbol``\ s (shapes in symbolic ``d``, ``n``, ...),
``Identity``, ``ZeroMatrix``, sums, products, transposes and scalar factors is expanded into a
**normal form**: a dict ``word -> coefficient``, where a word is a tuple of atoms ``(name,
transposed)`` (a product of matrix symbols) and the coefficient is a sympy scalar (a rational
function of ``alpha``, ``c``, ``gamma``, ``n``, ...). The rewriting uses only rules that hold for
**every** value of the sizes and of the symbols:

1. distributivity and associativity of the matrix product (positive integer powers written out),
   and linearity of the transpose,
   ``(A B)^T = B^T A^T``, ``(A^T)^T = A``; identities ``I_k`` are the empty word, zero blocks
   the empty sum;
2. a sub-word whose two ends have the literal size 1 (e.g. ``w^T Phi r`` inside ``u w^T Phi r``)
   is a scalar: it commutes with the rest of the word and equals its transpose. A word is cut at
   every interior position of literal size 1; the scalar segments are replaced by the smaller of
   themselves and their transpose (a fixed total order on words) and sorted. A symbolic size such
   as ``d`` is never taken to be 1, so rule 2 fires only where it is valid for every size;
3. coefficients of equal canonical words are added and ``sympy.cancel``\ led (valid where no
   denominator vanishes: the proofs divide by ``n >= 1`` and the scale ``c != 0`` only).

Hence if the normal form of ``lhs - rhs`` is empty, ``lhs = rhs`` holds for all sizes and all
values of the symbols. The converse is not claimed (the normal form is sound, not complete), so a
non-empty residual means "not proved", and the tests show that each construction perturbed on
purpose leaves a non-empty residual. :func:`evaluate` and :func:`evaluate_form` evaluate an
expression and a normal form at concrete sizes in float64, so the tests can check the normaliser
itself against direct numerical evaluation, and :func:`roundoff_bound` bounds the float64 error of
such an evaluation (any summation order), so that the comparison of two evaluations of one exact
quantity has a stated tolerance. An :class:`Obligation` is one identity ``lhs = rhs`` of an
all-sizes proof, with the prompt and layers it was built from (for the direct evaluation against
the numeric forward pass, :mod:`lsa_theory.constructions.proof_link`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp
from sympy.matrices.expressions import (
    BlockMatrix,
    Identity,
    MatAdd,
    MatMul,
    MatPow,
    MatrixSymbol,
    Transpose,
    ZeroMatrix,
    block_collapse,
)

from lsa_theory.roundoff import gamma

__all__ = [
    "Word",
    "normal_form",
    "block_residuals",
    "atoms_of",
    "evaluate",
    "evaluate_form",
    "roundoff_bound",
    "collapse",
    "Obligation",
]

#: A word: a tuple of ``(symbol name, transposed)`` atoms, read left to right as a matrix product.
Word = tuple[tuple[str, bool], ...]


def _transpose_word(word: Word) -> Word:
    return tuple((name, not t) for name, t in reversed(word))


def _expand(expr, shapes: dict) -> dict[Word, sp.Expr]:
    """Rule 1: distribute every product over every sum; returns raw ``word -> coefficient``."""
    if isinstance(expr, BlockMatrix):
        if expr.blockshape != (1, 1):
            raise TypeError(f"normal_form: compare a {expr.blockshape} block matrix blockwise")
        return _expand(expr.blocks[0, 0], shapes)
    if isinstance(expr, MatrixSymbol):
        name = expr.name
        if shapes.setdefault(name, expr.shape) != expr.shape:
            raise ValueError(f"normal_form: two matrix symbols named {name!r} with different shapes")
        return {((name, False),): sp.Integer(1)}
    if isinstance(expr, Identity):
        return {(): sp.Integer(1)}
    if isinstance(expr, ZeroMatrix):
        return {}
    if isinstance(expr, Transpose):
        return {_transpose_word(w): c for w, c in _expand(expr.arg, shapes).items()}
    if isinstance(expr, MatAdd):
        out: dict[Word, sp.Expr] = {}
        for term in expr.args:
            for w, c in _expand(term, shapes).items():
                out[w] = out.get(w, 0) + c
        return out
    if isinstance(expr, MatMul):
        coeff, mats = expr.as_coeff_matrices()
        acc: dict[Word, sp.Expr] = {(): sp.sympify(coeff)}
        for m in mats:
            factor = _expand(m, shapes)
            acc = {w1 + w2: c1 * c2 for w1, c1 in acc.items() for w2, c2 in factor.items()}
            # products can merge words only after canonicalisation, so no collection here
        return acc
    if isinstance(expr, MatPow) and expr.exp.is_Integer and expr.exp >= 1:
        return _expand(MatMul(*([expr.base] * int(expr.exp)), evaluate=False), shapes)
    raise TypeError(f"normal_form: unsupported matrix expression {type(expr).__name__}: {expr}")


def _dims(word: Word, shapes: Mapping) -> list:
    """Boundary sizes ``b_0 .. b_k`` of a word (``b_{i-1} x b_i`` is the shape of atom i)."""
    if not word:
        return []
    rows = []
    for name, t in word:
        r, c = shapes[name]
        rows.append((c, r) if t else (r, c))
    for (_, c1), (r2, _) in zip(rows, rows[1:], strict=False):
        if sp.expand(c1 - r2) != 0:
            raise ValueError(f"normal_form: inconsistent sizes in the product {word}")
    return [rows[0][0]] + [c for _, c in rows]


def _canonical_word(word: Word, shapes: Mapping) -> Word:
    """Rule 2: cut at literal size-1 positions; canonical transpose and order of scalar segments."""
    dims = _dims(word, shapes)
    cuts = [i for i, b in enumerate(dims) if b == 1]
    if not cuts:
        return word
    prefix, suffix = word[: cuts[0]], word[cuts[-1] :]
    scalars = []
    for a, b in zip(cuts, cuts[1:], strict=False):
        seg = word[a:b]
        scalars.append(min(seg, _transpose_word(seg)))
    scalars.sort()
    return prefix + tuple(a for seg in scalars for a in seg) + suffix


def normal_form(expr) -> dict[Word, sp.Expr]:
    """Normal form (rules 1-3 of the module docstring) of a matrix expression: ``word -> coeff``
    with every coefficient non-zero after ``sympy.cancel``; ``{}`` means the zero matrix."""
    shapes: dict = {}
    raw = _expand(expr, shapes)
    out: dict[Word, sp.Expr] = {}
    for w, c in raw.items():
        cw = _canonical_word(w, shapes)
        out[cw] = out.get(cw, 0) + c
    return {w: c for w, c in ((w, sp.cancel(sp.together(c))) for w, c in out.items()) if c != 0}


def atoms_of(form: Mapping[Word, sp.Expr]) -> set[str]:
    """Names of the matrix symbols occurring in a normal form."""
    return {name for w in form for name, _ in w}


def _as_blocks(expr, rows, cols) -> list[list]:
    if isinstance(expr, BlockMatrix):
        if tuple(expr.rowblocksizes) != tuple(rows) or tuple(expr.colblocksizes) != tuple(cols):
            raise ValueError(
                f"block_residuals: block sizes {expr.rowblocksizes} x {expr.colblocksizes} "
                f"differ from {rows} x {cols}"
            )
        return [[expr.blocks[i, j] for j in range(len(cols))] for i in range(len(rows))]
    if len(rows) == 1 and len(cols) == 1:
        return [[expr]]
    raise TypeError(f"block_residuals: expected a BlockMatrix, got {type(expr).__name__}")


def block_residuals(lhs, rhs, rows, cols) -> list[dict[Word, sp.Expr]]:
    """Normal form of ``lhs - rhs`` block by block (row-major), for two block matrices with row
    block sizes ``rows`` and column block sizes ``cols``; every entry ``{}`` means ``lhs = rhs``."""
    L, R = _as_blocks(lhs, rows, cols), _as_blocks(rhs, rows, cols)
    out = []
    for i in range(len(rows)):
        for j in range(len(cols)):
            if L[i][j].shape != R[i][j].shape:
                raise ValueError(
                    f"block_residuals: block ({i}, {j}) shapes {L[i][j].shape} vs {R[i][j].shape}"
                )
            a, b = normal_form(L[i][j]), normal_form(R[i][j])
            # every word of either side: a word on one side only is a non-zero residual
            diff = {w: sp.cancel(a.get(w, 0) - b.get(w, 0)) for w in set(a) | set(b)}
            out.append({w: c for w, c in diff.items() if c != 0})
    return out


def _value(expr, subs: Mapping) -> sp.Expr:
    """``expr`` with its symbols replaced by the numbers of ``subs`` (``xreplace``: exact symbol
    replacement, each operation evaluated once in sympy's arithmetic; 10x faster than ``subs``)."""
    return sp.sympify(expr).xreplace({k: sp.sympify(v) for k, v in subs.items()})


def _size(expr, sizes: Mapping) -> int:
    return int(_value(expr, sizes))


def evaluate(expr, arrays: Mapping[str, np.ndarray], sizes: Mapping, scalars: Mapping) -> np.ndarray:
    """float64 value of a matrix expression (including block matrices) with each matrix symbol
    replaced by ``arrays[name]``, size symbols by ``sizes`` and scalar symbols by ``scalars``;
    independent of :func:`normal_form`, for testing it."""
    if isinstance(expr, BlockMatrix):
        return np.block([[evaluate(b, arrays, sizes, scalars) for b in row] for row in expr.blocks.tolist()])
    if isinstance(expr, MatrixSymbol):
        return np.asarray(arrays[expr.name], dtype=np.float64)
    if isinstance(expr, Identity):
        return np.eye(_size(expr.rows, sizes))
    if isinstance(expr, ZeroMatrix):
        return np.zeros((_size(expr.rows, sizes), _size(expr.cols, sizes)))
    if isinstance(expr, Transpose):
        return evaluate(expr.arg, arrays, sizes, scalars).T
    if isinstance(expr, MatAdd):
        return sum(evaluate(t, arrays, sizes, scalars) for t in expr.args)
    if isinstance(expr, MatMul):
        coeff, mats = expr.as_coeff_matrices()
        out = float(_value(coeff, {**sizes, **scalars}))
        value = evaluate(mats[0], arrays, sizes, scalars)
        for m in mats[1:]:
            value = value @ evaluate(m, arrays, sizes, scalars)
        return out * value
    if isinstance(expr, MatPow) and expr.exp.is_Integer and expr.exp >= 1:
        return np.linalg.matrix_power(evaluate(expr.base, arrays, sizes, scalars), int(expr.exp))
    raise TypeError(f"evaluate: unsupported matrix expression {type(expr).__name__}")


def evaluate_form(
    form: Mapping[Word, sp.Expr], shape: tuple[int, int], arrays: Mapping[str, np.ndarray], scalars: Mapping
) -> np.ndarray:
    """float64 value of a normal form of numeric ``shape``; ``scalars`` maps every scalar symbol
    (sizes included) to a number, ``arrays`` every matrix symbol name to an array."""
    out = np.zeros(shape)
    for word, coeff in form.items():
        value = np.eye(shape[0]) if not word else None
        for name, t in word:
            a = np.asarray(arrays[name], dtype=np.float64)
            a = a.T if t else a
            value = a if value is None else value @ a
        out = out + float(_value(coeff, scalars)) * value
    return out


def _coeff_abs(coeff, subs: Mapping) -> tuple[float, int]:
    """``(|coeff|_abs, K)`` of a scalar coefficient: the sum of the absolute values of its expanded
    terms and the number of float operations that evaluate it (``count_ops + 1``, one rounding each)."""
    terms, k = _terms_and_ops(sp.sympify(coeff))
    return sum(abs(float(_value(t, subs))) for t in terms), k


@functools.lru_cache(maxsize=4096)
def _terms_and_ops(coeff: sp.Expr) -> tuple[tuple, int]:
    return sp.Add.make_args(sp.expand(coeff)), int(sp.count_ops(coeff)) + 1


def _abs_eval(expr, arrays: Mapping, sizes: Mapping, scalars: Mapping) -> tuple[np.ndarray, int]:
    """``(|expr|_abs, K)``: the expression evaluated with every matrix and scalar replaced by its
    absolute value and every sum by a sum of absolute values, and a count ``K`` of roundings that
    any term of its expansion goes through (see :func:`roundoff_bound`)."""
    if isinstance(expr, BlockMatrix):
        parts = [[_abs_eval(b, arrays, sizes, scalars) for b in row] for row in expr.blocks.tolist()]
        return np.block([[v for v, _ in row] for row in parts]), max(k for row in parts for _, k in row)
    if isinstance(expr, MatrixSymbol):
        return np.abs(np.asarray(arrays[expr.name], dtype=np.float64)), 0
    if isinstance(expr, Identity | ZeroMatrix):
        return np.abs(evaluate(expr, arrays, sizes, scalars)), 0
    if isinstance(expr, Transpose):
        value, k = _abs_eval(expr.arg, arrays, sizes, scalars)
        return value.T, k
    if isinstance(expr, MatAdd):
        parts = [_abs_eval(t, arrays, sizes, scalars) for t in expr.args]
        return sum(v for v, _ in parts), max(k for _, k in parts) + len(parts) - 1
    if isinstance(expr, MatMul):
        coeff, mats = expr.as_coeff_matrices()
        c_abs, k = _coeff_abs(coeff, {**sizes, **scalars})
        value, k_mat = _abs_eval(mats[0], arrays, sizes, scalars)
        k += k_mat + 1
        for m in mats[1:]:
            factor, k_f = _abs_eval(m, arrays, sizes, scalars)
            k += k_f + value.shape[1]
            value = value @ factor
        return c_abs * value, k
    if isinstance(expr, MatPow) and expr.exp.is_Integer and expr.exp >= 1:
        return _abs_eval(MatMul(*([expr.base] * int(expr.exp)), evaluate=False), arrays, sizes, scalars)
    raise TypeError(f"roundoff_bound: unsupported matrix expression {type(expr).__name__}")


def roundoff_bound(expr, arrays: Mapping[str, np.ndarray], sizes: Mapping, scalars: Mapping) -> np.ndarray:
    r"""Entrywise bound :math:`\gamma_K |e|_{\rm abs}` on :math:`|\mathrm{fl}(e) - e|` for any
    float64 evaluation of the matrix expression ``e`` (shape of :func:`evaluate`'s value) from
    exact inputs ``arrays`` and ``scalars``, in any association of its products and any summation
    order (so it bounds :func:`evaluate` and a numeric forward pass computing the same tree alike).

    Every entry of ``e`` is a sum of terms, each a product of input entries and scalar coefficients;
    in floating point each term is multiplied by at most ``K`` factors ``(1 + delta)``,
    ``|delta| <= u``, so (Higham, Lemma 3.1 and §3.5) the error is at most :math:`\gamma_K` times
    the sum of the absolute values of the terms, :math:`|e|_{\rm abs}` (``e`` evaluated with
    absolute values, sums of absolute values for sums). ``K`` is counted recursively: 0 for an
    input; a sum of ``t`` terms adds ``t - 1``; a product adds each factor's ``K``, each inner
    dimension (``k`` roundings of an inner product of length ``k``), the coefficient's operations
    plus one and one for the scaling; transposes and block assembly are exact. Valid while
    ``K u < 1`` (else ValueError from :func:`lsa_theory.roundoff.gamma`)."""
    value, k = _abs_eval(expr, arrays, sizes, scalars)
    return gamma(k) * value


@functools.lru_cache(maxsize=32)
def collapse(expr):
    """``sympy.block_collapse(expr)``, cached (an obligation's lhs is collapsed once per process)."""
    return block_collapse(expr)


@dataclass(frozen=True)
class Obligation:
    """One identity ``lhs = rhs`` of an all-sizes proof, compared block by block.

    ``lhs`` is the un-collapsed matrix expression (``layers`` applied to ``prompt``, or a prompt
    expression alone for an induction's base case, ``prompt is None``), ``rhs`` the target, a block
    matrix on ``rows`` x ``cols`` (block sizes). ``select = (i, j)``: the identity is about block
    ``(i, j)`` of the collapsed ``lhs`` only ((L2)'s readout), ``rhs`` that block. ``layers``: one
    ``(kind, blocks, mask)`` per layer as applied in ``lhs``, ``kind`` ``"lsa"`` ((L1), blocks
    ``(P, V)``), ``"masked"`` ((W2), ``(P, Q)``, ``mask`` the n x n context mask or None for
    ``I_n``) or ``"two_heads"`` ((W7), ``(P_r, P_v, Q)``, ``mask`` the reward head's)."""

    what: str
    lhs: Any
    rhs: Any
    rows: tuple
    cols: tuple
    prompt: Any = None
    layers: tuple = ()
    select: tuple[int, int] | None = None

    def residuals(self) -> list[dict[Word, sp.Expr]]:
        """:func:`block_residuals` of the collapsed ``lhs`` (its ``select`` block) against ``rhs``."""
        out = collapse(self.lhs)
        if self.select is not None:
            out = out.blocks[self.select]
        return block_residuals(out, self.rhs, self.rows, self.cols)

r"""Round-off model of float64 quantities as computed, and verdicts that must survive rounding.

A check near the float64 floor is sized from a bound on the error of the quantity *as computed*
(Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., §3.1-3.5), never from the
rounding of one machine. With unit round-off :math:`u = \epsilon / 2` and

.. math::

    \gamma_k = \frac{k u}{1 - k u} \qquad (k u < 1),

recursive summation, inner products and matrix products obey, entrywise,

.. math::

    |\mathrm{fl}(\textstyle\sum_{i=1}^k x_i) - \sum_i x_i| \le \gamma_{k-1} \sum_i |x_i|, \qquad
    |\mathrm{fl}(a^T b) - a^T b| \le \gamma_k\, |a|^T |b|, \qquad
    |\mathrm{fl}(A B) - A B| \le \gamma_k\, |A|\,|B| ,

whatever order a BLAS kernel sums in (the bounds hold for every order, hence on every CPU).
A quantity whose computed value is within its bound of a threshold has no resolvable verdict;
named bounds of the package's quantities are built from these primitives in the modules that
compute them.

Robustness to rounding, operationally: :func:`perturbed` multiplies every float of an input by
:math:`1 + \rho u_j`, :math:`u_j \sim U(-1, 1)` independent, :math:`\rho = 10^{-13}` by default (far above
any difference of summation order, far below anything mathematical), and
:func:`verdicts_under_perturbation` reruns a check on the input and on ``copies`` such copies. A
verdict that differs across the copies is decided by rounding, not by the mathematics: this is what
another machine's BLAS kernel would see.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

#: unit round-off of float64, u = eps / 2
UNIT_ROUNDOFF = float(np.finfo(np.float64).eps) / 2.0

#: default relative size of the perturbations standing in for another machine's rounding
PERTURBATION = 1e-13


def gamma(k: int | float) -> float:
    r"""Higham's :math:`\gamma_k = k u / (1 - k u)` for float64; ValueError unless ``0 <= k u < 1``."""
    k = float(k)
    if not np.isfinite(k) or k < 0:
        raise ValueError(f"k: expected a non-negative count, got {k}")
    ku = k * UNIT_ROUNDOFF
    if ku >= 1.0:
        raise ValueError(f"k: k * u = {ku} >= 1, the bound gamma_k does not exist")
    return ku / (1.0 - ku)


def sum_error_bound(terms: Any, axis: int | None = None) -> np.ndarray | float:
    r"""Bound :math:`\gamma_{k-1} \sum_i |x_i|` on the error of the computed sum of ``terms``
    (summed over ``axis``, all entries by default; ``k`` the number of terms summed)."""
    x = np.abs(np.asarray(terms, dtype=np.float64))
    k = x.size if axis is None else x.shape[axis]
    return gamma(max(k - 1, 0)) * x.sum(axis=axis)


def matmul_error_bound(A: Any, B: Any) -> np.ndarray:
    r"""Entrywise bound :math:`\gamma_k |A| |B|` on the error of the computed ``A @ B``, shapes
    ``(m, k) x (k, p) -> (m, p)`` (vectors as in ``numpy.matmul``); inner products are the case
    ``m = p = 1``."""
    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    k = A.shape[-1]
    return gamma(k) * (np.abs(A) @ np.abs(B))


def perturbed(tree: Any, rng: np.random.Generator, rel: float = PERTURBATION) -> Any:
    r"""A copy of ``tree`` with every float multiplied by :math:`1 + \rho u_j`, :math:`u_j \sim U(-1, 1)`.

    ``tree``: a float or float ndarray, or a (nested) dict, list, tuple or dataclass of them; other
    leaves (ints, bools, strings, None, integer arrays, generators) are returned unchanged, so
    sizes, seeds and flags are never moved. Shapes and dtypes are kept; the input is not modified.
    """
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected numpy.random.Generator, got {type(rng).__name__}")
    rel = float(rel)
    if not (np.isfinite(rel) and 0.0 <= rel < 1e-3):
        raise ValueError(f"rel: expected a relative size in [0, 1e-3), got {rel}")

    def walk(x: Any) -> Any:
        if isinstance(x, bool | np.bool_):
            return x
        if isinstance(x, float | np.floating):
            return type(x)(x * (1.0 + rel * rng.uniform(-1.0, 1.0)))
        if isinstance(x, np.ndarray):
            if x.dtype.kind != "f":
                return x.copy()
            return x * (1.0 + rel * rng.uniform(-1.0, 1.0, size=x.shape)).astype(x.dtype)
        if isinstance(x, dict):
            return {k: walk(v) for k, v in x.items()}
        if isinstance(x, tuple) and hasattr(x, "_fields"):
            return type(x)(*(walk(v) for v in x))
        if isinstance(x, list | tuple):
            return type(x)(walk(v) for v in x)
        if dataclasses.is_dataclass(x) and not isinstance(x, type):
            changes = {f.name: walk(getattr(x, f.name)) for f in dataclasses.fields(x) if f.init}
            return dataclasses.replace(x, **changes)
        return x

    return walk(tree)


def verdicts_under_perturbation(
    check: Callable[[Any], Any],
    tree: Any,
    rng: np.random.Generator,
    *,
    copies: int = 5,
    rel: float = PERTURBATION,
) -> list[Any]:
    r"""``[check(tree)] + [check(perturbed(tree, rng, rel)) for each of copies]``.

    ``check`` maps an input to its verdict (a bool, or any comparable value: a tuple of bools, a
    dict of exit codes); the caller asserts that all entries are equal (see
    :func:`assert_same_verdicts`)."""
    if int(copies) != copies or copies < 1:
        raise ValueError(f"copies: expected a positive integer, got {copies}")
    out = [check(tree)]
    for _ in range(int(copies)):
        out.append(check(perturbed(tree, rng, rel)))
    return out


def assert_same_verdicts(
    check: Callable[[Any], Any],
    tree: Any,
    rng: np.random.Generator,
    *,
    copies: int = 5,
    rel: float = PERTURBATION,
) -> Any:
    """Run :func:`verdicts_under_perturbation` and raise ``AssertionError`` listing every verdict
    unless they are all equal; returns the common verdict."""
    verdicts = verdicts_under_perturbation(check, tree, rng, copies=copies, rel=rel)
    if any(v != verdicts[0] for v in verdicts[1:]):
        raise AssertionError(
            f"verdict decided by rounding: {verdicts} (input, then {copies} copies perturbed at "
            f"relative {rel:g})"
        )
    return verdicts[0]

r"""Deliberately naive reference algorithms: explicit Python loops over samples and coordinates.

These are the independent implementations every construction is checked against. They use only
``+``, ``*`` and ``/`` on the entries, so they run on floats and on sympy expressions alike (the
symbolic proofs feed them symbols). Inputs are sequences: ``phi[i][j]`` is coordinate ``j`` of
``phi_i``, ``phi_next[i][j]`` of ``phi_i^+`` (without the discount), ``r[i]`` is ``r_{i+1}``.

(S2) ``w <- w + (alpha/n) sum_i delta_i phi_i``, ``delta_i = r_{i+1} + gamma w^T phi_i^+ - w^T phi_i``
(A2) also ``lam <- lam + (beta/n) sum_i delta_i g_i``
§5 batch TD(0): (S2) with state features, from ``w_0 = 0`` by default.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from .checks import check_gamma, is_torch

__all__ = ["naive_batch_sarsa", "naive_batch_actor_critic", "naive_batch_td"]


def _seq(x: Any, name: str) -> list:
    """``list(x)``; ValueError naming ``name`` if ``x`` is not a sequence. A torch tensor is
    read as (detached) Python floats: the loops are the float/sympy reference, not differentiable."""
    if is_torch(x):
        x = x.detach().cpu().tolist()
    try:
        return list(x)
    except TypeError:
        raise ValueError(f"{name}: expected a sequence, got {type(x).__name__}") from None


def _rows(x: Any, name: str) -> list[list]:
    """``x`` as a list of rows (lists); ValueError naming ``name[i]`` for a row that is not a sequence."""
    return [_seq(row, f"{name}[{i}]") for i, row in enumerate(_seq(x, name))]


def batch_size(phi: Sequence, phi_next: Sequence, r: Sequence, d: int) -> int:
    """The batch size ``n = len(r)`` of a naive loop's inputs, after checking that ``phi`` and
    ``phi_next`` have ``n`` rows of ``d`` entries and ``d >= 1`` (ValueError naming the argument)."""
    n = len(r)
    if n == 0:
        raise ValueError("r: the batch is empty (n = 0)")
    if d < 1:
        raise ValueError("w: expected d >= 1 coordinates, got none")
    if len(phi) != n or len(phi_next) != n:
        raise ValueError(f"phi, phi_next: expected {n} rows to match r, got {len(phi)} and {len(phi_next)}")
    for name, rows in (("phi", phi), ("phi_next", phi_next)):
        for i, row in enumerate(rows):
            if len(row) != d:
                raise ValueError(f"{name}[{i}]: expected {d} entries to match w, got {len(row)}")
            check_numeric(row, name)
    return n


def check_numeric(values: Sequence[Any], name: str) -> None:
    """Real finite numbers or symbolic values (sympy expressions, or elements of a sympy polynomial
    ring or rational function field as the exact proofs use); complex, bool, strings are refused."""
    for v in values:
        complex_ = isinstance(v, numbers.Complex) and not isinstance(v, numbers.Real)
        if isinstance(v, bool | np.bool_) or complex_:
            raise ValueError(f"{name}: expected real numbers or symbols, got {type(v).__name__} {v!r}")
        if isinstance(v, numbers.Real):
            if not np.isfinite(float(v)):
                raise ValueError(f"{name}: contains NaN or inf")
        elif not (hasattr(v, "free_symbols") or hasattr(v, "ring") or hasattr(v, "field")):  # sympy, ring
            raise ValueError(f"{name}: expected real numbers or symbols, got {type(v).__name__}")


def _check_scalars(gamma: Any, **rates: Any) -> None:
    """``0 <= gamma < 1`` and finite step sizes when they are numbers (symbols pass unchecked)."""
    check_numeric([gamma], "gamma")
    if isinstance(gamma, numbers.Real):
        check_gamma(gamma)
    for name, v in rates.items():
        check_numeric([v], name)


def as_values(values: list) -> np.ndarray:
    """A naive loop's output (k,): float64 when every value is a real number, else an object array
    (sympy expressions or exact ring elements, as the proofs run the same loop)."""
    if all(isinstance(v, numbers.Real) for v in values):
        return np.array([float(v) for v in values])
    return np.array(values, dtype=object)


def naive_td_error(phi_i, phi_next_i, r_i, w, gamma):
    """The TD error of one transition written as loops, ``delta_i = r_i + gamma w^T phi'_i - w^T
    phi_i`` ((S2), (W1)); only ``+ * -``, so it runs on floats and on symbols alike."""
    q = 0
    q_next = 0
    for j in range(len(w)):
        q = q + w[j] * phi_i[j]
        q_next = q_next + w[j] * phi_next_i[j]
    return r_i + gamma * q_next - q


def naive_batch_sarsa(phi, phi_next, r, w, gamma, alpha, n_iter: int = 1) -> np.ndarray:
    """(S2) iterated ``n_iter`` times on the same batch (the target of (S5)); returns w (d,)."""
    w, r, phi, phi_next = _seq(w, "w"), _seq(r, "r"), _rows(phi, "phi"), _rows(phi_next, "phi_next")
    _check_scalars(gamma, alpha=alpha)
    check_numeric(w, "w")
    check_numeric(r, "r")
    n = batch_size(phi, phi_next, r, len(w))
    if isinstance(n_iter, bool) or not isinstance(n_iter, int) or n_iter < 1:
        raise ValueError(f"n_iter: must be an integer >= 1, got {n_iter!r}")
    for _ in range(n_iter):
        new = list(w)
        for i in range(n):
            delta = naive_td_error(phi[i], phi_next[i], r[i], w, gamma)
            for j in range(len(w)):
                new[j] = new[j] + alpha * delta * phi[i][j] / n
        w = new
    return as_values(w)


def naive_batch_actor_critic(
    phi, phi_next, r, g, w, lam, gamma, alpha, beta
) -> tuple[np.ndarray, np.ndarray]:
    """(A2): one batch actor-critic step; returns ``(w', lam')``; ``g[i][k]`` is score coordinate k."""
    w, lam, g, r = _seq(w, "w"), _seq(lam, "lam"), _rows(g, "g"), _seq(r, "r")
    phi, phi_next = _rows(phi, "phi"), _rows(phi_next, "phi_next")
    _check_scalars(gamma, alpha=alpha, beta=beta)
    for name, v in (("w", w), ("lam", lam), ("r", r)):
        check_numeric(v, name)
    n = batch_size(phi, phi_next, r, len(w))
    if len(g) != n or any(len(row) != len(lam) for row in g):
        raise ValueError(f"g: expected {n} rows of {len(lam)} entries to match r and lam")
    for row in g:
        check_numeric(row, "g")
    new_w, new_lam = list(w), list(lam)
    for i in range(n):
        delta = naive_td_error(phi[i], phi_next[i], r[i], w, gamma)
        for j in range(len(w)):
            new_w[j] = new_w[j] + alpha * delta * phi[i][j] / n
        for k in range(len(lam)):
            new_lam[k] = new_lam[k] + beta * delta * g[i][k] / n
    return as_values(new_w), as_values(new_lam)


def naive_batch_td(phi, phi_next, r, gamma, alpha, n_iter: int = 1, w0=None) -> np.ndarray:
    """§5: ``n_iter`` steps of batch TD(0) with state features from ``w0`` (default 0); returns w."""
    phi = _rows(phi, "phi")
    d = len(phi[0]) if len(phi) else 0
    if len(phi) and d == 0:
        raise ValueError("phi: rows have no entries (d = 0)")
    w0 = [0] * d if w0 is None else _seq(w0, "w0")
    check_numeric(w0, "w0")
    return naive_batch_sarsa(phi, phi_next, r, w0, gamma, alpha, n_iter=n_iter)

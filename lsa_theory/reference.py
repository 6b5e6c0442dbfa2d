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

__all__ = ["naive_batch_sarsa", "naive_batch_actor_critic", "naive_batch_td"]


def _sizes(phi: Sequence, phi_next: Sequence, r: Sequence, d: int) -> int:
    n = len(r)
    if n == 0:
        raise ValueError("r: the batch is empty (n = 0)")
    if len(phi) != n or len(phi_next) != n:
        raise ValueError(f"phi, phi_next: expected {n} rows to match r, got {len(phi)} and {len(phi_next)}")
    for name, rows in (("phi", phi), ("phi_next", phi_next)):
        for i, row in enumerate(rows):
            if len(row) != d:
                raise ValueError(f"{name}[{i}]: expected {d} entries to match w, got {len(row)}")
            _check_numeric(row, name)
    return n


def _check_numeric(values: Sequence[Any], name: str) -> None:
    for v in values:
        if isinstance(v, numbers.Real) and not np.isfinite(float(v)):
            raise ValueError(f"{name}: contains NaN or inf")


def _out(values: list) -> np.ndarray:
    if all(isinstance(v, numbers.Real) for v in values):
        return np.array([float(v) for v in values])
    return np.array(values, dtype=object)


def _delta(phi_i, phi_next_i, r_i, w, gamma):
    q = 0
    q_next = 0
    for j in range(len(w)):
        q = q + w[j] * phi_i[j]
        q_next = q_next + w[j] * phi_next_i[j]
    return r_i + gamma * q_next - q


def naive_batch_sarsa(phi, phi_next, r, w, gamma, alpha, n_iter: int = 1) -> np.ndarray:
    """(S2) iterated ``n_iter`` times on the same batch (the target of (S5)); returns w (d,)."""
    w = list(w)
    n = _sizes(phi, phi_next, r, len(w))
    if isinstance(n_iter, bool) or not isinstance(n_iter, int) or n_iter < 1:
        raise ValueError(f"n_iter: must be an integer >= 1, got {n_iter!r}")
    _check_numeric([gamma, alpha, *w, *r], "inputs")
    for _ in range(n_iter):
        new = list(w)
        for i in range(n):
            delta = _delta(phi[i], phi_next[i], r[i], w, gamma)
            for j in range(len(w)):
                new[j] = new[j] + alpha * delta * phi[i][j] / n
        w = new
    return _out(w)


def naive_batch_actor_critic(
    phi, phi_next, r, g, w, lam, gamma, alpha, beta
) -> tuple[np.ndarray, np.ndarray]:
    """(A2): one batch actor-critic step; returns ``(w', lam')``; ``g[i][k]`` is score coordinate k."""
    w = list(w)
    lam = list(lam)
    n = _sizes(phi, phi_next, r, len(w))
    if len(g) != n or any(len(row) != len(lam) for row in g):
        raise ValueError(f"g: expected {n} rows of {len(lam)} entries to match r and lam")
    for row in g:
        _check_numeric(row, "g")
    _check_numeric([gamma, alpha, beta, *w, *lam, *r], "inputs")
    new_w, new_lam = list(w), list(lam)
    for i in range(n):
        delta = _delta(phi[i], phi_next[i], r[i], w, gamma)
        for j in range(len(w)):
            new_w[j] = new_w[j] + alpha * delta * phi[i][j] / n
        for k in range(len(lam)):
            new_lam[k] = new_lam[k] + beta * delta * g[i][k] / n
    return _out(new_w), _out(new_lam)


def naive_batch_td(phi, phi_next, r, gamma, alpha, n_iter: int = 1, w0=None) -> np.ndarray:
    """§5: ``n_iter`` steps of batch TD(0) with state features from ``w0`` (default 0); returns w."""
    d = len(phi[0]) if len(phi) else 0
    w0 = [0] * d if w0 is None else list(w0)
    return naive_batch_sarsa(phi, phi_next, r, w0, gamma, alpha, n_iter=n_iter)

r"""Prompt builders: (H) for SARSA, (A1) for actor-critic, (W1) for TD(0).

(H) [LL eq. 4]: ``H(z; w) in R^{D x (n+1)}``, ``D = 3d + 2``; context column ``i`` is
``[x_i; 0_{d+1}]`` with ``x_i = [phi_i; gamma phi_i^+; r_{i+1}]``, the last column is
``[0_{2d+1}; 1; w]``.

(A1): ``x_i = [phi_i; gamma phi_i^+; r_{i+1}; g_i]``, parameter column ``[0; 1; w; lambda]``,
``D = 3d + 2 d_pi + 2``.

(W1) [W]: ``Z in R^{(2d+1) x (n + n_q)}`` with context columns ``[phi(s_i); gamma phi(s_i'); r_i]``
and query columns ``[phi(s); 0; 0]``.

All builders take batched arrays (leading batch dimensions broadcast) and return numpy for
numpy input and torch for torch input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import backend as B
from .checks import check_finite, check_int, check_real

__all__ = [
    "Layout",
    "context_columns",
    "sarsa_prompt",
    "actor_critic_prompt",
    "td_prompt",
    "sarsa_dims",
]


def _check_context(X: Any, name: str = "X") -> tuple[int, int]:
    """(d, n) of SARSA columns X (..., 2d+1, n); ValueError on a bad shape, n = 0, NaN/inf."""
    if X.ndim < 2:
        raise ValueError(f"{name}: expected shape (..., 2d+1, n), got {tuple(X.shape)}")
    rows, n = X.shape[-2], X.shape[-1]
    if rows < 3 or rows % 2 == 0:
        raise ValueError(f"{name}: expected 2d+1 rows with d >= 1, got {rows}")
    if n == 0:
        raise ValueError(f"{name}: context has no columns (n = 0)")
    check_finite(X, name)
    return (rows - 1) // 2, n


def _check_vector(v: Any, length: int, name: str, what: str) -> None:
    if v.ndim < 1 or v.shape[-1] != length:
        raise ValueError(f"{name}: expected shape (..., {length}) to match {what}, got {tuple(v.shape)}")
    check_finite(v, name)


def sarsa_dims(D: int) -> int:
    """Feature dimension d of a SARSA prompt with ``D = 3d + 2`` rows."""
    D = check_int(D, "D")
    if D < 5 or (D - 2) % 3:
        raise ValueError(f"D: a SARSA prompt H has D = 3d + 2 rows with d >= 1, got D = {D}")
    return (D - 2) // 3


def context_columns(phi: Any, phi_next: Any, r: Any, gamma: float) -> Any:
    """(H) columns ``X`` (..., 2d+1, n) with ``x_i = [phi_i; gamma phi_i^+; r_{i+1}]``.

    ``phi`` (..., n, d) rows ``phi_i``, ``phi_next`` (..., n, d) rows ``phi_i^+`` (undiscounted),
    rewards ``r`` (..., n).
    """
    gamma = check_real(gamma, "gamma", low=0.0, high=1.0, high_open=True)
    phi = B.as_array(phi, "phi")
    phi_next, r = B.as_array(phi_next, "phi_next", ref=phi), B.as_array(r, "r", ref=phi)
    if phi.ndim < 2 or phi.shape[-2] == 0 or tuple(phi_next.shape) != tuple(phi.shape):
        raise ValueError(
            f"phi, phi_next: expected equal shapes (..., n, d) with n >= 1, got "
            f"{tuple(phi.shape)} and {tuple(phi_next.shape)}"
        )
    if phi.shape[-1] == 0:
        raise ValueError(f"phi: expected d >= 1 features, got shape {tuple(phi.shape)}")
    if tuple(r.shape) != tuple(phi.shape[:-1]):
        raise ValueError(f"r: expected shape {tuple(phi.shape[:-1])}, got {tuple(r.shape)}")
    if B.is_torch(phi):
        import torch

        return torch.cat([phi.mT, gamma * phi_next.mT, r[..., None, :]], dim=-2)
    return np.concatenate([phi.mT, gamma * phi_next.mT, r[..., None, :]], axis=-2)


def sarsa_prompt(X: Any, w: Any) -> Any:
    """(H): prompt ``H(z; w)`` of shape (..., 3d+2, n+1) from columns ``X`` (..., 2d+1, n), ``w`` (..., d).

    Context columns ``[x_i; 0_{d+1}]``; last column ``[0_{2d+1}; 1; w]``.
    """
    X = B.as_array(X, "X")
    w = B.as_array(w, "w", ref=X)
    d, n = _check_context(X)
    _check_vector(w, d, "w", f"d = {d} of X")
    batch = B.broadcast_batch(X.shape[:-2], w.shape[:-1])
    H = B.zeros(X, batch + (3 * d + 2, n + 1), B.result_dtype(X, w))
    H[..., : 2 * d + 1, :n] = X
    H[..., 2 * d + 1, n] = 1.0
    H[..., 2 * d + 2 :, n] = w
    return H


def actor_critic_prompt(X: Any, g: Any, w: Any, lam: Any) -> Any:
    """(A1): prompt of shape (..., 3d+2d_pi+2, n+1).

    ``X`` (..., 2d+1, n) SARSA columns, ``g`` (..., d_pi, n) scores, ``w`` (..., d) critic,
    ``lam`` (..., d_pi) actor. Context column ``[phi_i; gamma phi_i^+; r_{i+1}; g_i; 0]``,
    last column ``[0_{2d+1+d_pi}; 1; w; lam]``.
    """
    X = B.as_array(X, "X")
    g, w, lam = B.as_array(g, "g", ref=X), B.as_array(w, "w", ref=X), B.as_array(lam, "lam", ref=X)
    d, n = _check_context(X)
    if g.ndim < 2 or g.shape[-1] != n or g.shape[-2] < 1:
        raise ValueError(f"g: expected shape (..., d_pi, {n}) to match n of X, got {tuple(g.shape)}")
    d_pi = g.shape[-2]
    _check_vector(w, d, "w", f"d = {d} of X")
    _check_vector(lam, d_pi, "lam", f"d_pi = {d_pi} of g")
    batch = B.broadcast_batch(X.shape[:-2], g.shape[:-2], w.shape[:-1], lam.shape[:-1])
    m = 2 * d + 1 + d_pi
    H = B.zeros(X, batch + (3 * d + 2 * d_pi + 2, n + 1), B.result_dtype(X, g, w, lam))
    H[..., : 2 * d + 1, :n] = X
    H[..., 2 * d + 1 : m, :n] = g
    H[..., m, n] = 1.0
    H[..., m + 1 : m + 1 + d, n] = w
    H[..., m + 1 + d :, n] = lam
    return H


def td_prompt(X: Any, phi_query: Any, *, n_queries: int | None = None) -> Any:
    """(W1): prompt ``Z`` of shape (..., 2d+1, n+n_q).

    ``X`` (..., 2d+1, n) columns ``[phi(s_i); gamma phi(s_i'); r_i]``. One query: ``phi_query``
    (..., d) and ``n_queries=None``. Several: ``phi_query`` (..., d, n_q) and ``n_queries=n_q``.
    Query columns are ``[phi(s); 0; 0]``.
    """
    X = B.as_array(X, "X")
    q = B.as_array(phi_query, "phi_query", ref=X)
    d, n = _check_context(X)
    if n_queries is None:
        _check_vector(q, d, "phi_query", f"d = {d} of X")
        q = q[..., None]
    else:
        n_q = check_int(n_queries, "n_queries")
        if q.ndim < 2 or q.shape[-2:] != (d, n_q):
            raise ValueError(f"phi_query: expected shape (..., {d}, {n_q}), got {tuple(q.shape)}")
    n_q = q.shape[-1]
    batch = B.broadcast_batch(X.shape[:-2], q.shape[:-2])
    Z = B.zeros(X, batch + (2 * d + 1, n + n_q), B.result_dtype(X, q))
    Z[..., :, :n] = X
    Z[..., :d, n:] = q
    return Z


@dataclass(frozen=True)
class Layout:
    """Row layout of an (H) prompt (``d_pi = 0``) or an (A1) prompt (``d_pi > 0``).

    The first block has ``m = 2d + 1 + d_pi`` rows (the context ``x_i``), the second ``d + 1 +
    d_pi`` rows (constant 1, ``w``, ``lambda``); ``D = 3d + 2 d_pi + 2``. (L2) splits ``P`` and
    ``V`` along ``(m | D - m)``; ``Vbar21``, ``Vbar22`` drop the constant row.
    """

    d: int
    d_pi: int = 0

    def __post_init__(self) -> None:
        check_int(self.d, "d")
        check_int(self.d_pi, "d_pi", minimum=0)

    @property
    def m(self) -> int:
        return 2 * self.d + 1 + self.d_pi

    @property
    def D(self) -> int:
        return 3 * self.d + 2 * self.d_pi + 2

    @property
    def phi(self) -> slice:
        return slice(0, self.d)

    @property
    def phi_next(self) -> slice:
        return slice(self.d, 2 * self.d)

    @property
    def r(self) -> int:
        return 2 * self.d

    @property
    def g(self) -> slice:
        return slice(2 * self.d + 1, self.m)

    @property
    def const(self) -> int:
        return self.m

    @property
    def w(self) -> slice:
        return slice(self.m + 1, self.m + 1 + self.d)

    @property
    def lam(self) -> slice:
        return slice(self.m + 1 + self.d, self.D)

    @property
    def k(self) -> int:
        """Length of the readout: ``d + d_pi`` (the updated ``[w; lambda]``)."""
        return self.d + self.d_pi

    def blocks(self, P: Any, V: Any) -> dict[str, Any]:
        """The (L2) blocks ``P12`` (m, D-m), ``P22`` (D-m, D-m), ``Vbar21`` (k, m), ``Vbar22`` (k, D-m)."""
        m = self.m
        for name, M in (("P", P), ("V", V)):
            if tuple(M.shape[-2:]) != (self.D, self.D):
                raise ValueError(f"{name}: expected shape (..., {self.D}, {self.D}), got {tuple(M.shape)}")
        return {
            "P12": P[..., :m, m:],
            "P22": P[..., m:, m:],
            "Vbar21": V[..., m + 1 :, :m],
            "Vbar22": V[..., m + 1 :, m:],
        }

r"""In-context autoregressive data of docs/theory.md §9 [Sa]: the process (AR1) and the tokens (AR2).

Notation: ``d = 2m``; ``R(phi) = [[cos phi, -sin phi], [sin phi, cos phi]]``,
``R(theta) = blockdiag(R(theta_1), ..., R(theta_m))`` (d, d).

(AR1) The sequence ``s_{t+1} = W s_t``, ``s_0, ..., s_{T+1}`` (positions ``t = 1..T`` predict
``s_{t+1}`` from ``s_0..s_t``):

- **rotation law** (the checkable version): ``W = Q R(theta) Q^T``, ``theta_k`` i.i.d. ``U[0, 2 pi)``,
  ``Q`` a fixed orthogonal matrix (default ``I``); block k of ``Q^T s_0`` is
  ``r_k (cos psi_k, sin psi_k)`` with ``sum_k r_k^2 = 1`` (energy per eigen-coordinate
  ``rho_k = r_k^2 / 2``; balanced: ``r_k^2 = 1/m``). **Random phase** (default): ``psi_k`` i.i.d.
  ``U[0, 2 pi)``; **fixed phase**: ``psi_k = pi/4`` ([Sa]'s ``s_0 = 1/sqrt(d)`` when balanced);
- **Haar law** ([Sa]'s experiments): ``W`` Haar-orthogonal (d, d), ``s_0 = 1/sqrt(d)`` by default.

(AR2) Tokens: augmented ``e_t = (0_d, s_t, s_{t-1})`` in ``R^{3d}``, ``t = 1..T``; non-augmented
``e_t = s_t``. The block that reads them, the causal (W2) pass with the ``1/t`` normalisation of
(AR3), is :func:`lsa_theory.causal_lsa`. Every random function takes an explicit ``rng``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .checks import as_float_array, check_int, check_rng

__all__ = [
    "PHASES",
    "ARSequences",
    "rotation",
    "start_state",
    "balanced_energies",
    "powers",
    "rotation_sequences",
    "haar_orthogonal",
    "haar_sequences",
    "augmented_tokens",
    "plain_tokens",
    "position_prompt",
]

#: The start-phase laws of (AR1): ``"random"`` (``psi_k ~ U[0, 2 pi)``) and ``"fixed"`` (``pi/4``).
PHASES = ("random", "fixed")


def _check_even(d: Any) -> int:
    d = check_int(d, "d", minimum=2)
    if d % 2:
        raise ValueError(f"d: the rotation law needs an even d = 2m, got {d}")
    return d


def rotation(theta: Any) -> np.ndarray:
    """(AR1) ``R(theta) = blockdiag(R(theta_1), ..., R(theta_m))``: ``theta`` (..., m) -> (..., 2m, 2m)."""
    theta = as_float_array(theta, "theta")
    if theta.ndim < 1 or theta.shape[-1] < 1:
        raise ValueError(f"theta: expected shape (..., m) with m >= 1, got {theta.shape}")
    m = theta.shape[-1]
    c, s = np.cos(theta), np.sin(theta)
    R = np.zeros(theta.shape[:-1] + (2 * m, 2 * m))
    k = np.arange(m)
    R[..., 2 * k, 2 * k], R[..., 2 * k, 2 * k + 1] = c, -s
    R[..., 2 * k + 1, 2 * k], R[..., 2 * k + 1, 2 * k + 1] = s, c
    return R


def balanced_energies(d: int) -> np.ndarray:
    """(AR1) balanced block energies ``r_k^2 = 1/m`` (m,), ``m = d/2``."""
    m = _check_even(d) // 2
    return np.full(m, 1.0 / m)


def _check_energies(energies: Any, d: int) -> np.ndarray:
    m = d // 2
    if energies is None:
        return balanced_energies(d)
    r2 = as_float_array(energies, "energies", ndim=1)
    if r2.shape != (m,) or (r2 < 0).any() or abs(r2.sum() - 1.0) > 1e-12:
        raise ValueError(f"energies: expected {m} block energies r_k^2 >= 0 summing to 1, got {r2.tolist()}")
    return r2


def start_state(energies: Any, psi: Any) -> np.ndarray:
    """(AR1) ``s_0`` in eigen-coordinates: block k is ``r_k (cos psi_k, sin psi_k)``; ``energies``
    ``r_k^2`` (m,) and ``psi`` (..., m) -> (..., 2m). ``||s_0||^2 = sum_k r_k^2``."""
    r = np.sqrt(as_float_array(energies, "energies", ndim=1))
    psi = as_float_array(psi, "psi")
    if psi.ndim < 1 or psi.shape[-1] != r.size:
        raise ValueError(f"psi: expected shape (..., {r.size}) to match energies, got {psi.shape}")
    s0 = np.empty(psi.shape[:-1] + (2 * r.size,))
    s0[..., 0::2] = r * np.cos(psi)
    s0[..., 1::2] = r * np.sin(psi)
    return s0


def powers(W: Any, s0: Any, n_steps: int) -> np.ndarray:
    """``s_j = W s_{j-1}``, ``j = 1..n_steps``, from ``s_0``: ``W`` (..., d, d), ``s0`` (..., d) ->
    (..., n_steps + 1, d) with row j holding ``s_j`` (any W, orthogonal or not)."""
    W = as_float_array(W, "W")
    s0 = as_float_array(s0, "s0")
    n_steps = check_int(n_steps, "n_steps", minimum=0)
    d = s0.shape[-1] if s0.ndim else 0
    if W.ndim < 2 or W.shape[-2:] != (d, d) or d < 1:
        raise ValueError(f"W: expected shape (..., {d}, {d}) to match s0 {s0.shape}, got {W.shape}")
    batch = np.broadcast_shapes(W.shape[:-2], s0.shape[:-1])
    s = np.empty(batch + (n_steps + 1, d))
    s[..., 0, :] = s0
    for j in range(1, n_steps + 1):
        s[..., j, :] = (W @ s[..., j - 1, :, None])[..., 0]
    return s


@dataclass(frozen=True, eq=False)
class ARSequences:
    """``n`` sequences of (AR1): ``W`` (n, d, d), ``s`` (n, T + 2, d) holding ``s_0 .. s_{T+1}``
    (position ``t = 1..T`` sees ``s_0..s_t`` and predicts ``s_{t+1}``); for the rotation law also
    ``theta`` (n, m), ``psi`` (n, m), ``energies`` (m,) and ``Q`` (d, d) (``None`` for the Haar law);
    ``law`` is ``"rotation"`` or ``"haar"``, ``phase`` one of :data:`PHASES` (``"fixed"`` for Haar)."""

    W: np.ndarray
    s: np.ndarray
    law: str
    phase: str
    theta: np.ndarray | None = None
    psi: np.ndarray | None = None
    energies: np.ndarray | None = None
    Q: np.ndarray | None = None

    @property
    def T(self) -> int:
        """Number of positions ``T`` (the sequences hold ``T + 2`` states)."""
        return self.s.shape[-2] - 2

    @property
    def d(self) -> int:
        return self.s.shape[-1]


def _check_orthogonal(Q: Any, d: int) -> np.ndarray:
    if Q is None:
        return np.eye(d)
    Q = as_float_array(Q, "Q", ndim=2)
    if Q.shape != (d, d) or np.abs(Q.T @ Q - np.eye(d)).max() > 1e-12:
        raise ValueError(
            f"Q: expected an orthogonal ({d}, {d}) matrix (Q^T Q = I to 1e-12), got shape {Q.shape}"
        )
    return Q


def rotation_sequences(
    n: int,
    d: int,
    T: int,
    rng: np.random.Generator,
    phase: str = "random",
    energies: Any = None,
    Q: Any = None,
) -> ARSequences:
    """(AR1) ``n`` sequences of the rotation law ``W = Q R(theta) Q^T``, ``theta_k ~ U[0, 2 pi)``,
    ``s_0 = Q start_state(energies, psi)`` with ``psi_k ~ U[0, 2 pi)`` (``phase="random"``) or
    ``psi_k = pi/4`` (``"fixed"``); ``energies`` ``r_k^2`` (m,) summing to 1 (default balanced,
    ``1/m``), ``Q`` orthogonal (d, d) (default ``I``). Returns :class:`ARSequences` with ``s``
    (n, T + 2, d)."""
    n, d, T = check_int(n, "n"), _check_even(d), check_int(T, "T")
    rng = check_rng(rng)
    if phase not in PHASES:
        raise ValueError(f"phase: expected one of {PHASES}, got {phase!r}")
    r2 = _check_energies(energies, d)
    Q = _check_orthogonal(Q, d)
    m = d // 2
    theta = rng.uniform(0.0, 2 * np.pi, (n, m))
    psi = rng.uniform(0.0, 2 * np.pi, (n, m)) if phase == "random" else np.full((n, m), np.pi / 4)
    W = Q @ rotation(theta) @ Q.T
    s0 = start_state(r2, psi) @ Q.T
    return ARSequences(W, powers(W, s0, T + 1), "rotation", phase, theta, psi, r2, Q)


def haar_orthogonal(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` Haar-distributed orthogonal matrices (n, d, d) (as ``scipy.stats.ortho_group``): the
    QR factor of a standard normal matrix with the signs of ``diag(R)`` moved into Q."""
    n, d = check_int(n, "n"), check_int(d, "d")
    G = check_rng(rng).standard_normal((n, d, d))
    Qm, R = np.linalg.qr(G)
    return Qm * np.sign(np.diagonal(R, axis1=-2, axis2=-1))[..., None, :]


def haar_sequences(n: int, d: int, T: int, rng: np.random.Generator, s0: Any = None) -> ARSequences:
    """(AR1) [Sa]'s training law: ``W`` Haar-orthogonal (:func:`haar_orthogonal`), the fixed start
    ``s0`` (d,) (default ``1/sqrt(d)`` in every entry). ``s`` (n, T + 2, d)."""
    n, d, T = check_int(n, "n"), check_int(d, "d"), check_int(T, "T")
    W = haar_orthogonal(n, d, check_rng(rng))
    start = np.full(d, 1.0 / np.sqrt(d)) if s0 is None else as_float_array(s0, "s0", ndim=1)
    if start.shape != (d,):
        raise ValueError(f"s0: expected shape ({d},), got {start.shape}")
    return ARSequences(W, powers(W, np.broadcast_to(start, (n, d)), T + 1), "haar", "fixed")


def _sequence(s: Any) -> np.ndarray:
    s = as_float_array(s, "s")
    if s.ndim < 2 or s.shape[-2] < 2 or s.shape[-1] < 1:
        raise ValueError(f"s: expected shape (..., T + 1, d) with T >= 1 (states s_0..s_T), got {s.shape}")
    return s


def augmented_tokens(s: Any) -> np.ndarray:
    """(AR2) augmented tokens ``e_t = (0_d, s_t, s_{t-1})``, ``t = 1..T``, as columns: ``s``
    (..., T + 1, d) holding ``s_0..s_T`` -> (..., 3d, T)."""
    s = _sequence(s)
    d = s.shape[-1]
    E = np.zeros(s.shape[:-2] + (3 * d, s.shape[-2] - 1))
    E[..., d : 2 * d, :] = np.swapaxes(s[..., 1:, :], -1, -2)
    E[..., 2 * d :, :] = np.swapaxes(s[..., :-1, :], -1, -2)
    return E


def plain_tokens(s: Any) -> np.ndarray:
    """(AR2) non-augmented tokens ``e_t = s_t``, ``t = 1..T``, as columns: ``s`` (..., T + 1, d)
    -> (..., d, T)."""
    s = _sequence(s)
    return np.swapaxes(s[..., 1:, :], -1, -2).copy()


def position_prompt(E: Any, t: int) -> np.ndarray:
    """(AR3) the prompt of position ``t``: ``Z_t = [e_1 ... e_t | e_t]`` (..., D, t + 1) from the
    token columns ``E`` (..., D, T), ``1 <= t <= T`` (context ``e_1..e_t``, query ``e_t``)."""
    E = as_float_array(E, "E")
    if E.ndim < 2:
        raise ValueError(f"E: expected shape (..., D, T), got {E.shape}")
    t = check_int(t, "t")
    if t > E.shape[-1]:
        raise ValueError(f"t: must be <= T = {E.shape[-1]}, got {t}")
    return np.concatenate([E[..., :t], E[..., t - 1 : t]], axis=-1)

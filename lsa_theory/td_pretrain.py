r"""[W]'s multi-task TD pretraining, (WP1)-(WP2) of docs/theory.md: the task law, the prompts, the
masked LSA's value ``v_theta`` with its exact gradient, the semi-gradient TD update, Adam, and the
symmetry group of the task law with its fixed space ``Fix(G)``.

Notation (THEORY §10, after §5): ``d`` features, ``s`` states, ``n`` context columns, ``D = 2d + 1``
rows ``[phi; gamma phi'; r]``; a prompt ``Z`` is (D, n+1) with the query in its last column. The block
(W2) is ``Z + (1/n) P Z M Z^T Q Z`` (``M = diag(I_n, 0)`` or any fixed mask with zero last row and
column); ``theta = (P_l, Q_l)_{l=1..L}`` is stored as two (L, D, D) arrays, ``shared`` meaning one
pair used by every layer (the authors' 'auto' mode). The value is ``v_theta(Z) = -Z_L[D, n+1]``.

Task law (WP1), our own samplers of the authors' law: a Boyan chain with s states
(``P[i, i+1] = p_i ~ U(0.01, 0.99)``, ``P[i, i+2] = 1 - p_i``, ``P[s-2, s-1] = 1``, last row
``U(0.01, 0.99)`` normalised; ``mu`` likewise; ``r ~ U(-1, 1)^s``, the reward of the state left) or a
random MRP (rows ``U(0, 1)`` normalised), and a feature table ``phi ~ U(-1, 1)^{s x d}``. Window k of
a trajectory ``x_0, x_1, ...`` has context columns ``[phi(x_{k+i}); gamma phi(x_{k+i+1}); r(x_{k+i})]``
(``i = 0..n-1``) and query ``[phi(x_{k+n+1}); 0; 0]``; its TD error is
``delta_k = r(x_{k+n+1}) + gamma v_theta(Z_{k+1}) - v_theta(Z_k)``.

Group (WP2): for an orthogonal ``g`` (d, d), ``ghat = diag(g, g, 1)``; the prompt of the features
``phi g^T`` is ``ghat Z``. The law of [W] is invariant under the signed permutations, whose fixed
space is ``Fix = {[[m11 I, m12 I, 0], [m21 I, m22 I, 0], [0, 0, m33]]}`` for every ``P_l``, ``Q_l``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import roundoff
from .checks import as_float_array, check_distribution, check_gamma, check_int, check_real, check_rng

__all__ = [
    "TASK_KINDS",
    "Tasks",
    "AdamState",
    "boyan_chains",
    "random_mrps",
    "sample_tasks",
    "sample_trajectories",
    "prompts",
    "value_and_td_direction",
    "td_direction_error_bound",
    "values",
    "adam_step",
    "adam_init",
    "xavier_start",
    "signed_permutations",
    "sign_group",
    "first_half_permutations",
    "lift",
    "fix_project",
    "fix_outside",
    "fix_from_coordinates",
    "fix_coordinates",
    "orbit_averaged_direction",
    "true_values",
    "stationary_distribution",
]

#: The task samplers of (WP1).
TASK_KINDS = ("boyan", "random")


@dataclass(frozen=True)
class Tasks:
    """A batch of T tasks: transitions ``P`` (T, s, s), start law ``mu`` (T, s), rewards ``r`` (T, s)
    (the reward of the state left) and features ``phi`` (T, s, d)."""

    P: np.ndarray
    mu: np.ndarray
    r: np.ndarray
    phi: np.ndarray

    def __len__(self) -> int:
        return self.P.shape[0]

    def take(self, idx: Any) -> Tasks:
        """The tasks ``idx`` (an index array or slice), as a batch."""
        idx = np.atleast_1d(np.arange(len(self))[idx])
        return Tasks(self.P[idx], self.mu[idx], self.r[idx], self.phi[idx])


def _normalised(x: np.ndarray) -> np.ndarray:
    return x / x.sum(axis=-1, keepdims=True)


def boyan_chains(T: int, s: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """T Boyan chains of s >= 3 states (module docstring): ``(P, mu, r)`` of shapes (T, s, s), (T, s),
    (T, s), float64."""
    T, s = check_int(T, "T"), check_int(s, "s", minimum=3)
    rng = check_rng(rng)
    P = np.zeros((T, s, s))
    p = rng.uniform(0.01, 0.99, size=(T, s - 2))
    i = np.arange(s - 2)
    P[:, i, i + 1] = p
    P[:, i, i + 2] = 1.0 - p
    P[:, s - 2, s - 1] = 1.0
    P[:, s - 1, :] = _normalised(rng.uniform(0.01, 0.99, size=(T, s)))
    mu = _normalised(rng.uniform(0.01, 0.99, size=(T, s)))
    r = rng.uniform(-1.0, 1.0, size=(T, s))
    return P, mu, r


def random_mrps(T: int, s: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """T random MRPs of s states: rows and ``mu`` ``U(0, 1)`` normalised, ``r ~ U(-1, 1)^s``;
    ``(P, mu, r)`` (T, s, s), (T, s), (T, s)."""
    T, s = check_int(T, "T"), check_int(s, "s")
    rng = check_rng(rng)
    P = _normalised(rng.uniform(0.0, 1.0, size=(T, s, s)) + 1e-12)
    mu = _normalised(rng.uniform(0.0, 1.0, size=(T, s)) + 1e-12)
    r = rng.uniform(-1.0, 1.0, size=(T, s))
    return P, mu, r


def sample_tasks(T: int, s: int, d: int, rng: np.random.Generator, kind: str = "boyan") -> Tasks:
    """T tasks of (WP1): MRPs of ``kind`` ('boyan' or 'random') and features ``phi ~ U(-1, 1)^{s x d}``,
    each task its own table."""
    if kind not in TASK_KINDS:
        raise ValueError(f"kind: expected one of {TASK_KINDS}, got {kind!r}")
    d = check_int(d, "d")
    P, mu, r = (boyan_chains if kind == "boyan" else random_mrps)(T, s, rng)
    phi = rng.uniform(-1.0, 1.0, size=(P.shape[0], P.shape[1], d))
    return Tasks(P, mu, r, phi)


def sample_trajectories(tasks: Tasks, length: int, rng: np.random.Generator) -> np.ndarray:
    """One trajectory ``x_0 ~ mu, x_{t+1} ~ P[x_t]`` of ``length`` states per task: int array (T, length)."""
    length = check_int(length, "length")
    rng = check_rng(rng)
    T, s = tasks.mu.shape
    rows = np.arange(T)
    cum_mu = np.cumsum(tasks.mu, axis=-1)
    cum_P = np.cumsum(tasks.P, axis=-1)
    x = np.empty((T, length), dtype=np.int64)
    u = rng.uniform(size=(T, length))
    x[:, 0] = np.minimum((cum_mu < u[:, :1]).sum(axis=-1), s - 1)
    for t in range(1, length):
        x[:, t] = np.minimum((cum_P[rows, x[:, t - 1]] < u[:, t : t + 1]).sum(axis=-1), s - 1)
    return x


def prompts(
    tasks: Tasks, states: np.ndarray, gamma: float, n: int, n_windows: int
) -> tuple[np.ndarray, np.ndarray]:
    """The sliding windows of (WP1): ``Z`` (T, K+1, D, n+1) for windows ``k = 0..K`` (``K =
    n_windows``; window K is the 'next' window of window K-1) and the rewards ``r(x_{k+n+1})`` (T, K)
    of the first K queries. ``states`` (T, >= K+n+2)."""
    gamma = check_gamma(gamma)
    n, K = check_int(n, "n"), check_int(n_windows, "n_windows")
    states = np.asarray(states)
    T, d = len(tasks), tasks.phi.shape[-1]
    if states.ndim != 2 or states.shape[0] != T or states.shape[1] < K + n + 2:
        raise ValueError(f"states: expected shape ({T}, >= {K + n + 2}), got {states.shape}")
    k = np.arange(K + 1)[:, None] + np.arange(n)[None, :]  # (K+1, n): context state k+i
    rows = np.arange(T)[:, None, None]
    x_ctx, x_nxt = states[:, k], states[:, k + 1]
    x_q = states[:, np.arange(K + 1) + n + 1]
    Z = np.zeros((T, K + 1, 2 * d + 1, n + 1))
    Z[:, :, :d, :n] = np.swapaxes(tasks.phi[rows, x_ctx], -1, -2)
    Z[:, :, d : 2 * d, :n] = gamma * np.swapaxes(tasks.phi[rows, x_nxt], -1, -2)
    Z[:, :, 2 * d, :n] = tasks.r[rows, x_ctx]
    Z[:, :, :d, n] = tasks.phi[np.arange(T)[:, None], x_q]
    rq = tasks.r[np.arange(T)[:, None], x_q[:, :K]]
    return Z, rq


def _check_theta(Ps: Any, Qs: Any, D: int) -> tuple[np.ndarray, np.ndarray]:
    Ps, Qs = as_float_array(Ps, "Ps", 3), as_float_array(Qs, "Qs", 3)
    for name, x in (("Ps", Ps), ("Qs", Qs)):
        if x.shape[1:] != (D, D) or x.shape[0] < 1:
            raise ValueError(f"{name}: expected shape (L, {D}, {D}) with L >= 1, got {x.shape}")
    if Ps.shape[0] != Qs.shape[0]:
        raise ValueError(f"Qs: {Qs.shape[0]} layers but Ps has {Ps.shape[0]}")
    return Ps, Qs


def _check_prompts(Z: Any, ndim: int | None = None) -> np.ndarray:
    Z = as_float_array(Z, "Z", ndim)
    if Z.ndim < 2 or Z.shape[-2] < 3 or Z.shape[-2] % 2 == 0 or Z.shape[-1] < 2:
        raise ValueError(f"Z: expected shape (..., 2d + 1, n + 1) with d, n >= 1, got {Z.shape}")
    return Z


def _mask(mask: Any, n: int) -> np.ndarray:
    if mask is None:
        M = np.eye(n + 1)
        M[n, n] = 0.0
        return M
    M = as_float_array(mask, "mask", 2)
    if M.shape != (n + 1, n + 1):
        raise ValueError(f"mask: expected shape ({n + 1}, {n + 1}), got {M.shape}")
    if np.any(M[n] != 0) or np.any(M[:, n] != 0):
        raise ValueError("mask: its last row and column (the query's) must be zero")
    return M


def _forward(Z: np.ndarray, Ps: np.ndarray, Qs: np.ndarray, M: np.ndarray) -> tuple[list, np.ndarray]:
    n = Z.shape[-1] - 1
    cache = []
    for P, Q in zip(Ps, Qs, strict=True):
        A = (Z @ M) @ np.swapaxes(Z, -1, -2)
        QZ = Q @ Z
        AQZ = A @ QZ
        cache.append((Z, A, QZ, AQZ))
        Z = Z + (P @ AQZ) / n
    return cache, Z


def values(Z: Any, Ps: Any, Qs: Any, mask: Any = None) -> np.ndarray:
    """``v_theta(Z) = -Z_L[D, n+1]`` for prompts ``Z`` (..., D, n+1) under L layers ``(Ps, Qs)``
    (L, D, D); shape (...)."""
    Z = _check_prompts(Z)
    Ps, Qs = _check_theta(Ps, Qs, Z.shape[-2])
    _, ZL = _forward(Z, Ps, Qs, _mask(mask, Z.shape[-1] - 1))
    return -ZL[..., -1, -1]


def value_and_td_direction(
    Z: Any, rq: Any, Ps: Any, Qs: Any, gamma: float, mask: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r"""The sampled semi-gradient TD direction of (WP1) over a batch of window sequences.

    ``Z`` (B, K+1, D, n+1) and ``rq`` (B, K) from :func:`prompts`; returns ``(v, delta, dP, dQ)``:
    values (B, K+1), TD errors (B, K) and
    ``dP_l = (1/(B K)) sum_{b,k} delta_{b,k} dv(Z_{b,k})/dP_l`` (L, D, D), likewise ``dQ``, the next
    value treated as a constant (the authors' ``detach``). The update is ``theta + beta (dP, dQ)``;
    the authors' loss ``mean_k (r + gamma v'.detach() - v)^2`` has gradient ``-2 (dP, dQ)``. With
    shared weights sum the L layers' directions. Exact backpropagation through (W2):
    ``Y = Z + (1/n) P A Q Z``, ``A = Z M Z^T``."""
    return _direction(Z, rq, Ps, Qs, gamma, mask, absolute=False)


def td_direction_error_bound(
    Z: Any, rq: Any, Ps: Any, Qs: Any, gamma: float, mask: Any = None
) -> tuple[np.ndarray, np.ndarray, int]:
    r"""First-order entrywise bound on the rounding error of :func:`value_and_td_direction`'s
    ``(dP, dQ)`` as computed in float64 (:mod:`lsa_theory.roundoff`): ``2 gamma_K (|dP|, |dQ|)_abs``,
    where ``(.)_abs`` is the same computation on ``|Z|``, ``|P_l|``, ``|Q_l|``, ``|r|`` with the TD
    error replaced by ``|r| + gamma |v'|_abs + |v|_abs`` (no cancellation anywhere, so every partial
    sum is bounded by it; the factor 2 covers the errors of ``delta`` and of ``grad v``), and
    ``K = 3 L (n + 3 D + 3) + B K_w`` the longest chain of rounded operations (forward, the two
    backward paths, the mean over the ``B K_w`` windows). Returns ``(bound_P, bound_Q, K)``."""
    Z, rq = _check_windows(Z, rq)
    Ps, Qs = _check_theta(Ps, Qs, Z.shape[-2])
    if mask is not None:
        mask = np.abs(_mask(mask, Z.shape[-1] - 1))
    _, _, bP, bQ = _direction(np.abs(Z), np.abs(rq), np.abs(Ps), np.abs(Qs), gamma, mask, absolute=True)
    L, D, n = Ps.shape[0], Z.shape[-2], Z.shape[-1] - 1
    K = 3 * L * (n + 3 * D + 3) + Z.shape[0] * (Z.shape[1] - 1)
    g = roundoff.gamma(K)
    return 2 * g * bP, 2 * g * bQ, K


def _check_windows(Z: Any, rq: Any) -> tuple[np.ndarray, np.ndarray]:
    Z = _check_prompts(Z, 4)
    rq = as_float_array(rq, "rq", 2)
    if Z.shape[1] < 2 or rq.shape != (Z.shape[0], Z.shape[1] - 1):
        raise ValueError(f"rq: expected shape {(Z.shape[0], Z.shape[1] - 1)} for Z of shape {Z.shape}")
    return Z, rq


def _direction(Z, rq, Ps, Qs, gamma, mask, absolute: bool):
    Z, rq = _check_windows(Z, rq)
    gamma = check_gamma(gamma)
    Ps, Qs = _check_theta(Ps, Qs, Z.shape[-2])
    n = Z.shape[-1] - 1
    M = _mask(mask, n)
    if absolute:
        M = np.abs(M)
    cache, ZL = _forward(Z, Ps, Qs, M)
    v = -ZL[..., -1, -1]
    if absolute:
        v = -v
        delta = rq + gamma * v[:, 1:] + v[:, :-1]
    else:
        delta = rq + gamma * v[:, 1:] - v[:, :-1]
    weight = np.zeros(v.shape)
    weight[:, :-1] = delta / delta.size
    G = np.zeros(Z.shape)
    G[..., -1, -1] = weight if absolute else -weight
    dP, dQ = np.zeros_like(Ps), np.zeros_like(Qs)
    for layer in range(len(Ps) - 1, -1, -1):
        Zl, A, QZ, AQZ = cache[layer]
        P, Q = Ps[layer], Qs[layer]
        dP[layer] = np.einsum("bkij,bkhj->ih", G, AQZ) / n
        H = (P.T @ G) / n  # d v / d(A Q Z)
        dQ[layer] = np.einsum("bkji,bkjh,bkmh->im", A, H, Zl)
        dA = H @ np.swapaxes(QZ, -1, -2)
        G = G + (np.swapaxes(A @ Q, -1, -2) @ H) + (dA @ Zl @ M.T) + (np.swapaxes(dA, -1, -2) @ Zl @ M)
    return v, delta, dP, dQ


@dataclass
class AdamState:
    """Adam's moments ``m``, ``v`` (each a tuple of arrays shaped like the parameters) and step count."""

    m: tuple
    v: tuple
    t: int = 0
    lr: float = 1e-3
    betas: tuple = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 1e-6


def adam_init(params: tuple, lr: float = 1e-3, weight_decay: float = 1e-6) -> AdamState:
    """Adam with torch's defaults (betas 0.9, 0.999, eps 1e-8) and L2 ``weight_decay`` added to the
    gradient, as ``torch.optim.Adam`` (the authors' lr 1e-3, weight decay 1e-6)."""
    check_real(lr, "lr", low=0.0, low_open=True)
    check_real(weight_decay, "weight_decay", low=0.0)
    return AdamState(
        tuple(np.zeros_like(p) for p in params),
        tuple(np.zeros_like(p) for p in params),
        0,
        lr,
        weight_decay=weight_decay,
    )


def adam_step(params: tuple, grads: tuple, state: AdamState) -> tuple[tuple, AdamState]:
    """One ``torch.optim.Adam`` step (bias-corrected moments); returns new parameters and state."""
    b1, b2 = state.betas
    t = state.t + 1
    new_p, new_m, new_v = [], [], []
    for p, g, m, v in zip(params, grads, state.m, state.v, strict=True):
        g = g + state.weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        denom = np.sqrt(v) / np.sqrt(1 - b2**t) + state.eps
        new_p.append(p - (state.lr / (1 - b1**t)) * m / denom)
        new_m.append(m)
        new_v.append(v)
    return tuple(new_p), AdamState(
        tuple(new_m), tuple(new_v), t, state.lr, state.betas, state.eps, state.weight_decay
    )


def xavier_start(L: int, D: int, rng: np.random.Generator, gain: float = 0.1, shared: bool = True):
    """The authors' start ``xavier_normal_(gain)``: entries ``N(0, gain^2 2 / (D + D))``; ``(Ps, Qs)``
    of shape (L, D, D) (with ``shared`` one pair repeated L times)."""
    L, D = check_int(L, "L"), check_int(D, "D")
    rng = check_rng(rng)
    std = gain * np.sqrt(2.0 / (2 * D))
    k = 1 if shared else L
    Ps = rng.normal(0.0, std, size=(k, D, D))
    Qs = rng.normal(0.0, std, size=(k, D, D))
    if shared:
        Ps, Qs = np.repeat(Ps, L, axis=0), np.repeat(Qs, L, axis=0)
    return Ps, Qs


# --------------------------------------------------------------------------- the group (WP2)


def signed_permutations(d: int) -> np.ndarray:
    """The ``2^d d!`` signed permutation matrices (|G|, d, d), the symmetry group of [W]'s law."""
    d = check_int(d, "d")
    out = []
    for perm in itertools.permutations(range(d)):
        for signs in itertools.product((1.0, -1.0), repeat=d):
            g = np.zeros((d, d))
            g[np.arange(d), perm] = signs
            out.append(g)
    return np.array(out)


def sign_group(d: int) -> np.ndarray:
    """``{I, -I}`` (2, d, d): its fixed space is the 'even' set."""
    d = check_int(d, "d")
    return np.array([np.eye(d), -np.eye(d)])


def first_half_permutations(d: int) -> np.ndarray:
    """The mutation of the issue: the (unsigned) permutations of the first ``ceil(d/2)`` coordinates,
    a subgroup too small to force ``Fix`` of the signed permutations."""
    d = check_int(d, "d")
    h = (d + 1) // 2
    out = []
    for perm in itertools.permutations(range(h)):
        g = np.eye(d)
        g[:h, :h] = np.eye(h)[list(perm)]
        out.append(g)
    return np.array(out)


def lift(g: Any) -> np.ndarray:
    """``ghat = diag(g, g, 1)`` (..., D, D) for ``g`` (..., d, d)."""
    g = as_float_array(g, "g")
    if g.ndim < 2 or g.shape[-1] != g.shape[-2] or g.shape[-1] < 1:
        raise ValueError(f"g: expected shape (..., d, d), got {g.shape}")
    d = g.shape[-1]
    out = np.zeros(g.shape[:-2] + (2 * d + 1, 2 * d + 1))
    out[..., :d, :d] = g
    out[..., d : 2 * d, d : 2 * d] = g
    out[..., 2 * d, 2 * d] = 1.0
    return out


def _check_square(M: Any) -> np.ndarray:
    M = as_float_array(M, "M")
    if M.ndim < 2 or M.shape[-1] != M.shape[-2] or M.shape[-1] < 3 or M.shape[-1] % 2 == 0:
        raise ValueError(f"M: expected shape (..., 2d + 1, 2d + 1) with d >= 1, got {M.shape}")
    return M


def fix_coordinates(M: Any) -> np.ndarray:
    """The 5 coordinates ``(m11, m12, m21, m22, m33)`` of the orthogonal projection of M (..., D, D)
    onto the fixed space of the signed permutations (each ``m`` the mean diagonal of its d x d block)."""
    M = _check_square(M)
    d = (M.shape[-1] - 1) // 2
    blk = [M[..., i * d : (i + 1) * d, j * d : (j + 1) * d] for i in (0, 1) for j in (0, 1)]
    m = [np.trace(b, axis1=-2, axis2=-1) / d for b in blk]
    return np.stack([*m, M[..., 2 * d, 2 * d]], axis=-1)


def fix_from_coordinates(c: Any, d: int) -> np.ndarray:
    """The point ``[[m11 I, m12 I, 0], [m21 I, m22 I, 0], [0, 0, m33]]`` (..., D, D) of Fix from its
    coordinates ``c`` (..., 5)."""
    c = as_float_array(c, "c")
    if c.ndim < 1 or c.shape[-1] != 5:
        raise ValueError(f"c: expected shape (..., 5), got {c.shape}")
    d = check_int(d, "d")
    Id = np.eye(d)
    M = np.zeros(c.shape[:-1] + (2 * d + 1, 2 * d + 1))
    for k, (i, j) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        M[..., i * d : (i + 1) * d, j * d : (j + 1) * d] = c[..., k, None, None] * Id
    M[..., 2 * d, 2 * d] = c[..., 4]
    return M


def fix_project(M: Any, group: str = "signed") -> np.ndarray:
    """Orthogonal projection of M (..., D, D) onto Fix(G): ``group='signed'`` (the parametrisation
    above) or ``'even'`` (``{I, -I}``: the cross blocks between the ``(phi, gamma phi')`` rows and
    columns and the reward coordinate set to 0)."""
    M = _check_square(M)
    d = (M.shape[-1] - 1) // 2
    if group == "signed":
        return fix_from_coordinates(fix_coordinates(M), d)
    if group == "even":
        out = M.copy()
        out[..., : 2 * d, 2 * d] = 0.0
        out[..., 2 * d, : 2 * d] = 0.0
        return out
    raise ValueError(f"group: expected 'signed' or 'even', got {group!r}")


def fix_outside(M: Any, group: str = "signed") -> tuple[float, float]:
    """``(|outside|_F, |inside|_F)`` of M (any number of (D, D) matrices, norms over all of them)."""
    M = _check_square(M)
    inside = fix_project(M, group)
    return float(np.linalg.norm(M - inside)), float(np.linalg.norm(inside))


def orbit_averaged_direction(
    Z: Any,
    rq: Any,
    Ps: Any,
    Qs: Any,
    gamma: float,
    group: Any,
    shared: bool = True,
    mask: Any = None,
    with_bound: bool = False,
) -> tuple[np.ndarray, ...]:
    """The sampled TD direction averaged over the orbit of the data: ``(1/|G|) sum_g u(theta; ghat Z)``,
    each term computed on the transformed prompts ``ghat Z`` (features ``phi g^T``) by
    :func:`value_and_td_direction`; ``group`` (|G|, d, d). Returns ``(dP, dQ)`` (L, D, D), the L
    layers' directions summed and repeated when ``shared``; ``with_bound`` appends the averaged
    entrywise round-off bounds of :func:`td_direction_error_bound` (the bound of the average)."""
    Z, rq = _check_windows(Z, rq)
    group = as_float_array(group, "group", 3)
    d = (Z.shape[-2] - 1) // 2
    if group.shape[1:] != (d, d) or group.shape[0] < 1:
        raise ValueError(f"group: expected shape (|G|, {d}, {d}), got {group.shape}")
    if np.max(np.abs(group @ np.swapaxes(group, -1, -2) - np.eye(d))) > 1e-12:
        raise ValueError("group: its matrices must be orthogonal")
    gh = lift(group)
    dP = dQ = bP = bQ = 0.0
    for g in gh:
        _, _, p, q = value_and_td_direction(g @ Z, rq, Ps, Qs, gamma, mask)
        dP, dQ = dP + p, dQ + q
        if with_bound:
            ep, eq, _ = td_direction_error_bound(g @ Z, rq, Ps, Qs, gamma, mask)
            bP, bQ = bP + ep, bQ + eq
    out = []
    for x in (dP, dQ, bP, bQ)[: 4 if with_bound else 2]:
        x = x / len(gh)
        if shared:
            x = np.repeat(x.sum(axis=0, keepdims=True), x.shape[0], axis=0)
        out.append(x)
    return tuple(out)


# --------------------------------------------------------------------------- oracles


def stationary_distribution(P: Any) -> np.ndarray:
    """The stationary law of each chain ``P`` (..., s, s): the left eigenvector of eigenvalue 1,
    solved from ``mu (I - P) = 0``, ``sum mu = 1`` by least squares; shape (..., s)."""
    P = as_float_array(P, "P")
    if P.ndim < 2 or P.shape[-1] != P.shape[-2] or P.shape[-1] < 1:
        raise ValueError(f"P: expected shape (..., s, s), got {P.shape}")
    check_distribution(P, "P")
    s = P.shape[-1]
    A = np.concatenate([np.swapaxes(np.eye(s) - P, -1, -2), np.ones(P.shape[:-2] + (1, s))], axis=-2)
    b = np.zeros(P.shape[:-2] + (s + 1,))
    b[..., s] = 1.0
    At = np.swapaxes(A, -1, -2)
    return np.linalg.solve(At @ A, (At @ b[..., None]))[..., 0]


def true_values(tasks: Tasks, gamma: float) -> np.ndarray:
    """``v = (I - gamma P)^{-1} r`` (T, s), ``r`` the reward of the state left."""
    gamma = check_gamma(gamma)
    s = tasks.P.shape[-1]
    return np.linalg.solve(np.eye(s) - gamma * tasks.P, tasks.r[..., None])[..., 0]

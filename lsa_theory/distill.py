r"""Algorithm Distillation in the LSA setting: the source, its histories and what a stack reads from
them, (AD0)-(AD5) of docs/theory.md §11.

(AD0) The source is episodic batch SARSA: ``w_1 = w_0``; episode k rolls out ``H`` steps
epsilon-greedy on ``Q_{w_k}`` from ``s ~ mu0`` (a reset every episode) and applies one (S2) step,

.. math:: w_{k+1} = w_k + \frac{\alpha}{H} \sum_{i \in \text{episode } k} \delta_i(w_k) \phi_i .

Its history ``h_K`` is the (H) columns ``x_i = [phi_i; gamma phi_i^+; r_{i+1}]`` of episodes 1..K,
(2d+1, K H), with the episode index of every column kept (:class:`History`); each episode ends with
the next action its own policy drew. :func:`episodic_loop` is the closed loop with resets (the one
driver :func:`lsa_theory.loop_driver.closed_loop`, ``restart`` everywhere) for any rule that reads
the episodes so far; :func:`source_history` is the source.

(AD1) :func:`episode_masks` and :func:`masked_episode_stack`: K (L1) layers
``H <- H + (1/H) (V H) M_k (H^T P H)``, ``M_k = diag(1[column in episode k], 0)``; with the (S3)
weights they output the source's ``w_{K+1}`` from ``H(h_K; w_0)`` (:func:`naive_source`, the
deliberately naive loop).
(AD2) :func:`pooled_td` ``(Ahat, bhat)`` and :func:`pooled_sarsa`: L unmasked (S3) layers are L
batch-SARSA iterations ``w <- w + alpha (bhat - Ahat w)`` on the pooled columns.
(AD5) :func:`replay_source` recomputes the source's parameters from its own columns with the
episodes in any order: what an unmasked stack (equivariant under column permutations) cannot fit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .algorithms import sarsa_update
from .checks import as_float_array, check_gamma, check_int, check_real, check_rng
from .loop_driver import SarsaAgent, closed_loop
from .mdp import TabularMDP, check_mdp
from .reference import check_numeric, naive_batch_sarsa

__all__ = [
    "History",
    "episodic_loop",
    "source_history",
    "episode_masks",
    "masked_episode_stack",
    "naive_source",
    "replay_source",
    "pooled_td",
    "pooled_sarsa",
    "pooled_rate",
]


@dataclass(frozen=True)
class History:
    """A learning history (AD0): ``X`` (2d+1, K H) the (H) columns of episodes 1..K in order,
    ``episode`` (K H,) the episode index (0..K-1) of each column, ``ws`` (K+1, d) the parameters
    held after 0..K episodes (``ws[0] = w_0``, ``ws[k] = w_{k+1}``), ``H`` steps per episode;
    ``diverged_at``: the first episode whose update diverged (``None`` if none; later rows NaN)."""

    X: np.ndarray
    episode: np.ndarray
    ws: np.ndarray
    H: int
    diverged_at: int | None = None

    @property
    def K(self) -> int:
        return self.ws.shape[0] - 1

    def episodes(self, first: int = 0, last: int | None = None) -> np.ndarray:
        """The columns (2d+1, m H) of episodes ``first..last-1`` (0-based, ``last`` default K)."""
        last = self.K if last is None else last
        return self.X[:, first * self.H : last * self.H]


def episodic_loop(
    mdp: TabularMDP,
    phi: np.ndarray,
    w0: np.ndarray,
    update: Callable[[list, np.ndarray], np.ndarray],
    *,
    H: int,
    K: int,
    epsilon: float,
    rng: np.random.Generator,
) -> History:
    """(AD0)'s closed loop with resets: K episodes of ``H`` steps, each from ``s ~ mu0``,
    epsilon-greedy on ``Q_w = phi w`` (``phi`` (S, A, d), ``w0`` (d,)); after episode k,
    ``w <- update(frames, w)`` with ``frames`` the list of the (2d+1, H) columns of episodes 1..k
    (a rule may read any of them). Runs through the one driver
    :func:`lsa_theory.loop_driver.closed_loop` (``restart`` at every state, draws from ``rng`` in its
    order). Returns the :class:`History` of the episodes the loop acted in (a divergence stops
    the loop: ``diverged_at`` set, the rows after it NaN)."""
    mdp = check_mdp(mdp)
    phi = as_float_array(phi, "phi", ndim=3)
    if phi.shape[:2] != (mdp.n_states, mdp.n_actions) or phi.shape[2] < 1:
        raise ValueError(f"phi: expected shape ({mdp.n_states}, {mdp.n_actions}, d), got {phi.shape}")
    d = phi.shape[2]
    w0 = as_float_array(w0, "w0", ndim=1)
    if w0.shape != (d,):
        raise ValueError(f"w0: expected length {d} to match phi, got {w0.shape[0]}")
    H, K = check_int(H, "H"), check_int(K, "K")
    epsilon = check_real(epsilon, "epsilon", low=0.0, high=1.0)
    rng = check_rng(rng)
    if not callable(update):
        raise ValueError(f"update: expected a callable (frames, w) -> w', got {type(update).__name__}")
    agent = SarsaAgent(phi, check_gamma(mdp.gamma), epsilon)
    frames: list[np.ndarray] = []

    def step(X, g, w, lam):
        frames.append(X)
        w_new = as_float_array(update(list(frames), w), "update(frames, w)", ndim=1)
        if w_new.shape != (d,):
            raise ValueError(f"update(frames, w): expected shape {(d,)}, got {w_new.shape}")
        return w_new, None

    restart = np.ones(mdp.n_states, dtype=bool)
    res = closed_loop(mdp, agent, w0, None, step, n=H, n_updates=K, rng=rng, restart=restart)
    X = np.concatenate(list(res.Xs), axis=1)
    episode = np.repeat(np.arange(K), H)
    return History(X, episode, res.ws, H, res.diverged_at)


def source_history(
    mdp: TabularMDP,
    phi: np.ndarray,
    w0: np.ndarray,
    *,
    H: int,
    K: int,
    alpha: float,
    epsilon: float,
    rng: np.random.Generator,
) -> History:
    """(AD0) the source: :func:`episodic_loop` with ``w_{k+1} = w_k + (alpha/H) sum_{i in episode k}
    delta_i(w_k) phi_i`` (:func:`lsa_theory.sarsa_update` on the last episode's columns)."""
    alpha = check_real(alpha, "alpha", low=0.0, low_open=True)
    return episodic_loop(
        mdp, phi, w0, lambda frames, w: sarsa_update(frames[-1], w, alpha), H=H, K=K, epsilon=epsilon, rng=rng
    )


def episode_masks(K: int, H: int) -> np.ndarray:
    """(AD1) the K column masks (K, K H + 1), integer 0/1: row k is ``1[column in episode k]`` on
    the K H context columns of ``H(h_K; w_0)`` and 0 on the parameter column."""
    K, H = check_int(K, "K"), check_int(H, "H")
    M = np.zeros((K, K * H + 1), dtype=np.int64)
    for k in range(K):
        M[k, k * H : (k + 1) * H] = 1
    return M


def masked_episode_stack(Z: Any, layers: Sequence, masks: Any) -> Any:
    """(AD1) the masked stack on a prompt ``Z`` (D, N): layer l is
    ``Z <- Z + (1/|m_l|) (V_l Z) diag(m_l) (Z^T P_l Z)`` with ``(P_l, V_l)`` (D, D) and the column
    mask ``m_l = masks[l]`` (N,) of 0/1 entries, ``|m_l|`` its number of ones (``H`` for
    :func:`episode_masks`). Computed as ``V (Z diag(m) Z^T) P Z / |m|``. Float64 for float input;
    ``dtype=object`` arrays (sympy, exact ring elements) go through the same products, so the one
    stack serves the numeric rows and the exact proof."""
    exact = isinstance(Z, np.ndarray) and Z.dtype.kind == "O"
    Z = np.asarray(Z, dtype=object) if exact else as_float_array(Z, "Z", ndim=2)
    if Z.ndim != 2:
        raise ValueError(f"Z: expected shape (D, N), got {Z.shape}")
    D, N = Z.shape
    try:
        layers = list(layers)
    except TypeError:
        raise ValueError(
            f"layers: expected a sequence of (P, V) pairs, got {type(layers).__name__}"
        ) from None
    if exact:
        masks = np.asarray(masks, dtype=object)
    else:
        masks = as_float_array(masks, "masks", ndim=2)
        if not np.all((masks == 0) | (masks == 1)):
            raise ValueError("masks: expected 0/1 entries")
    if masks.ndim != 2 or masks.shape[1] != N or masks.shape[0] < len(layers):
        raise ValueError(
            f"masks: expected shape (>= {len(layers)}, {N}) for {len(layers)} layers on {N} columns, "
            f"got {masks.shape}"
        )
    if not layers:
        raise ValueError("layers: need at least one (P, V) pair")
    for l, pair in enumerate(layers):
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise ValueError(f"layers[{l}]: expected a (P, V) pair, got {type(pair).__name__}")
        P, V = pair
        P, V = (
            np.asarray(M, dtype=object) if exact else as_float_array(M, f"layers[{l}]", ndim=2)
            for M in (P, V)
        )
        if P.shape != (D, D) or V.shape != (D, D):
            raise ValueError(f"layers[{l}]: expected (P, V) of shape ({D}, {D}), got {P.shape}, {V.shape}")
        m = masks[l]
        count = int(np.sum(m != 0))
        if count == 0:
            raise ValueError(f"masks[{l}]: selects no column")
        G = (Z * m[None, :]) @ Z.T
        Z = Z + (V @ G @ P @ Z) / count
    return Z


def naive_source(phi, phi_next, r, w0, gamma, alpha, H: int, K: int) -> np.ndarray:
    """(AD0)/(AD1)'s target written out: the source's ``w_{K+1}`` from ``w_0`` and its columns,
    episode k (rows ``kH..kH+H-1`` of ``phi``, ``phi_next`` (>= K H, d), ``r``) applying one (S2)
    step with ``alpha/H`` (:func:`lsa_theory.naive_batch_sarsa` with ``n_iter = 1``, explicit loops
    with ``+ * /``: floats, sympy symbols and ring elements alike). Returns (d,)."""
    H, K = check_int(H, "H"), check_int(K, "K")
    check_numeric(list(w0), "w0")
    if len(r) < K * H:
        raise ValueError(f"r: K = {K} episodes of H = {H} need {K * H} transitions, got {len(r)}")
    w = w0
    for k in range(K):
        sl = slice(k * H, (k + 1) * H)
        w = naive_batch_sarsa(list(phi[sl]), list(phi_next[sl]), list(r[sl]), w, gamma, alpha)
    return np.asarray(w)


def replay_source(
    X: np.ndarray, w0: np.ndarray, alpha: float, H: int, order: Sequence[int] | None = None
) -> np.ndarray:
    """The source's parameters recomputed from its columns ``X`` (2d+1, K H) with the episodes
    applied in ``order`` (a permutation of 0..K-1; default 0..K-1): ``ws`` (K+1, d), ``ws[0] = w0``,
    ``ws[j+1] = ws[j] + (alpha/H) sum_{i in episode order[j]} delta_i(ws[j]) phi_i``. The order
    matters ((AD5)): no unmasked stack can fit the difference."""
    X = as_float_array(X, "X", ndim=2)
    H = check_int(H, "H")
    if X.shape[1] % H or (X.shape[0] - 1) % 2:
        raise ValueError(f"X: expected (2d+1, K H) columns with H = {H}, got {X.shape}")
    K = X.shape[1] // H
    order = list(range(K)) if order is None else [int(k) for k in order]
    if sorted(order) != list(range(K)):
        raise ValueError(f"order: expected a permutation of 0..{K - 1}, got {order}")
    w0 = as_float_array(w0, "w0", ndim=1)
    if w0.shape != ((X.shape[0] - 1) // 2,):
        raise ValueError(f"w0: expected length {(X.shape[0] - 1) // 2} to match X, got {w0.shape[0]}")
    alpha = check_real(alpha, "alpha")
    ws = [w0]
    for k in order:
        ws.append(sarsa_update(np.ascontiguousarray(X[:, k * H : (k + 1) * H]), ws[-1], alpha))
    return np.stack(ws)


def pooled_td(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(AD2) the pooled TD statistics of columns ``X`` (2d+1, N): ``Ahat = (1/N) sum phi (phi -
    gamma phi^+)^T`` (d, d) and ``bhat = (1/N) sum r phi`` (d,)."""
    X = as_float_array(X, "X", ndim=2)
    m, N = X.shape
    if m % 2 == 0 or N < 1:
        raise ValueError(f"X: expected (2d+1, N) columns with N >= 1, got {X.shape}")
    d = (m - 1) // 2
    F, G, r = X[:d], X[d : 2 * d], X[2 * d]
    return F @ (F - G).T / N, F @ r / N


def pooled_sarsa(X: np.ndarray, w0: np.ndarray, alpha: float, L: int) -> np.ndarray:
    """(AD2) ``L`` batch-SARSA iterations on the pooled columns ``X`` (2d+1, N) from ``w0`` (d,):
    ``w <- w + alpha (bhat - Ahat w)`` (:func:`pooled_td`), what ``L`` unmasked (S3) layers compute
    on ``H(h; w_0)``. Returns (d,) (non-finite if the iteration overflows)."""
    A, b = pooled_td(X)
    alpha = check_real(alpha, "alpha")
    L = check_int(L, "L")
    w = as_float_array(w0, "w0", ndim=1)
    if w.shape != b.shape:
        raise ValueError(f"w0: expected length {b.shape[0]} to match X, got {w.shape[0]}")
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(L):
            w = w + alpha * (b - A @ w)
    return w


def pooled_rate(X: np.ndarray, alpha: float, rtol: float = 1e-10) -> float:
    """(AD2)'s contraction factor ``max |1 - alpha lambda|`` over the eigenvalues ``lambda`` of
    ``Ahat`` with ``|lambda| > rtol max|lambda|`` (the others count as the null space, from
    unvisited state-action pairs). The eigenvalue condition is ``pooled_rate < 1``; the error of
    the iteration then shrinks like ``pooled_rate^L`` (slowly when a pair is rarely visited:
    a small eigenvalue puts the rate within ``alpha |lambda|`` of 1)."""
    A, _ = pooled_td(X)
    alpha = check_real(alpha, "alpha")
    lam = np.linalg.eigvals(A)
    big = np.abs(lam) > check_real(rtol, "rtol", low=0.0) * max(np.abs(lam).max(), np.finfo(float).tiny)
    return float(np.abs(1.0 - alpha * lam[big]).max(initial=0.0))

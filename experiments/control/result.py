"""What a deployment of :mod:`lsa_theory.experiments.control` returns, and how two are compared:
:class:`DeployResult` (one closed loop (S6)/(A5)), its evaluation points :func:`eval_points`, the
first update whose context differs between two runs (:func:`first_mismatch`) and the largest
parameter gap before it (:func:`max_w_diff`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DeployResult", "eval_points", "first_mismatch", "max_w_diff"]


@dataclass(frozen=True)
class DeployResult:
    """One closed loop. ``updates`` (E,) evaluation points (0, eval_every, ..., n_updates);
    ``normalized_return`` (E,) of the greedy policy there, ``normalized_return_behaviour`` (E,) of the
    behaviour policy (epsilon-greedy / ``pi_lambda``); ``ws`` (T+1, d) and for actor-critic ``lams`` (T+1,
    d_pi) parameters; ``states``/``actions`` (T, n+1) the contexts' trajectories; ``diverged_at``: first
    update whose parameter is not finite or has 1-norm above :data:`lsa_theory.rollout.DIVERGENCE_BOUND`,
    or whose context or update overflowed (a divergence is recorded, not an error; ``None`` if none; the
    loop stops there, later entries are NaN); ``forward``: ``"l1"``, ``"l2"`` or ``"teacher"``;
    ``resets``: contexts restarted from ``mu0``.

    With ``error_bounds=True`` (:func:`~lsa_theory.experiments.control.deploy`; ``None`` otherwise):
    ``w_err`` (T+1, d + d_pi) the entrywise bound
    :func:`~lsa_theory.experiments.control.roundoff.propagate_error_bound` on ``|[w_t; lambda_t] -
    exact|``, the distance of the computed parameters from the exact-arithmetic loop on the same
    trajectory (NaN after a divergence); ``identity_ratio`` (T,) for a block, ``max_i |TF_i - teacher_i| /
    (bound_i)`` of update ``t`` with the teacher's update computed on the block's own input and the bound
    :func:`~lsa_theory.experiments.control.roundoff.block_teacher_error_bound` (``<= 1`` is the (S3)/(A3)
    identity as computed; NaN for the teacher itself); for algorithms without an actor ``q_gap`` (T,) the
    smallest gap between the two largest computed ``Q_w(s, .)`` over the states of context ``t`` (drawn
    with ``w_{t-1}``), ``q_round`` (T,) the bound ``gamma_d max |phi(s, .)|^T |w_{t-1}|`` on the rounding
    of those ``Q`` and ``phi_abs_max`` the largest ``|phi|`` entry."""

    updates: np.ndarray
    normalized_return: np.ndarray
    normalized_return_behaviour: np.ndarray
    ws: np.ndarray
    lams: np.ndarray | None
    states: np.ndarray
    actions: np.ndarray
    diverged_at: int | None
    forward: str
    resets: int = 0
    w_err: np.ndarray | None = None
    identity_ratio: np.ndarray | None = None
    q_gap: np.ndarray | None = None
    q_round: np.ndarray | None = None
    phi_abs_max: float | None = None


def eval_points(n_updates: int, eval_every: int) -> np.ndarray:
    """The updates at which a deployment is scored (E,): ``0, eval_every, 2 eval_every, ...`` and
    ``n_updates`` itself, ascending, without repeats."""
    return np.array(sorted(set(range(0, n_updates + 1, eval_every)) | {n_updates}), dtype=np.int64)


def first_mismatch(a: DeployResult, b: DeployResult) -> int | None:
    """First update (1-based) whose context differs between two runs, ``None`` if none."""
    same = (a.states == b.states).all(axis=1) & (a.actions == b.actions).all(axis=1)
    bad = np.flatnonzero(~same)
    return int(bad[0]) + 1 if bad.size else None


def max_w_diff(a: DeployResult, b: DeployResult, upto: int | None = None, relative: bool = False) -> float:
    """``max_t ||w_t(a) - w_t(b)||_inf`` over the parameters ``w_0 .. w_{upto-1}`` (all if ``None``);
    ``relative``: each term divided by ``max(1, ||w_t(b)||_inf)``. ``lambda`` is included."""
    stop = a.ws.shape[0] if upto is None else upto
    pa, pb = a.ws[:stop], b.ws[:stop]
    if a.lams is not None and b.lams is not None:
        pa = np.concatenate([pa, a.lams[:stop]], axis=1)
        pb = np.concatenate([pb, b.lams[:stop]], axis=1)
    ok = np.isfinite(pa).all(axis=1) & np.isfinite(pb).all(axis=1)
    diff = np.abs(pa[ok] - pb[ok]).max(axis=1, initial=0.0)
    if relative:
        diff = diff / np.maximum(1.0, np.abs(pb[ok]).max(axis=1, initial=0.0))
    return float(diff.max(initial=0.0))

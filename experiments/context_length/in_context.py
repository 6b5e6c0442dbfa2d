"""The in-context regime of :mod:`lsa_theory.experiments.context_length`: one long context read by a
deep stack.

**In context** (:func:`in_context_sweep`), the regime of Algorithm Distillation. Per held-out MDP one
trajectory of ``max(ns)`` transitions of the uniform behaviour policy is drawn
(``heldout_rng(seed, i, 3)``: features ``phi`` (S, A, d = SA) ``~ U(-1, 1)``, state features
``psi`` (S, d_td), then the rollout); the context of length ``n`` is its first ``n`` transitions
(paired across ``n``: prefixes of one trajectory). A deep stack of ``L`` constructed blocks (S3)
reads it from ``w_0 = 0``: by (S5) the stack is ``L`` batch-SARSA iterations on that one batch and
by (L2) each layer needs only ``Sigma_n`` ((2d+1) x (2d+1) whatever ``n``), so each layer is
:func:`lsa_theory.tf_from_statistics` with the construction (checked against
:func:`lsa_theory.lsa_stack` on raw prompts in ``tests/experiments/test_context_length.py``). Scored: the
greedy
normalised return of ``Q_w = phi w`` and the relative value error
``||Q_w - Q^pi||_F / ||Q^pi||_F`` against the behaviour (uniform) policy's ``Q^pi``. Beside it, [W]'s
in-context TD (THEORY §5): the same trajectory as state columns ``[psi(s); gamma psi(s'); r]``,
``L`` masked blocks (W3) (``L`` batch TD(0) steps from ``w = 0``, again from the statistics), value
error ``||psi w - V^pi|| / ||V^pi||``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

import lsa_theory as lt
from lsa_theory import constructions
from lsa_theory.checks import check_int, check_real
from lsa_theory.rollout import diverged

from ..envs import HELDOUT_NAME, heldout_family, heldout_rng
from ..io import (
    atomic_savez,
    atomic_write_json,
    progress,
    single_blas_thread,
    to_jsonable,
    versions,
)
from ..stats import mean_sem_finite, paired_difference
from .common import IN_CONTEXT_STREAM, check_lengths

__all__ = ["InContextConfig", "stack_values", "td_stack_values", "in_context_sweep"]


@dataclass(frozen=True)
class InContextConfig:
    """In-context regime: context lengths ``ns``, stack depths ``Ls`` (each layer the construction
    (S3) with ``alpha``; [W]'s TD stack (W3) with ``td_alpha`` on ``td_d`` state features),
    ``n_mdps`` held-out [LL] MDPs, the uniform behaviour policy."""

    ns: tuple[int, ...] = (5, 10, 20, 40, 80, 160, 320, 640, 1280)
    Ls: tuple[int, ...] = (1, 10, 100, 1000)
    n_mdps: int = 20
    alpha: float = 0.2
    td_alpha: float = 0.2
    td_d: int = 9
    seed: int = 0

    def __post_init__(self) -> None:
        check_lengths(self.ns, "ns")
        check_lengths(self.Ls, "Ls")
        check_int(self.n_mdps, "n_mdps", minimum=2)
        check_real(self.alpha, "alpha", low=0.0, low_open=True)
        check_real(self.td_alpha, "td_alpha", low=0.0, low_open=True)
        check_int(self.td_d, "td_d")
        check_int(self.seed, "seed", minimum=0)

    @classmethod
    def quick(cls) -> InContextConfig:
        """About 10 s: n in {5, 20, 80, 320, 1280}, L in {1, 10, 100}, 20 MDPs."""
        return cls(ns=(5, 20, 80, 320, 1280), Ls=(1, 10, 100))


def stack_values(Sigma: np.ndarray, n: int, alpha: float, Ls: Sequence[int]) -> np.ndarray:
    """``w_L`` (len(Ls), d) of ``L`` stacked constructed blocks (S3) with step ``alpha`` on one (H)
    context with statistics ``Sigma`` (2d+1, 2d+1), from ``w_0 = 0`` (S5): each layer is the (L2)
    readout :func:`lsa_theory.tf_from_statistics` of :func:`lsa_theory.constructions.sarsa`. Rows past a
    non-finite or divergent iterate (:data:`lsa_theory.experiments.control.DIVERGENCE_BOUND`) are NaN."""
    m = Sigma.shape[-1]
    d = (m - 1) // 2
    lay = lt.Layout(d)
    P, V = constructions.sarsa(d, alpha)
    return _iterate(lambda w: lt.tf_from_statistics(Sigma, np.concatenate([[1.0], w]), P, V, n, lay), d, Ls)


def td_stack_values(Sigma: np.ndarray, alpha: float, Ls: Sequence[int]) -> np.ndarray:
    """``w_L`` (len(Ls), d) of ``L`` masked blocks (W3) with ``C = alpha I`` on one (W1) context with
    statistics ``Sigma`` (2d+1, 2d+1) of the state columns ``[psi(s); gamma psi(s'); r]``: ``L``
    batch TD(0) steps ``w <- w + alpha (1/n) sum_i delta_i psi_i`` from ``w = 0``, written with the
    statistics (``(1/n) sum delta_i psi_i = Sigma_{psi r} + (Sigma_{psi, gamma psi'} - Sigma_{psi psi}) w``).
    The value estimate of a query ``s`` is ``psi(s)^T w_L`` ((W2) reads ``-Z[-1, -1]``)."""
    m = Sigma.shape[-1]
    d = (m - 1) // 2
    M = Sigma[:d, d : 2 * d] - Sigma[:d, :d]
    b = Sigma[:d, 2 * d]
    return _iterate(lambda w: w + alpha * (b + M @ w), d, Ls)


def _iterate(step, d: int, Ls: Sequence[int]) -> np.ndarray:
    Ls = list(Ls)
    out = np.full((len(Ls), d), np.nan)
    w = np.zeros(d)
    for layer in range(1, max(Ls) + 1):
        w = step(w)
        if diverged(w):
            break
        for q, L in enumerate(Ls):
            if L == layer:
                out[q] = w
    return out


@single_blas_thread
def in_context_sweep(cfg: InContextConfig | None = None, out: str | Path | None = None) -> dict:
    """In-context regime (module docstring). Returns ``{"config", "versions", "regime": "in-context",
    "rows": [{"n", "L", "normalized_return", "sem", "value_error", "value_error_sem",
    "n_diverged", "n_mdps", "return_diff_prev", "value_error_diff_prev"}], "td_rows": [{"n", "L",
    "value_error", "sem", "n_diverged", "n_mdps", "value_error_diff_prev"}]}``; ``*_diff_prev`` is
    :func:`paired_difference` against the previous ``n`` at the same ``L`` (``None`` for the first)."""
    cfg = InContextConfig() if cfg is None else cfg
    if not isinstance(cfg, InContextConfig):
        raise ValueError(f"cfg: expected an InContextConfig, got {type(cfg).__name__}")
    N, nL, nn = cfg.n_mdps, len(cfg.Ls), len(cfg.ns)
    ret = np.full((nL, nn, N), np.nan)
    verr = np.full((nL, nn, N), np.nan)
    td_err = np.full((nL, nn, N), np.nan)
    for i, mdp in enumerate(progress(list(heldout_family(N, cfg.seed)), desc="in context")):
        rng = heldout_rng(cfg.seed, i, IN_CONTEXT_STREAM)
        S, A = mdp.n_states, mdp.n_actions
        phi = lt.random_features(S, A, None, rng)
        psi = lt.random_state_features(S, cfg.td_d, rng)
        pi = lt.uniform_policy(mdp)
        traj = lt.rollout(mdp, pi, max(cfg.ns), rng)
        X = lt.sarsa_columns(traj, phi, mdp.gamma)
        Xtd = lt.td_columns(traj, psi, mdp.gamma)
        Q, Vpi, sol = lt.q_pi(mdp, pi), lt.v_pi(mdp, pi), lt.optimal(mdp)
        for j, n in enumerate(cfg.ns):
            ws = stack_values(lt.sufficient_statistics(X[:, :n]), n, cfg.alpha, cfg.Ls)
            us = td_stack_values(lt.sufficient_statistics(Xtd[:, :n]), cfg.td_alpha, cfg.Ls)
            for q in range(nL):
                if np.all(np.isfinite(ws[q])):
                    Qw = phi @ ws[q]
                    ret[q, j, i] = lt.normalized_return(mdp, lt.greedy(Qw), sol)
                    verr[q, j, i] = np.linalg.norm(Qw - Q) / np.linalg.norm(Q)
                if np.all(np.isfinite(us[q])):
                    td_err[q, j, i] = np.linalg.norm(psi @ us[q] - Vpi) / np.linalg.norm(Vpi)
    rows, td_rows = [], []
    for q, L in enumerate(cfg.Ls):
        for j, n in enumerate(cfg.ns):
            m_r, s_r, miss = mean_sem_finite(ret[q, j])
            m_v, s_v, _ = mean_sem_finite(verr[q, j])
            m_t, s_t, miss_t = mean_sem_finite(td_err[q, j])
            prev = j > 0
            rows.append(
                {
                    "n": n,
                    "L": L,
                    "normalized_return": m_r,
                    "sem": s_r,
                    "value_error": m_v,
                    "value_error_sem": s_v,
                    "n_diverged": miss,
                    "n_mdps": N,
                    "return_diff_prev": paired_difference(ret[q, j - 1], ret[q, j]) if prev else None,
                    "value_error_diff_prev": paired_difference(verr[q, j - 1], verr[q, j]) if prev else None,
                }
            )
            td_rows.append(
                {
                    "n": n,
                    "L": L,
                    "value_error": m_t,
                    "sem": s_t,
                    "n_diverged": miss_t,
                    "n_mdps": N,
                    "value_error_diff_prev": paired_difference(td_err[q, j - 1], td_err[q, j])
                    if prev
                    else None,
                }
            )
    doc = {
        "regime": "in-context",
        "config": to_jsonable(asdict(cfg)),
        "env": HELDOUT_NAME,
        "behaviour": "uniform",
        "rows": rows,
        "td_rows": td_rows,
        "versions": versions(),
    }
    if out is not None:
        out = Path(out)
        atomic_savez(
            out / "context_length_in-context.npz",
            normalized_return=ret,
            value_error=verr,
            td_value_error=td_err,
        )
        atomic_write_json(out / "context_length_in-context.json", doc)
    return to_jsonable(doc)

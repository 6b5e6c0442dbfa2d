r"""Context length in both regimes of docs/theory.md §6: the closed loop (S6) and one long context.

**Closed loop** (:func:`closed_loop_sweep`). ``w`` is carried from prompt to prompt and ``n`` is a
batch size. For every step size ``alpha`` and context length ``n`` the constructed block (S3)
(its exact (L2) form, ``forward="l2"``, equal to (L1)) runs the loop (S6) on each held-out [LL]
MDP from the same stream ``heldout_rng(seed, i, 1)`` (the same MDP, features and ``w_0`` for every
``n`` and ``alpha``: paired). The greedy policy's normalised return (§0) is read at fixed numbers
of **updates** (``updates``) and at fixed numbers of **environment steps** (``env_steps``: after
``env_steps / n`` updates), all from one loop per cell. A loop that diverges
(:data:`experiments.control.DIVERGENCE_BOUND`) counts in ``n_diverged`` and is left out of the mean.

**In context** (:func:`in_context_sweep`), the regime of Algorithm Distillation. Per held-out MDP one
trajectory of ``max(ns)`` transitions of the uniform behaviour policy is drawn
(``heldout_rng(seed, i, 3)``: features ``phi`` (S, A, d = SA) ``~ U(-1, 1)``, state features
``psi`` (S, d_td), then the rollout); the context of length ``n`` is its first ``n`` transitions
(paired across ``n``: prefixes of one trajectory). A deep stack of ``L`` constructed blocks (S3)
reads it from ``w_0 = 0``: by (S5) the stack is ``L`` batch-SARSA iterations on that one batch and
by (L2) each layer needs only ``Sigma_n`` ((2d+1) x (2d+1) whatever ``n``), so each layer is
:func:`lsa_theory.tf_from_statistics` with the construction (checked against
:func:`lsa_theory.lsa_stack` on raw prompts in ``tests/test_context_length.py``). Scored: the greedy
normalised return of ``Q_w = phi w`` and the relative value error
``||Q_w - Q^pi||_F / ||Q^pi||_F`` against the behaviour (uniform) policy's ``Q^pi``. Beside it, [W]'s
in-context TD (THEORY §5): the same trajectory as state columns ``[psi(s); gamma psi(s'); r]``,
``L`` masked blocks (W3) (``L`` batch TD(0) steps from ``w = 0``, again from the statistics), value
error ``||psi w - V^pi|| / ||V^pi||``.

**Paired differences.** For each ``n`` after the first, the per-MDP difference to the previous
``n`` (same MDPs, features and, in context, trajectory prefixes) with its mean and a 95 %
Student-t confidence interval over the MDPs where neither value is missing.

Results (``out``): ``context_length_{regime}.json`` and ``.npz`` (per-MDP values), written
atomically; :func:`plot_context_length_regimes` draws from them. The older fixed-updates sweep
:func:`context_length_sweep` (block and teacher side by side) and its figure live here too and are
re-exported by :mod:`experiments.control`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import scipy.stats

import constructions
import lsa_theory as lt
from lsa_theory._checks import check_int, check_real

from .control import _first_mismatch, _max_w_diff, _mean_sem, deploy
from .envs import HELDOUT_NAME, heldout_family, heldout_rng
from .io import (
    atomic_savez,
    atomic_write_json,
    progress,
    read_json,
    single_blas_thread,
    to_jsonable,
    versions,
)
from .plots import sem_label

__all__ = [
    "REGIMES",
    "ClosedLoopConfig",
    "InContextConfig",
    "closed_loop_sweep",
    "in_context_sweep",
    "stack_values",
    "td_stack_values",
    "paired_difference",
    "run_context_length",
    "plot_context_length_regimes",
    "context_length_sweep",
    "plot_context_length",
]

REGIMES = ("closed-loop", "in-context")

#: Stream of the in-context regime's draws: ``heldout_rng(seed, i, IN_CONTEXT_STREAM)``.
IN_CONTEXT_STREAM = 3


def _ints(v, name: str) -> tuple[int, ...]:
    if isinstance(v, str | bytes) or not isinstance(v, Sequence) or len(v) < 1:
        raise ValueError(f"{name}: expected a non-empty sequence of positive integers, got {v!r}")
    out = tuple(check_int(x, name) for x in v)
    if list(out) != sorted(set(out)):
        raise ValueError(f"{name}: expected strictly increasing values, got {v!r}")
    return out


def _reals(v, name: str) -> tuple[float, ...]:
    if isinstance(v, str | bytes) or not isinstance(v, Sequence) or len(v) < 1:
        raise ValueError(f"{name}: expected a non-empty sequence of positive numbers, got {v!r}")
    return tuple(check_real(x, name, low=0.0, low_open=True) for x in v)


# --------------------------------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------------------------------


def paired_difference(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> dict:
    """Mean of the paired differences ``b - a`` (both (N,), NaN = missing) with a Student-t
    ``level`` confidence interval over the ``N_ok`` pairs where both are finite:
    ``{"mean", "ci": [lo, hi], "n_pairs"}`` (``None`` entries with fewer than two pairs)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a, b: expected two arrays of equal shape (N,), got {a.shape} and {b.shape}")
    level = check_real(level, "level", low=0.0, high=1.0, low_open=True, high_open=True)
    diff = (b - a)[np.isfinite(a) & np.isfinite(b)]
    if diff.size < 2:
        return {"mean": None, "ci": None, "n_pairs": int(diff.size)}
    m = float(diff.mean())
    half = float(scipy.stats.t.ppf(0.5 + level / 2, diff.size - 1) * diff.std(ddof=1) / np.sqrt(diff.size))
    return {"mean": m, "ci": [m - half, m + half], "n_pairs": int(diff.size)}


def _mean_sem_nan(x: np.ndarray) -> tuple[float | None, float | None, int]:
    """Mean and s.e. over the finite entries of ``x`` (N,), and the number of missing entries."""
    x = np.asarray(x, dtype=float)
    ok = x[np.isfinite(x)]
    mean = float(ok.mean()) if ok.size else None
    sem = float(ok.std(ddof=1) / np.sqrt(ok.size)) if ok.size > 1 else None
    return mean, sem, int(x.size - ok.size)


# --------------------------------------------------------------------------------------------------
# closed loop
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClosedLoopConfig:
    """Closed-loop regime (S6): context lengths ``ns``, step sizes ``alphas``, read-out points
    ``updates`` (fixed updates) and ``env_steps`` (fixed environment steps; each must be a multiple
    of ``n * eval_every`` for every ``n``), ``n_mdps`` held-out [LL] MDPs, exploration ``epsilon``."""

    ns: tuple[int, ...] = (2, 5, 10, 20, 40, 80)
    alphas: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4)
    updates: tuple[int, ...] = (30, 100, 300)
    env_steps: tuple[int, ...] = (1600, 4000)
    n_mdps: int = 20
    epsilon: float = 0.1
    eval_every: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        _ints(self.ns, "ns")
        _reals(self.alphas, "alphas")
        _ints(self.updates, "updates")
        _ints(self.env_steps, "env_steps")
        check_int(self.n_mdps, "n_mdps", minimum=2)
        check_int(self.eval_every, "eval_every")
        check_int(self.seed, "seed", minimum=0)
        check_real(self.epsilon, "epsilon", low=0.0, high=1.0)
        for name, pts in (("updates", self.updates), ("env_steps", self.env_steps)):
            for n in self.ns:
                per = 1 if name == "updates" else n
                if pts and any(p % (per * self.eval_every) for p in pts):
                    raise ValueError(
                        f"{name}: every value must be a multiple of {per * self.eval_every} (n = {n})"
                    )

    @classmethod
    def quick(cls) -> ClosedLoopConfig:
        """Small: n in {2, 10, 40}, alpha in {0.1, 0.2}, 100 updates and 1200 steps, 20 MDPs."""
        return cls(ns=(2, 10, 40), alphas=(0.1, 0.2), updates=(100,), env_steps=(1200,))

    def n_updates(self, n: int) -> int:
        return max(max(self.updates), max(self.env_steps) // n)


@single_blas_thread
def closed_loop_sweep(cfg: ClosedLoopConfig | None = None, out: str | Path | None = None) -> dict:
    """Closed-loop regime (module docstring). Returns ``{"config", "versions", "regime":
    "closed-loop", "rows": [...]}``; one row per ``(budget, point, alpha, n)`` with ``budget`` in
    ``{"updates", "env_steps"}``, ``point`` the number of updates or steps, ``updates`` and
    ``env_steps`` of that read-out, ``normalized_return`` (mean over the loops that did not
    diverge) and ``sem``, ``n_diverged``, ``n_mdps`` and ``diff_prev`` (:func:`paired_difference`
    against the previous ``n`` at the same budget point and alpha)."""
    cfg = ClosedLoopConfig() if cfg is None else cfg
    if not isinstance(cfg, ClosedLoopConfig):
        raise ValueError(f"cfg: expected a ClosedLoopConfig, got {type(cfg).__name__}")
    mdps = list(heldout_family(cfg.n_mdps, cfg.seed))
    sols = [lt.optimal(m) for m in mdps]
    points = [("updates", p) for p in cfg.updates] + [("env_steps", p) for p in cfg.env_steps]
    # finals[budget point][alpha index, n index, mdp]
    finals = np.full((len(points), len(cfg.alphas), len(cfg.ns), cfg.n_mdps), np.nan)
    jobs = [(a, j, i) for a in range(len(cfg.alphas)) for j in range(len(cfg.ns)) for i in range(cfg.n_mdps)]
    for a, j, i in progress(jobs, desc="closed loop"):
        n = cfg.ns[j]
        res = deploy(
            mdps[i],
            "constructed",
            n=n,
            n_updates=cfg.n_updates(n),
            epsilon=cfg.epsilon,
            alpha=cfg.alphas[a],
            rng=heldout_rng(cfg.seed, i, 1),
            eval_every=cfg.eval_every,
            forward="l2",
            solution=sols[i],
        )
        where = {int(u): q for q, u in enumerate(res.updates)}
        for b, (budget, p) in enumerate(points):
            t = p if budget == "updates" else p // n
            finals[b, a, j, i] = res.normalized_return[where[t]]  # NaN after a divergence
    rows = []
    for b, (budget, p) in enumerate(points):
        for a, alpha in enumerate(cfg.alphas):
            for j, n in enumerate(cfg.ns):
                mean, sem, missing = _mean_sem_nan(finals[b, a, j])
                t = p if budget == "updates" else p // n
                rows.append(
                    {
                        "budget": budget,
                        "point": p,
                        "alpha": alpha,
                        "n": n,
                        "updates": t,
                        "env_steps": t * n,
                        "normalized_return": mean,
                        "sem": sem,
                        "n_diverged": missing,
                        "n_mdps": cfg.n_mdps,
                        "diff_prev": paired_difference(finals[b, a, j - 1], finals[b, a, j]) if j else None,
                    }
                )
    doc = {"regime": "closed-loop", "config": to_jsonable(asdict(cfg)), "env": HELDOUT_NAME, "rows": rows}
    doc["versions"] = versions()
    if out is not None:
        out = Path(out)
        atomic_savez(out / "context_length_closed-loop.npz", finals=finals, ns=np.array(cfg.ns))
        atomic_write_json(out / "context_length_closed-loop.json", doc)
    return to_jsonable(doc)


# --------------------------------------------------------------------------------------------------
# in context: one long context, a deep stack from w_0 = 0
# --------------------------------------------------------------------------------------------------


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
        _ints(self.ns, "ns")
        _ints(self.Ls, "Ls")
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
    readout :func:`lsa_theory.tf_from_statistics` of :func:`constructions.sarsa`. Rows past a
    non-finite or divergent iterate are NaN."""
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
        if not np.all(np.isfinite(w)) or np.abs(w).sum() > 1e200:
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
            m_r, s_r, miss = _mean_sem_nan(ret[q, j])
            m_v, s_v, _ = _mean_sem_nan(verr[q, j])
            m_t, s_t, miss_t = _mean_sem_nan(td_err[q, j])
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


def run_context_length(
    regime: str, quick: bool = False, out: str | Path | None = None, seed: int | None = None
) -> dict:
    """``lsa-theory context-length --regime REGIME [--quick] [--seed N]``: :func:`closed_loop_sweep`
    or :func:`in_context_sweep` with the default (or ``quick()``) configuration (``seed`` replacing
    its seed when given), plus the figure."""
    if regime not in REGIMES:
        raise ValueError(f"regime: expected one of {REGIMES}, got {regime!r}")
    if regime == "closed-loop":
        cfg = ClosedLoopConfig.quick() if quick else ClosedLoopConfig()
        doc = closed_loop_sweep(cfg if seed is None else dataclasses.replace(cfg, seed=seed), out)
    else:
        cfg = InContextConfig.quick() if quick else InContextConfig()
        doc = in_context_sweep(cfg if seed is None else dataclasses.replace(cfg, seed=seed), out)
    if out is not None:
        plot_context_length_regimes(out, regime)
    return doc


# --------------------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------------------


def _err(ax, x, rows, key, sem, **kw):
    y = [np.nan if r[key] is None else r[key] for r in rows]
    e = [np.nan if r[sem] is None else r[sem] for r in rows]
    return ax.errorbar(x, y, yerr=e, capsize=2, **kw)


def plot_context_length_regimes(out: str | Path, regime: str) -> Path:
    """From ``out/context_length_{regime}.json``. In context: greedy normalised return, value error
    against ``Q^pi`` and [W]'s TD value error against ``n``, one line per depth ``L``. Closed loop:
    normalised return against ``n``, one panel per budget (fixed updates, fixed environment steps),
    one line per ``alpha``. Mean +- standard error of the mean over the held-out MDPs (axis labels).
    Writes ``context_length_{regime}.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if regime not in REGIMES:
        raise ValueError(f"regime: expected one of {REGIMES}, got {regime!r}")
    out = Path(out)
    doc = read_json(out / f"context_length_{regime}.json")
    cfg = doc["config"]
    if regime == "in-context":
        fig, axes = plt.subplots(1, 3, figsize=(14, 3.9))
        for L in cfg["Ls"]:
            rows = [r for r in doc["rows"] if r["L"] == L]
            td = [r for r in doc["td_rows"] if r["L"] == L]
            x = [r["n"] for r in rows]
            _err(axes[0], x, rows, "normalized_return", "sem", fmt="o-", label=f"L = {L}")
            _err(axes[1], x, rows, "value_error", "value_error_sem", fmt="o-", label=f"L = {L}")
            _err(axes[2], [r["n"] for r in td], td, "value_error", "sem", fmt="s--", label=f"L = {L}")
        sem = sem_label(cfg["n_mdps"], "MDPs")
        axes[0].set_ylabel(f"greedy normalised return\n({sem})")
        axes[1].set_ylabel(f"||Q_w - Q^pi|| / ||Q^pi||  (SARSA stack, (S3))\n({sem})")
        axes[2].set_ylabel(f"||V_w - V^pi|| / ||V^pi||  (TD stack, (W3))\n({sem})")
        for ax in axes:
            ax.set_xscale("log")
            ax.set_xlabel("context length n (one uniform-policy context, w_0 = 0)")
            ax.legend(fontsize=8)
        fig.suptitle(f"in-context regime: {cfg['n_mdps']} held-out [LL] MDPs, L stacked blocks", fontsize=10)
    else:
        points = sorted(
            {(r["budget"], r["point"]) for r in doc["rows"]}, key=lambda t: (t[0] != "updates", t[1])
        )
        cols = min(4, len(points))
        nrows = -(-len(points) // cols)
        fig, axes = plt.subplots(nrows, cols, figsize=(3.8 * cols, 3.3 * nrows), squeeze=False)
        for ax, (budget, p) in zip(axes.ravel(), points, strict=False):
            for alpha in cfg["alphas"]:
                rows = [
                    r
                    for r in doc["rows"]
                    if r["budget"] == budget and r["point"] == p and r["alpha"] == alpha
                ]
                _err(
                    ax,
                    [r["n"] for r in rows],
                    rows,
                    "normalized_return",
                    "sem",
                    fmt="o-",
                    label=f"alpha = {alpha}",
                )
            ax.set_xscale("log")
            ax.set_xlabel("context length n")
            ax.set_ylabel(f"greedy normalised return\n({sem_label(cfg['n_mdps'], 'MDPs')})", fontsize=8)
            ax.set_title(f"{p} {'updates' if budget == 'updates' else 'environment steps'}", fontsize=9)
            ax.axhline(1.0, color="k", lw=0.6)
        for ax in axes.ravel()[len(points) :]:
            ax.axis("off")
        axes[0, 0].legend(fontsize=7)
        fig.suptitle(
            f"closed-loop regime (S6): {cfg['n_mdps']} held-out [LL] MDPs, constructed block", fontsize=10
        )
    fig.tight_layout()
    path = out / f"context_length_{regime}.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------------------------------
# fixed updates, block and teacher side by side (the first sweep)
# --------------------------------------------------------------------------------------------------


@single_blas_thread
def context_length_sweep(
    ns: Sequence[int] = (2, 5, 10, 20, 40),
    n_mdps: int = 20,
    n_updates: int = 300,
    seed: int = 0,
    *,
    alpha: float = 0.2,
    epsilon: float = 0.1,
    out: str | Path | None = None,
) -> dict:
    """Normalised return (§0) after ``n_updates`` updates against the context length ``n``.

    For each ``n`` in ``ns`` and each of ``n_mdps`` held-out [LL] MDPs (:func:`heldout_family`,
    seed scheme there) the constructed block (S3) and the exact teacher (S2) run the loop (S6)
    on the same stream ``heldout_rng(seed, i, 1)`` (features and ``w_0`` are therefore equal
    across ``n``). Returns ``{"config", "versions", "rows": [{"n", "normalized_return",
    "normalized_return_sem", "normalized_return_teacher", "normalized_return_teacher_sem",
    "max_w_diff", "n_trajectory_mismatch", "n_mdps", "updates", "env_steps"}, ...]}``; with
    ``out`` also ``context_length.json`` and ``context_length.npz`` (per-MDP finals, ``(len(ns),
    n_mdps)`` arrays ``block`` and ``teacher``).
    """
    if isinstance(ns, str | bytes) or not isinstance(ns, Sequence) or len(ns) < 1:
        raise ValueError(f"ns: expected a non-empty sequence of context lengths, got {ns!r}")
    ns = [check_int(v, "ns") for v in ns]
    n_mdps = check_int(n_mdps, "n_mdps")
    n_updates = check_int(n_updates, "n_updates")
    seed = check_int(seed, "seed", minimum=0)
    mdps = list(heldout_family(n_mdps, seed))
    sols = [lt.optimal(m) for m in mdps]
    block = np.empty((len(ns), n_mdps))
    teacher = np.empty((len(ns), n_mdps))
    rows = []
    jobs = [(a, b) for a in range(len(ns)) for b in range(n_mdps)]
    diffs: dict[int, list[float]] = {a: [] for a in range(len(ns))}
    mism: dict[int, int] = dict.fromkeys(range(len(ns)), 0)
    for a, i in progress(jobs, desc="context length"):
        kw = dict(
            n=ns[a], n_updates=n_updates, epsilon=epsilon, alpha=alpha, eval_every=n_updates, solution=sols[i]
        )
        res_b = deploy(mdps[i], "constructed", rng=heldout_rng(seed, i, 1), **kw)
        res_t = deploy(mdps[i], "teacher", rng=heldout_rng(seed, i, 1), **kw)
        block[a, i], teacher[a, i] = res_b.normalized_return[-1], res_t.normalized_return[-1]
        diffs[a].append(_max_w_diff(res_b, res_t))
        mism[a] += _first_mismatch(res_b, res_t) is not None
    for a, n in enumerate(ns):
        mb, sb = _mean_sem(block[a][:, None])
        mt, st = _mean_sem(teacher[a][:, None])
        rows.append(
            {
                "n": n,
                "normalized_return": float(mb[0]),
                "normalized_return_sem": float(sb[0]),
                "normalized_return_teacher": float(mt[0]),
                "normalized_return_teacher_sem": float(st[0]),
                "max_w_diff": max(diffs[a]),
                "n_trajectory_mismatch": mism[a],
                "n_mdps": n_mdps,
                "updates": n_updates,
                "env_steps": n * n_updates,
            }
        )
    config = {
        "ns": ns,
        "n_mdps": n_mdps,
        "n_updates": n_updates,
        "seed": seed,
        "alpha": alpha,
        "epsilon": epsilon,
        "env": HELDOUT_NAME,
    }
    doc = {"config": config, "versions": versions(), "rows": rows}
    if out is not None:
        out = Path(out)
        atomic_savez(out / "context_length.npz", ns=np.array(ns), block=block, teacher=teacher)
        atomic_write_json(out / "context_length.json", doc)
    return to_jsonable(doc)


def plot_context_length(out: str | Path) -> Path:
    """Normalised return after a fixed number of updates against ``n`` with standard-error bars
    (block and teacher) from ``out/context_length.json``. Writes ``out/context_length.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    doc = read_json(out / "context_length.json")
    rows = doc["rows"]
    ns = np.array([r["n"] for r in rows], dtype=float)
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.errorbar(
        ns,
        [r["normalized_return"] for r in rows],
        yerr=[r["normalized_return_sem"] for r in rows],
        fmt="o-",
        capsize=3,
        label="frozen block (S3)",
    )
    ax.errorbar(
        ns * 1.04,
        [r["normalized_return_teacher"] for r in rows],
        yerr=[r["normalized_return_teacher_sem"] for r in rows],
        fmt="s--",
        capsize=3,
        mfc="none",
        label="exact teacher (S2)",
    )
    ax.set_xscale("log")
    ax.set_xticks(ns, [str(int(v)) for v in ns])
    ax.minorticks_off()
    ax.set_xlabel("context length n")
    sem = sem_label(doc["config"]["n_mdps"], "held-out MDPs")
    ax.set_ylabel(f"normalised return after {doc['config']['n_updates']} updates\n({sem})")
    ax.axhline(1.0, color="k", lw=0.7)
    ax.axhline(0.0, color="0.5", lw=0.7)
    ax.set_title(f"{doc['config']['env']}: {doc['config']['n_mdps']} held-out MDPs", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / "context_length.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

r"""Context length in the closed-loop regime of docs/theory.md §6: ``w`` carried through (S6).

**Closed loop** (:func:`closed_loop_sweep`). ``w`` is carried from prompt to prompt and ``n`` is a
batch size. For every step size ``alpha`` and context length ``n`` the constructed block (S3)
(its exact (L2) form, ``forward="l2"``, equal to (L1)) runs the loop (S6) on each held-out [LL]
MDP from the same stream ``heldout_rng(seed, i, 1)`` (the same MDP, features and ``w_0`` for every
``n`` and ``alpha``: paired). The greedy policy's normalised return (§0) is read at fixed numbers
of **updates** (``updates``) and at fixed numbers of **environment steps** (``env_steps``: after
``env_steps / n`` updates), all from one loop per cell. A loop that diverges
(:data:`lsa_theory.rollout.DIVERGENCE_BOUND`) counts in ``n_diverged`` and is left out of the
mean.

Results (``out``): ``context_length_closed-loop.json`` and ``.npz`` (per-MDP values), written
atomically. The older fixed-updates sweep :func:`context_length_sweep` (block and teacher side by
side; ``context_length.json`` / ``.npz``) lives here too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

import lsa_theory as lt
from lsa_theory.checks import check_int, check_real

from ..control import deploy, first_mismatch, max_w_diff
from ..envs import HELDOUT_NAME, heldout_family, heldout_rng
from ..io import (
    atomic_savez,
    atomic_write_json,
    progress,
    single_blas_thread,
    to_jsonable,
    versions,
)
from ..stats import mean_sem_columns, mean_sem_finite, paired_difference
from .common import check_lengths, check_rates

__all__ = ["ClosedLoopConfig", "closed_loop_sweep", "context_length_sweep"]


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
        check_lengths(self.ns, "ns")
        check_rates(self.alphas, "alphas")
        check_lengths(self.updates, "updates")
        check_lengths(self.env_steps, "env_steps")
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
                mean, sem, missing = mean_sem_finite(finals[b, a, j])
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
        diffs[a].append(max_w_diff(res_b, res_t))
        mism[a] += first_mismatch(res_b, res_t) is not None
    for a, n in enumerate(ns):
        mb, sb = mean_sem_columns(block[a][:, None])
        mt, st = mean_sem_columns(teacher[a][:, None])
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

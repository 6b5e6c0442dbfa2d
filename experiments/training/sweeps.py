r"""Sweeps over :func:`lsa_theory.experiments.training.train` (names on the face
:mod:`lsa_theory.experiments.training`):
several training seeds of one configuration (:func:`train_seeds`),
the (M7) task-diversity sweep (:func:`diversity_training_sweep`, every ``(seed, k, features)`` run
reported), teacher matching against the context length (:func:`teacher_matching_vs_n`); their
figures, drawn from saved results only, are in :mod:`lsa_theory.experiments.training.plots`.

Reporting rule: tables and figures list every run that was made, failures included; a sweep over
seeds reports each seed's row and the spread (min, max) beside the mean.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import lsa_theory as lt
from lsa_theory import dynamics as dy
from lsa_theory.checks import check_int

from ..io import atomic_write_json, read_json, to_jsonable, versions
from ..stats import DIVERGED_SCORE, clustered_paired_ci, mean_sem, scored
from .loop import TrainConfig, heldout_data, heldout_error, train
from .plots import (
    plot_diversity_training,
    plot_returns_by_k,
    plot_training,
    plot_training_seeds,
)

__all__ = [
    "plot_training",
    "train_seeds",
    "heldout_error_without_cubic",
    "plot_training_seeds",
    "DIVERSITY_KS",
    "QUICK_DIVERSITY_KS",
    "diversity_training_sweep",
    "plot_diversity_training",
    "run_dir",
    "deployed_returns_by_k",
    "plot_returns_by_k",
    "teacher_matching_vs_n",
]

#: Final metrics a seed table reports (:func:`train_seeds`, :func:`diversity_training_sweep`).
SEED_KEYS = (
    "loss",
    "cos",
    "cos_full",
    "cos_readout",
    "dist_full_rel",
    "orbit_dist_rel",
    "manifold_dist",
    "invisible_dim",
    "heldout_err",
    "heldout_loss",
    "norm_P22",
    "norm_P22_sym",
    "norm_Vbar22",
    "norm_offstar",
    "frozen_moved",
    "c",
    "train_time",
)


# ---------------------------------------------------------------------------------------------
# several seeds of one configuration
# ---------------------------------------------------------------------------------------------


def _check_seeds(seeds) -> tuple[int, ...]:
    seeds = (seeds,) if isinstance(seeds, int | np.integer) and not isinstance(seeds, bool) else tuple(seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int | np.integer) or s < 0 for s in seeds):
        raise ValueError(f"seeds: expected non-negative integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds: repeated seeds in {seeds!r}")
    return tuple(int(s) for s in seeds)


def _spread(rows: list[dict], keys=SEED_KEYS) -> dict:
    """``{key: {"mean", "min", "max"}}`` over ``rows`` for every numeric key present."""
    out = {}
    for k in keys:
        vals = [r[k] for r in rows if isinstance(r.get(k), int | float) and r.get(k) is not None]
        if vals:
            out[k] = {"mean": float(np.mean(vals)), "min": float(np.min(vals)), "max": float(np.max(vals))}
    return out


def train_seeds(
    base: TrainConfig, seeds=(0, 1, 2), out: str | Path | None = None, device: str = "cpu"
) -> dict:
    """:func:`train` of ``base.replace(seed=s)`` for every ``s`` in ``seeds`` (data, held-out data and
    initialisation all derive from the seed), each in ``out/seed{s}`` (resumable).

    Returns (and writes to ``out/seeds.json``) ``{"base", "seeds", "rows": [{"seed", <SEED_KEYS>,
    "heldout_err_no_cubic"}],
    "spread": {key: {"mean", "min", "max"}}, "versions"}``: one row per seed, none dropped.
    """
    if not isinstance(base, TrainConfig):
        raise ValueError(f"base: expected a TrainConfig, got {type(base).__name__}")
    seeds = _check_seeds(seeds)
    out = Path(out) if out is not None else None
    rows = []
    for s in seeds:
        cfg = base.replace(seed=s)
        res = train(cfg, None if out is None else out / f"seed{s}", device=device)
        rows.append({"seed": s, **{k: res.final.get(k) for k in SEED_KEYS}})
        rows[-1]["heldout_err_no_cubic"] = heldout_error_without_cubic(res.P, res.V, heldout_data(cfg))
    doc = {"base": base.as_dict(), "seeds": list(seeds), "rows": rows, "spread": _spread(rows)}
    doc["versions"] = versions()
    if out is not None:
        atomic_write_json(out / "seeds.json", doc)
    return doc


def heldout_error_without_cubic(P: np.ndarray, V: np.ndarray, held: dy.TeacherDataset) -> float:
    """Held-out relative error (:func:`lsa_theory.experiments.training.heldout_error`) of ``(P, V)`` (D, D)
    with
    ``P22`` set to 0, which removes exactly the cubic (L2) term ``(1/n) Vbar22 wt (wt^T P22 wt)``:
    what is left of the error is that of the (M2) blocks ``(Vbar21, P12)`` alone."""
    P0 = np.array(P, dtype=float)
    m = held.layout.m
    P0[m:, m:] = 0.0
    return heldout_error(P0, V, held)[0]


# ---------------------------------------------------------------------------------------------
# (M7): task diversity
# ---------------------------------------------------------------------------------------------


DIVERSITY_KS = (1, 4, 16, 64, 256)
QUICK_DIVERSITY_KS = (1, 16, 256)


def diversity_training_sweep(
    ks=DIVERSITY_KS,
    shared_features=(False, True),
    base: TrainConfig | None = None,
    total_frames: int | None = None,
    out: str | Path | None = None,
    device: str = "cpu",
    seeds=(0,),
) -> dict:
    """(M7) by training: for every seed in ``seeds``, every ``k`` in ``ks`` and every setting in
    ``shared_features``, train ``base.replace(seed=seed)`` (default :meth:`TrainConfig.full`, the
    [LL] 9 x 4 setting) on ``k`` MDPs x ``max(1, total_frames // k)`` frames (``total_frames``
    default ``max(ks) * base.frames``: the same amount of data, spread over fewer or more tasks)
    and report ``cos`` (and ``cos_full`` over all entries), the (M4) invisible dimension, training
    loss and the held-out error on fresh MDPs with fresh features. The quick sweep is
    ``ks=QUICK_DIVERSITY_KS, base=TrainConfig.quick()``. Each run lives in
    ``out/seed{seed}/k{k}_{shared|resampled}`` (resumable); the table, one row per run and none
    dropped, is ``out/diversity_training.json``: ``{"base", "total_frames", "seeds", "rows": [{"seed",
    "k", "frames", "shared_features", ...}], "versions"}``."""
    base = TrainConfig.full() if base is None else base
    if not isinstance(base, TrainConfig):
        raise ValueError(f"base: expected a TrainConfig, got {type(base).__name__}")
    ks = tuple(ks)
    if not ks or any(isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1 for k in ks):
        raise ValueError(f"ks: expected positive integers, got {ks!r}")
    shared_features = (shared_features,) if isinstance(shared_features, bool) else tuple(shared_features)
    if not shared_features or any(not isinstance(s, bool) for s in shared_features):
        raise ValueError(f"shared_features: expected a bool or bools, got {shared_features!r}")
    seeds = _check_seeds(seeds)
    total = max(ks) * base.frames if total_frames is None else check_int(total_frames, "total_frames")
    out = Path(out) if out is not None else None
    rows = []

    def doc():
        return {
            "base": base.as_dict(),
            "total_frames": total,
            "seeds": list(seeds),
            "versions": versions(),
            "rows": rows,
        }

    for seed in seeds:
        for shared in shared_features:
            for k in ks:
                cfg = base.replace(
                    k=int(k), frames=max(1, total // int(k)), shared_features=shared, seed=seed
                )
                sub = None if out is None else out / run_dir(seed, k, shared)
                f = train(cfg, sub, device=device).final
                rows.append(
                    {"seed": seed, "k": int(k), "frames": cfg.frames, "shared_features": shared}
                    | {key: f.get(key) for key in SEED_KEYS}
                )
                if out is not None:
                    atomic_write_json(out / "diversity_training.json", doc())
    return doc()


def run_dir(seed: int, k: int, shared: bool) -> str:
    """Directory of one run of :func:`diversity_training_sweep`: ``seed{seed}/k{k}_{shared|resampled}``."""
    return f"seed{seed}/k{k}_{'shared' if shared else 'resampled'}"


def deployed_returns_by_k(
    sweep_out: str | Path, n_heldout: int = 20, n_updates: int = 1000, seed: int = 0
) -> dict:
    """Normalised return (§0) of every block a :func:`diversity_training_sweep` saved under
    ``sweep_out`` (:func:`run_dir`), deployed frozen in the loop (S6) (the exact (L2) forward pass,
    equal to (L1)) on ``n_heldout`` held-out MDPs of the sweep's size for ``n_updates`` updates
    with the sweep's ``n``, ``alpha``, ``epsilon``. Held-out MDP ``i`` is
    ``random_mdp(S, A, gamma, heldout_rng(seed, i))`` and its loop stream ``heldout_rng(seed, i, 1)``
    (features, ``w_0``, rollouts); at S = 9, A = 4 this is ``random-S9-A4`` of
    :func:`lsa_theory.experiments.envs.heldout_family`. The exact teacher runs once per MDP on the same
    stream.

    Every run appears: ``rows`` has one entry per (seed, k, features) with ``normalized_return``
    (mean over the held-out MDPs, ``None`` when a loop diverged), ``normalized_return_nanmean``
    (over the loops that did not), ``normalized_return_scored`` (over all loops, a diverged one
    scored ``diverged_score`` = 0, the uniform policy's return), ``normalized_returns`` (per
    held-out MDP, ``None`` where the loop diverged), ``n_diverged`` of ``n_mdps``.
    ``groups`` gathers the seeds per (k, features): ``n_diverged`` of ``n_loops``,
    ``normalized_return_converged_mean``/``_sem`` (the loops that did not diverge, pooled: kept for
    the record, not an interval), and the (M7) comparison with every loop counted and the loops of
    one held-out MDP as one cluster (:func:`lsa_theory.experiments.stats.clustered_paired_ci`): the block's
    score on MDP ``i`` is the mean over the seeds' loops on it, paired with the teacher on the same
    MDP and stream, ``N = n_heldout`` clusters: ``normalized_return_mean`` (all loops),
    ``normalized_return_clustered_sem`` (s.e. of the mean over the ``N`` per-MDP means) and
    ``minus_teacher`` (the paired interval of block - teacher). Writes
    ``sweep_out/returns_by_k.json`` (and :func:`plot_returns_by_k` draws it)."""
    from ..control import deploy
    from ..envs import heldout_rng

    sweep_out = Path(sweep_out)
    n_heldout, n_updates = check_int(n_heldout, "n_heldout"), check_int(n_updates, "n_updates")
    seed = check_int(seed, "seed", minimum=0)
    sweep = read_json(sweep_out / "diversity_training.json")
    base = sweep["base"]
    S, A, gamma = base["S"], base["A"], base["gamma"]
    mdps = [lt.random_mdp(S, A, gamma, heldout_rng(seed, i)) for i in range(n_heldout)]
    sols = [lt.optimal(m) for m in mdps]
    kw = dict(
        n=base["n"], n_updates=n_updates, epsilon=base["epsilon"], alpha=base["alpha"], eval_every=n_updates
    )
    teacher = np.array(
        [deploy(m, "teacher", rng=heldout_rng(seed, i, 1), solution=sols[i], **kw).normalized_return[-1]
         for i, m in enumerate(mdps)]
    )  # fmt: skip
    rows, finals = [], {}
    for r in sweep["rows"]:
        train_seed = r.get("seed", 0)  # the block's training seed; the streams stay those of `seed`
        path = sweep_out / run_dir(train_seed, r["k"], r["shared_features"]) / "train.npz"
        res = [
            deploy(m, str(path), rng=heldout_rng(seed, i, 1), solution=sols[i], forward="l2", **kw)
            for i, m in enumerate(mdps)
        ]
        v = np.array([np.nan if x.diverged_at is not None else x.normalized_return[-1] for x in res])
        finals.setdefault((r["k"], r["shared_features"]), []).append(v)  # (n_heldout,) per seed
        n_diverged = int(np.sum(~np.isfinite(v)))
        nanmean = float(np.nanmean(v)) if n_diverged < v.size else None
        rows.append(
            {
                "seed": train_seed,
                "k": r["k"],
                "shared_features": r["shared_features"],
                "heldout_err": r["heldout_err"],
                "normalized_return": float(v.mean()) if n_diverged == 0 else None,
                "normalized_return_nanmean": nanmean,
                "normalized_return_scored": float(scored(v)[0].mean()),
                "normalized_returns": v,  # per held-out MDP, None where the loop diverged
                "normalized_return_teacher": mean_sem(teacher)[0],
                "n_mdps": n_heldout,
                "n_diverged": n_diverged,
            }
        )
    groups = []
    for (k, shared), loops in finals.items():
        loops = np.stack(loops, axis=1)  # (n_heldout, n_seeds): the loops of MDP i in row i
        ok = loops[np.isfinite(loops)]
        mean, sem = mean_sem(ok)  # the loops that did not diverge, pooled (the record only)
        clustered = clustered_paired_ci(loops, teacher)
        per_mdp = scored(loops)[0].mean(axis=1)
        groups.append(
            {
                "k": k,
                "shared_features": shared,
                "n_seeds": sum(1 for r in rows if r["k"] == k and r["shared_features"] == shared),
                "n_loops": int(loops.size),
                "n_diverged": clustered["n_diverged_a"],
                "normalized_return_converged_mean": mean,
                "normalized_return_converged_sem": sem,
                "normalized_return_mean": clustered["mean_a"],
                "normalized_return_clustered_sem": mean_sem(per_mdp)[1],
                "minus_teacher": clustered,
            }
        )
    doc = {
        "S": S,
        "A": A,
        "n_heldout": n_heldout,
        "n_updates": n_updates,
        "seed": seed,
        "normalized_return_teacher": mean_sem(teacher)[0],
        "normalized_return_teacher_sem": mean_sem(teacher)[1],
        "n_diverged_teacher": int(np.sum(~np.isfinite(teacher))),
        "normalized_returns_teacher": teacher,
        "diverged_score": DIVERGED_SCORE,
        "rows": rows,
        "groups": groups,
        "versions": versions(),
    }
    doc = to_jsonable(doc)
    atomic_write_json(sweep_out / "returns_by_k.json", doc)
    return doc


def teacher_matching_vs_n(
    P: np.ndarray, V: np.ndarray, ns=(2, 5, 10, 20, 40), k: int = 20, seed: int = 0
) -> list[dict]:
    """Teacher-matching error of a block ``(P, V)`` (D, D) on held-out [LL] frames (9 x 4, d = 36,
    ``k`` fresh MDPs x 10 frames, fresh features) generated with context length ``n`` for each
    ``n`` in ``ns``: ``[{"n", "heldout_err", "heldout_loss"}, ...]`` (see :func:`heldout_error`).
    By (L2) the constructed block is exact for every ``n``; a trained block is scored off the ``n``
    it was trained on."""
    rows = []
    for n in ns:
        spec = dy.TeacherSpec(S=9, A=4, n=check_int(n, "ns"), k=check_int(k, "k"), frames=10)
        held = dy.teacher_dataset(spec, np.random.default_rng([seed, 20_000 + int(n)]))
        err, loss = heldout_error(P, V, held)
        rows.append({"n": int(n), "heldout_err": err, "heldout_loss": loss})
    return rows

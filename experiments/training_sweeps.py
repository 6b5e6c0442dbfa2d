r"""Sweeps and figures over :func:`experiments.training.train` (re-exported by
:mod:`experiments.training`): several training seeds of one configuration (:func:`train_seeds`),
the (M7) task-diversity sweep (:func:`diversity_training_sweep`, every ``(seed, k, features)`` run
reported), teacher matching against the context length (:func:`teacher_matching_vs_n`) and the
figures, drawn from saved results only.

Reporting rule: tables and figures list every run that was made, failures included; a sweep over
seeds reports each seed's row and the spread (min, max) beside the mean.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import constructions
import dynamics as dy
import lsa_theory as lt
from lsa_theory._checks import check_int

from .io import atomic_write_json, read_json, versions
from .plots import SEM, label_heatmap
from .training import TrainConfig, heldout_data, heldout_error, train

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
# figures of one run
# ---------------------------------------------------------------------------------------------


def _block_lines(ax, m: int) -> None:
    ax.axhline(m - 0.5, color="k", lw=0.6)
    ax.axvline(m - 0.5, color="k", lw=0.6)


def plot_training(out: str | Path) -> list[Path]:
    """Figures from ``out/train.json`` and ``out/train.npz`` only: ``training_curves.png`` (loss,
    held-out error, ``1 - cos``, orbit and manifold distance, norms of ``P22``/``Vbar22`` and the
    frozen blocks' displacement against the step) and ``training_heatmaps.png`` (learned ``P``,
    ``V`` beside ``c P*``, ``V*/c`` at the fitted ``c``, with the (L2) split ``(m | D - m)``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    doc = read_json(out / "train.json")
    h, cfg = doc["history"], doc["config"]

    def arr(key):
        return np.array([np.nan if v is None else v for v in h[key]], dtype=float)

    step = arr("step")
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    ax = axes[0, 0]
    ax.semilogy(step, arr("loss"), label="training loss (M1)")
    ax.semilogy(step, arr("heldout_loss"), label="held-out loss (fresh MDPs, fresh features)")
    ax.semilogy(step, arr("heldout_err"), "--", label="held-out relative error")
    ax.set_title("teacher matching")
    ax = axes[0, 1]
    ax.semilogy(step, np.maximum(1.0 - arr("cos"), 1e-17), label="1 - cos(theta, theta*(c))")
    ax.axhline(0.01, color="0.6", ls=":", lw=0.8, label="cos = 0.99")
    ax.set_title("structure recovery of (Vbar21, P12)")
    ax = axes[1, 0]
    ax.semilogy(step, arr("orbit_dist_rel"), label="|theta - theta*(c)| / |theta*(c)|")
    ax.semilogy(step, arr("manifold_dist"), "--", label="distance to manifold (M4)")
    ax.set_title("distance to the optimal set")
    ax = axes[1, 1]
    ax.semilogy(step, arr("norm_P22_sym"), label="|sym P22|")
    ax.semilogy(step, arr("norm_P22"), ":", label="|P22|")
    ax.semilogy(step, arr("norm_Vbar22"), label="|Vbar22|")
    moved = arr("frozen_moved")
    if np.nanmax(moved) > 0:
        ax.semilogy(step, np.where(moved > 0, moved, np.nan), label="max move of P11, P21, V top rows")
    else:
        ax.plot([], [], " ", label="P11, P21, V top rows: moved exactly 0")
    ax.set_title("blocks that should vanish / not move")
    for ax in axes.ravel():
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    fig.suptitle(
        f"{cfg['algorithm']} {cfg['mode']}: S={cfg['S']}, A={cfg['A']}, k={cfg['k']} MDPs x {cfg['frames']} "
        f"frames, {'shared' if cfg['shared_features'] else 'resampled'} features, {cfg['optimizer']}, "
        f"{cfg['dtype']}; final cos {doc['final']['cos']:.5f}"
    )
    fig.tight_layout()
    paths = [out / "training_curves.png"]
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    with np.load(out / "train.npz") as z:
        mats = {k: z[k] for k in ("P", "V", "P_star", "V_star")}
        c = float(z["c"])
    m = constructions.ALGORITHMS[cfg["algorithm"]].dims(cfg["S"], cfg["A"], cfg["d"], cfg["d_pi"]).layout.m
    fig, axes = plt.subplots(2, 2, figsize=(10, 9.5))
    titles = {"P": "learned P", "V": "learned V", "P_star": f"c P*  (c = {c:.4g})", "V_star": "V*/c"}
    for ax, key in zip(axes.T.ravel(), ("P", "P_star", "V", "V_star"), strict=True):
        M = mats[key]
        pair = mats["P_star" if key.startswith("P") else "V_star"]
        lim = float(np.abs(pair).max()) or float(np.abs(M).max()) or 1.0
        im = ax.imshow(M, cmap="RdBu_r", vmin=-lim, vmax=lim)
        _block_lines(ax, m)
        ax.set_title(titles[key])
        label_heatmap(ax, im, titles[key], m)
    fig.tight_layout()
    paths.append(out / "training_heatmaps.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    return paths


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
    """Held-out relative error (:func:`experiments.training.heldout_error`) of ``(P, V)`` (D, D) with
    ``P22`` set to 0, which removes exactly the cubic (L2) term ``(1/n) Vbar22 wt (wt^T P22 wt)``:
    what is left of the error is that of the (M2) blocks ``(Vbar21, P12)`` alone."""
    P0 = np.array(P, dtype=float)
    m = held.layout.m
    P0[m:, m:] = 0.0
    return heldout_error(P0, V, held)[0]


def plot_training_seeds(out: str | Path) -> Path:
    """Training curves of every seed in ``out/seeds.json`` (read from ``out/seed{s}/train.json``),
    overlaid: training and held-out loss, ``1 - cos`` on (Vbar21, P12) and ``1 - cos_full`` over all
    entries, ``|Vbar22|`` and ``|sym P22|``. Writes ``out/training_seeds.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    doc = read_json(out / "seeds.json")
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.9))
    for s in doc["seeds"]:
        h = read_json(out / f"seed{s}" / "train.json")["history"]

        def arr(key, h=h):
            return np.array([np.nan if v is None else v for v in h.get(key, [])], dtype=float)

        step = arr("step")
        (ln,) = axes[0].semilogy(step, arr("loss"), lw=1.2, label=f"seed {s}: training loss")
        axes[0].semilogy(
            step, arr("heldout_err"), "--", color=ln.get_color(), lw=1, label="held-out rel. error"
        )
        axes[1].semilogy(
            step, np.maximum(1 - arr("cos"), 1e-17), color=ln.get_color(), label=f"seed {s}: (M2) blocks"
        )
        if step.size == arr("cos_full").size:
            axes[1].semilogy(
                step, np.maximum(1 - arr("cos_full"), 1e-17), ":", color=ln.get_color(), label="all entries"
            )
        vb, p22 = arr("norm_Vbar22"), arr("norm_P22_sym")
        if np.nanmax(np.concatenate([vb, p22])) > 0:
            pos = {"|Vbar22|": np.where(vb > 0, vb, np.nan), "|sym P22|": np.where(p22 > 0, p22, np.nan)}
            axes[2].semilogy(step, pos["|Vbar22|"], color=ln.get_color(), label=f"seed {s}: |Vbar22|")
            axes[2].semilogy(step, pos["|sym P22|"], ":", color=ln.get_color(), label="|sym P22|")
        else:  # on the invariant set: both exactly 0 at every logged step
            axes[2].plot([], [], " ", label=f"seed {s}: |Vbar22| = |P22| = 0 exactly")
    axes[0].set_title("teacher matching (M1)")
    axes[1].set_title("1 - cos with (c P*, V*/c)")
    axes[2].set_title("off the invariant set of (M2)")
    for ax in axes:
        ax.set_xlabel("step")
        ax.legend(fontsize=6)
    b = doc["base"]
    fig.suptitle(
        f"{b['algorithm']} ({b.get('critic', 'action')} critic), init {b.get('init', 'random')}: S={b['S']}, "
        f"A={b['A']}, k={b['k']} x {b['frames']} frames, {len(doc['seeds'])} seeds",
        fontsize=9,
    )
    fig.tight_layout()
    path = out / "training_seeds.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


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


def _by_k(rows: list[dict], key: str, shared: bool) -> tuple[list, np.ndarray, np.ndarray, np.ndarray]:
    """``(ks, median, min, max)`` of ``key`` over the seeds, per ``k``."""
    ks = sorted({r["k"] for r in rows if r["shared_features"] == shared})
    vals = [[r[key] for r in rows if r["shared_features"] == shared and r["k"] == k] for k in ks]
    vals = [np.asarray([np.nan if v is None else v for v in vs], dtype=float) for vs in vals]
    return ks, *(np.array([f(v) for v in vals]) for f in (np.nanmedian, np.nanmin, np.nanmax))


def plot_diversity_training(out: str | Path) -> Path:
    """Held-out error, ``1 - cos`` and training loss against ``k`` (resampled vs shared features)
    from ``out/diversity_training.json``: every seed as a point, the median over seeds as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    doc = read_json(out / "diversity_training.json")
    rows = [
        r | {"one_minus_cos": max(1 - r["cos"], 1e-17), "loss_pos": max(r["loss"], 1e-300)}
        for r in doc["rows"]
    ]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for shared, style in ((False, "o-"), (True, "s--")):
        if not any(r["shared_features"] == shared for r in rows):
            continue
        label = "shared features" if shared else "resampled features"
        for ax, key in zip(axes, ("heldout_err", "one_minus_cos", "loss_pos"), strict=True):
            ks, med, _, _ = _by_k(rows, key, shared)
            (ln,) = ax.loglog(ks, med, style, label=f"{label} (median)")
            pts = [r for r in rows if r["shared_features"] == shared]
            ax.scatter([r["k"] for r in pts], [r[key] for r in pts], s=10, color=ln.get_color(), alpha=0.5)
    axes[0].set_ylabel("held-out relative error")
    axes[1].set_ylabel("1 - cos with the construction")
    axes[2].set_ylabel("training loss")
    for ax in axes:
        ax.set_xlabel("training MDPs k")
        ax.legend(fontsize=8)
    n_seeds = len(doc.get("seeds", [0]))
    fig.suptitle(
        f"(M7) by training: {doc['total_frames']} frames split over k MDPs; {n_seeds} seeds (points)"
    )
    fig.tight_layout()
    path = out / "diversity_training.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def deployed_returns_by_k(
    sweep_out: str | Path, n_heldout: int = 20, n_updates: int = 1000, seed: int = 0
) -> dict:
    """Normalised return (§0) of every block a :func:`diversity_training_sweep` saved under
    ``sweep_out`` (:func:`run_dir`), deployed frozen in the loop (S6) (the exact (L2) forward pass,
    equal to (L1)) on ``n_heldout`` held-out MDPs of the sweep's size for ``n_updates`` updates
    with the sweep's ``n``, ``alpha``, ``epsilon``. Held-out MDP ``i`` is
    ``random_mdp(S, A, gamma, heldout_rng(seed, i))`` and its loop stream ``heldout_rng(seed, i, 1)``
    (features, ``w_0``, rollouts); at S = 9, A = 4 this is ``random-S9-A4`` of
    :func:`experiments.envs.heldout_family`. The exact teacher runs once per MDP on the same stream.

    Every run appears: ``rows`` has one entry per (seed, k, features) with ``normalized_return``
    (mean over the held-out MDPs, ``None`` when a loop diverged), ``normalized_return_nanmean``
    (over the loops that did not), ``n_diverged`` of ``n_mdps``; ``groups`` pools the seeds per
    (k, features): ``n_diverged`` of ``n_loops`` and the mean +- s.e. over the loops that did not
    diverge. Writes ``sweep_out/returns_by_k.json`` (and :func:`plot_returns_by_k` draws it)."""
    from .control import deploy
    from .envs import heldout_rng

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
        seed = r.get("seed", 0)
        path = sweep_out / run_dir(seed, r["k"], r["shared_features"]) / "train.npz"
        res = [
            deploy(m, str(path), rng=heldout_rng(seed, i, 1), solution=sols[i], forward="l2", **kw)
            for i, m in enumerate(mdps)
        ]
        v = np.array([np.nan if x.diverged_at is not None else x.normalized_return[-1] for x in res])
        finals.setdefault((r["k"], r["shared_features"]), []).extend(v.tolist())
        ok = v[np.isfinite(v)]
        rows.append(
            {
                "seed": seed,
                "k": r["k"],
                "shared_features": r["shared_features"],
                "heldout_err": r["heldout_err"],
                "normalized_return": float(v.mean()) if ok.size == v.size else None,
                "normalized_return_nanmean": float(ok.mean()) if ok.size else None,
                "normalized_return_teacher": float(teacher.mean()),
                "n_mdps": n_heldout,
                "n_diverged": int(v.size - ok.size),
            }
        )
    groups = []
    for (k, shared), vals in finals.items():
        v = np.asarray(vals, dtype=float)
        ok = v[np.isfinite(v)]
        groups.append(
            {
                "k": k,
                "shared_features": shared,
                "n_seeds": sum(1 for r in rows if r["k"] == k and r["shared_features"] == shared),
                "n_loops": int(v.size),
                "n_diverged": int(v.size - ok.size),
                "normalized_return_converged_mean": float(ok.mean()) if ok.size else None,
                "normalized_return_converged_sem": (
                    float(ok.std(ddof=1) / np.sqrt(ok.size)) if ok.size > 1 else None
                ),
            }
        )
    doc = {
        "S": S,
        "A": A,
        "n_heldout": n_heldout,
        "n_updates": n_updates,
        "seed": seed,
        "normalized_return_teacher": float(teacher.mean()),
        "normalized_return_teacher_sem": float(teacher.std(ddof=1) / np.sqrt(n_heldout))
        if n_heldout > 1
        else None,
        "rows": rows,
        "groups": groups,
        "versions": versions(),
    }
    atomic_write_json(sweep_out / "returns_by_k.json", doc)
    return doc


def plot_returns_by_k(sweep_out: str | Path) -> Path:
    """From ``sweep_out/returns_by_k.json``: the normalised return of the converged loops (mean +-
    standard error of the mean, all seeds pooled; each seed's mean as a point) and the fraction of
    diverged loops against ``k``. Writes ``sweep_out/returns_by_k.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweep_out = Path(sweep_out)
    doc = read_json(sweep_out / "returns_by_k.json")
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for shared, style in ((False, "o-"), (True, "s--")):
        sel = sorted((g for g in doc["groups"] if g["shared_features"] == shared), key=lambda g: g["k"])
        if not sel:
            continue
        label = "shared features" if shared else "resampled features"
        nan = np.nan
        (ln, *_) = ax.errorbar(
            [g["k"] for g in sel],
            [
                nan
                if g["normalized_return_converged_mean"] is None
                else g["normalized_return_converged_mean"]
                for g in sel
            ],
            yerr=[
                nan if g["normalized_return_converged_sem"] is None else g["normalized_return_converged_sem"]
                for g in sel
            ],
            fmt=style,
            capsize=3,
            label=label,
        )
        pts = [r for r in doc["rows"] if r["shared_features"] == shared]
        ax.scatter(
            [r["k"] for r in pts],
            [nan if r["normalized_return_nanmean"] is None else r["normalized_return_nanmean"] for r in pts],
            s=10, color=ln.get_color(), alpha=0.5,
        )  # fmt: skip
        ax2.plot([g["k"] for g in sel], [g["n_diverged"] / g["n_loops"] for g in sel], style, label=label)
    if doc.get("normalized_return_teacher") is not None:
        ax.axhline(doc["normalized_return_teacher"], color="k", lw=0.8, label="exact teacher")
    for a in (ax, ax2):
        a.set_xscale("log")
        a.set_xlabel("training MDPs k")
        a.legend(fontsize=8)
    ax.set_ylabel(f"normalised return after {doc['n_updates']} updates\n({SEM} over the converged loops)")
    ax.set_title("loops that did not diverge, all seeds pooled (points: one seed each)", fontsize=9)
    ax2.set_ylabel("fraction of held-out loops that diverged")
    ax2.set_title("(M7): trained blocks deployed on held-out MDPs, all seeds", fontsize=9)
    fig.tight_layout()
    path = sweep_out / "returns_by_k.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


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

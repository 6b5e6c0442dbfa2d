"""Figures of :mod:`lsa_theory.experiments.training.sweeps` (one run, several seeds, the (M7) sweep and its
deployed returns), drawn from saved results only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lsa_theory import constructions

from ..io import read_json
from ..plots import SEM, label_heatmap, pyplot, save_figure


def _block_lines(ax, m: int) -> None:
    ax.axhline(m - 0.5, color="k", lw=0.6)
    ax.axvline(m - 0.5, color="k", lw=0.6)


def plot_training(out: str | Path) -> list[Path]:
    """Figures from ``out/train.json`` and ``out/train.npz`` only: ``training_curves.png`` (loss,
    held-out error, ``1 - cos``, orbit and manifold distance, norms of ``P22``/``Vbar22`` and the
    frozen blocks' displacement against the step) and ``training_heatmaps.png`` (learned ``P``,
    ``V`` beside ``c P*``, ``V*/c`` at the fitted ``c``, with the (L2) split ``(m | D - m)``)."""
    plt = pyplot()

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
    paths = [save_figure(fig, out / "training_curves.png")]

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
    paths.append(save_figure(fig, out / "training_heatmaps.png"))
    return paths


def plot_training_seeds(out: str | Path) -> Path:
    """Training curves of every seed in ``out/seeds.json`` (read from ``out/seed{s}/train.json``),
    overlaid: training and held-out loss, ``1 - cos`` on (Vbar21, P12) and ``1 - cos_full`` over all
    entries, ``|Vbar22|`` and ``|sym P22|``. Writes ``out/training_seeds.png``."""
    plt = pyplot()

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
    critic = b.get("critic") or constructions.ALGORITHMS[b["algorithm"]].critic  # None: the algorithm's own
    fig.suptitle(
        f"{b['algorithm']} ({critic} critic), init {b.get('init', 'random')}: S={b['S']}, "
        f"A={b['A']}, k={b['k']} x {b['frames']} frames, {len(doc['seeds'])} seeds",
        fontsize=9,
    )
    return save_figure(fig, out / "training_seeds.png")


def _by_k(rows: list[dict], key: str, shared: bool) -> tuple[list, np.ndarray, np.ndarray, np.ndarray]:
    """``(ks, median, min, max)`` of ``key`` over the seeds, per ``k``."""
    ks = sorted({r["k"] for r in rows if r["shared_features"] == shared})
    vals = [[r[key] for r in rows if r["shared_features"] == shared and r["k"] == k] for k in ks]
    vals = [np.asarray([np.nan if v is None else v for v in vs], dtype=float) for vs in vals]
    return ks, *(np.array([f(v) for v in vals]) for f in (np.nanmedian, np.nanmin, np.nanmax))


def plot_diversity_training(out: str | Path) -> Path:
    """Held-out error, ``1 - cos`` and training loss against ``k`` (resampled vs shared features)
    from ``out/diversity_training.json``: every seed as a point, the median over seeds as a line."""
    plt = pyplot()

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
    return save_figure(fig, out / "diversity_training.png")


def plot_returns_by_k(sweep_out: str | Path) -> Path:
    """From ``sweep_out/returns_by_k.json``: the normalised return against ``k`` and the fraction of
    diverged loops. With the MDP-clustered statistics
    (:func:`lsa_theory.experiments.training.sweeps.deployed_returns_by_k`): the mean over ALL loops (a
    diverged loop scored ``diverged_score``) +- the standard error over the held-out MDPs (seeds averaged
    per MDP); each seed's mean over all its loops as a point. Documents without them: the converged loops
    pooled (as recorded). Writes ``sweep_out/returns_by_k.png``."""
    plt = pyplot()

    sweep_out = Path(sweep_out)
    doc = read_json(sweep_out / "returns_by_k.json")
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    clustered = all("normalized_return_mean" in g for g in doc["groups"])
    m_key, s_key, p_key = (
        ("normalized_return_mean", "normalized_return_clustered_sem", "normalized_return_scored")
        if clustered
        else (
            "normalized_return_converged_mean",
            "normalized_return_converged_sem",
            "normalized_return_nanmean",
        )
    )
    for shared, style in ((False, "o-"), (True, "s--")):
        sel = sorted((g for g in doc["groups"] if g["shared_features"] == shared), key=lambda g: g["k"])
        if not sel:
            continue
        label = "shared features" if shared else "resampled features"
        nan = np.nan
        (ln, *_) = ax.errorbar(
            [g["k"] for g in sel],
            [nan if g[m_key] is None else g[m_key] for g in sel],
            yerr=[nan if g[s_key] is None else g[s_key] for g in sel],
            fmt=style,
            capsize=3,
            label=label,
        )
        pts = [r for r in doc["rows"] if r["shared_features"] == shared]
        ax.scatter(
            [r["k"] for r in pts],
            [nan if r[p_key] is None else r[p_key] for r in pts],
            s=10, color=ln.get_color(), alpha=0.5,
        )  # fmt: skip
        ax2.plot([g["k"] for g in sel], [g["n_diverged"] / g["n_loops"] for g in sel], style, label=label)
    if doc.get("normalized_return_teacher") is not None:
        ax.axhline(doc["normalized_return_teacher"], color="k", lw=0.8, label="exact teacher")
    for a in (ax, ax2):
        a.set_xscale("log")
        a.set_xlabel("training MDPs k")
        a.legend(fontsize=8)
    if clustered:
        ax.set_ylabel(
            f"normalised return after {doc['n_updates']} updates\n({SEM} over {doc['n_heldout']} held-out "
            "MDPs, seeds averaged per MDP)"
        )
        ax.set_title(
            f"every loop, a diverged one scored {doc.get('diverged_score', 0.0):g} (points: one seed each)",
            fontsize=9,
        )
    else:
        ax.set_ylabel(f"normalised return after {doc['n_updates']} updates\n({SEM} over the converged loops)")
        ax.set_title("loops that did not diverge, all seeds pooled (points: one seed each)", fontsize=9)
    ax2.set_ylabel("fraction of held-out loops that diverged")
    ax2.set_title("(M7): trained blocks deployed on held-out MDPs, all seeds", fontsize=9)
    return save_figure(fig, sweep_out / "returns_by_k.png")

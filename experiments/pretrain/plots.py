"""Figures of the (P3) comparison, drawn from saved results (:mod:`lsa_theory.experiments.pretrain.compare`
writes them; :mod:`lsa_theory.experiments.pretrain.evaluate` re-exports these names)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lsa_theory import constructions

from ..io import read_json
from ..plots import label_heatmap, pyplot, save_figure, sem_label
from ..stats import DIVERGED_SCORE, mean_sem_columns, scored

__all__ = ["plot_returns", "plot_rl_training", "plot_blocks", "plot_sweep", "plot_seeds"]


def curve_band(curves) -> tuple[np.ndarray, np.ndarray, int]:
    """Mean and s.e.m. over the held-out MDPs of ``curves`` (N, points), every loop counted: a loop
    scores :data:`lsa_theory.experiments.stats.DIVERGED_SCORE` from its divergence on (its NaN entries); also
    the number of loops that diverged by the last point."""
    mean, s = mean_sem_columns(scored(curves)[0])
    return mean, s, int(np.sum(~np.isfinite(np.asarray(curves, float)[:, -1])))


def plot_returns(out: str | Path) -> Path:
    """Held-out greedy normalised return along the sampled loop (S6) for every block (mean +- s.e.
    over ALL held-out MDPs, :func:`curve_band`: a diverged loop scores 0 from its divergence on;
    the legend counts the loops that diverged) from ``out/pretrain_eval.npz`` and
    ``out/pretrain.json``; the dotted line marks the (P2) horizon ``T``. Writes
    ``out/pretrain_returns.png``."""
    plt = pyplot()
    out = Path(out)
    doc = read_json(out / "pretrain.json")
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    with np.load(out / "pretrain_eval.npz") as z:
        x = z["updates"]
        for name in doc["blocks"]:
            m, s, n_div = curve_band(z[f"{name}/curves"])
            (line,) = ax.plot(x, m, label=f"{name} ({n_div} diverged)" if n_div else name)
            ax.fill_between(x, m - s, m + s, color=line.get_color(), alpha=0.2, lw=0)
    ax.axvline(doc["config"]["T"], color="k", ls=":", lw=0.8, label="(P2) horizon T")
    ax.axhline(0.0, color="0.5", lw=0.6)
    ax.axhline(1.0, color="k", lw=0.6)
    cfg = doc["config"]
    ax.set_xlabel("updates of the sampled closed loop ((S6) epsilon-greedy, or (A5) pi_lambda)")
    ax.set_ylabel(
        f"greedy normalised return\n(band: {sem_label(doc['n_heldout'], 'held-out MDPs')};\n"
        f"a diverged loop scored {DIVERGED_SCORE:g})"
    )
    ax.set_title(
        f"{cfg.get('algo', 'sarsa')}, S={cfg['S']}, A={cfg['A']}, k={cfg['k']} training MDPs, "
        + f"{doc['n_heldout']} held-out",
        fontsize=9,
    )
    ax.legend(fontsize=8)
    return save_figure(fig, out / "pretrain_returns.png")


def plot_rl_training(out: str | Path) -> Path:
    """(P2) training curves from ``out/rl/rl.json``: the smooth objective on the training and the
    held-out MDPs, and the RL block's (S3) alignment and effective step size, against the step.
    Writes ``out/pretrain_training.png``."""
    plt = pyplot()
    out = Path(out)
    doc = read_json(out / "rl" / "rl.json")
    h = doc["history"]

    def arr(key):
        return np.array([np.nan if v is None else v for v in h[key]], dtype=float)

    step = arr("step")
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    axes[0].plot(step, arr("objective"), label="training MDPs")
    axes[0].plot(step, arr("heldout_objective"), label="held-out MDPs (fresh features)")
    axes[0].set_ylabel("smooth (P2) objective")
    ref = "the construction ((S3) or (A3))"
    axes[1].plot(step, arr("cos_S3_effective"), label=f"cos to {ref}, effective blocks")
    axes[1].plot(step, arr("cos_S3_full"), "--", label=f"cos to {ref}, all of P, V")
    axes[1].plot(step, arr("alpha_eff"), ":", label="alpha_eff of the nearest construction")
    if "beta_eff" in h:
        axes[1].plot(step, arr("beta_eff"), "-.", label="beta_eff of the nearest construction")
    for ax in axes:
        ax.set_xlabel("Adam step")
        ax.legend(fontsize=8)
    c = doc["config"]
    fig.suptitle(
        f"(P2) {c.get('algo', 'sarsa')}, S={c['S']}, A={c['A']}, T={c['T']}, k={c['k']}, "
        + f"tau={c['tau']}, mode {c['mode']}",
        fontsize=10,
    )
    return save_figure(fig, out / "pretrain_training.png")


def plot_blocks(out: str | Path) -> Path:
    """Heat maps of the (P2) block's ``P`` and ``V`` (``out/rl/rl.npz``) beside the (P1) block's
    (``out/teacher/train.npz``, when present), with the (L2) split ``(m | D - m)``. Writes
    ``out/pretrain_blocks.png``."""
    plt = pyplot()
    out = Path(out)
    mats = {}
    with np.load(out / "rl" / "rl.npz") as z:
        mats["(P2) P"], mats["(P2) V"] = z["P"], z["V"]
    if (out / "teacher" / "train.npz").exists():
        with np.load(out / "teacher" / "train.npz") as z:
            mats["(P1) P"], mats["(P1) V"] = z["P"], z["V"]
    cfg = read_json(out / "rl" / "rl.json")["config"]
    m = constructions.ALGORITHMS[cfg.get("algo", "sarsa")].dims(cfg["S"], cfg["A"]).layout.m
    fig, axes = plt.subplots(1, len(mats), figsize=(4.2 * len(mats), 4.0), squeeze=False)
    for ax, (title, M) in zip(axes[0], mats.items(), strict=True):
        lim = float(np.abs(M).max()) or 1.0
        im = ax.imshow(M, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.axhline(m - 0.5, color="k", lw=0.6)
        ax.axvline(m - 0.5, color="k", lw=0.6)
        ax.set_title(title, fontsize=9)
        label_heatmap(ax, im, title, m)
    return save_figure(fig, out / "pretrain_blocks.png")


def plot_sweep(out: str | Path) -> Path:
    """Held-out return (rl, rl before training, teacher-mimicking, exact teacher) and the RL
    block's (S3) cosine and update correlation against ``T`` and ``k`` from
    ``out/pretrain_sweep.json``. Writes ``out/pretrain_sweep.png``."""
    plt = pyplot()
    out = Path(out)
    doc = read_json(out / "pretrain_sweep.json")
    rows, base = [r for r in doc["rows"] if "failed" not in r], doc["base"]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    for col, (var, fixed, fval) in enumerate((("T", "k", base["k"]), ("k", "T", base["T"]))):
        sel = sorted((r for r in rows if r[fixed] == fval), key=lambda r: r[var])
        if not sel:
            continue
        x = [r[var] for r in sel]
        ax = axes[0, col]
        for name, style in (("rl", "o-"), ("rl_initial", "x:"), ("teacher", "s--"), ("exact", "^-.")):
            y = np.array([np.nan if r[f"{name}_return"] is None else r[f"{name}_return"] for r in sel])
            e = np.array([0.0 if r[f"{name}_return_sem"] is None else r[f"{name}_return_sem"] for r in sel])
            ax.errorbar(x, y, yerr=e, fmt=style, capsize=3, label=name)
        n_held = base["heldout_k"]
        ax.set_ylabel(f"held-out greedy normalised return at T\n(bars: {sem_label(n_held, 'MDPs')})")
        ax.set_title(f"{fixed} = {fval}", fontsize=9)
        ax = axes[1, col]
        ax.plot(x, [r["rl_cos_S3_effective"] for r in sel], "o-", label="rl: cos to (S3)/(A3), effective")
        ref = base.get("algo", "sarsa")  # the teacher whose update the correlation refers to
        ax.plot(x, [r["rl_update_corr_sarsa"] for r in sel], "s--", label=f"rl: update corr. with {ref}")
        ax.plot(
            x, [r["teacher_update_corr_sarsa"] for r in sel], "^:", label="teacher-mimicking: update corr."
        )
        ax.set_ylim(-1.05, 1.05)
        for a in axes[:, col]:
            a.set_xscale("log", base=2)
            a.set_xlabel(var)
            a.legend(fontsize=7)
    fig.suptitle(f"(P3) sweeps: {base.get('algo', 'sarsa')}, S={base['S']}, A={base['A']}", fontsize=10)
    return save_figure(fig, out / "pretrain_sweep.png")


def plot_seeds(path: str | Path) -> Path:
    """Several seeds of one (P3) configuration from a saved seeds document (``path``, written by
    :func:`lsa_theory.experiments.pretrain.compare.seeds_document`): per seed, the smooth (P2) objective on
    the training and held-out MDPs and the cosine of the effective blocks to the construction
    against the Adam step, and the held-out greedy return curves of the (P2) block and of the
    exact teacher (mean +- s.e.m. over ALL held-out MDPs, a diverged loop scored 0; the legend
    counts the diverged loops; a failed run has no curves and is named in the title). Writes
    ``path`` with ``.png`` in place of ``.json``."""
    plt = pyplot()
    path = Path(path)
    doc = read_json(path)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.0))
    n_held, runs = None, [r for r in doc["runs"] if "failed" not in r]  # a failed run has no curve
    for run in runs:
        h, seed = run["history"], run["seed"]
        step = np.asarray(h["step"], float)
        obj = [np.nan if v is None else v for v in h["objective"]]
        (ln,) = axes[0].plot(step, obj, label=f"seed {seed}: training MDPs")
        held = [np.nan if v is None else v for v in h["heldout_objective"]]
        axes[0].plot(step, held, "--", color=ln.get_color(), label=f"seed {seed}: held-out MDPs")
        cos = [np.nan if v is None else v for v in h["cos_S3_effective"]]
        axes[1].plot(step, cos, color=ln.get_color(), label=f"seed {seed}")
        x = np.asarray(run["updates"], float)
        for name, style in (("rl", "-"), ("exact", ":")):
            c = run["curves"][name]
            m, s = np.asarray(c["mean"], float), np.asarray(c["sem"], float)
            what = "(P2) block" if name == "rl" else "exact teacher"
            n_div = c["n_diverged"]
            label = f"seed {seed}: {what}" + (f" ({n_div} diverged by {x[-1]:g})" if n_div else "")
            axes[2].plot(x, m, style, color=ln.get_color(), label=label)
            axes[2].fill_between(x, m - s, m + s, color=ln.get_color(), alpha=0.15, lw=0)
        n_held = run["n_heldout"]
    axes[0].set_ylabel("smooth (P2) objective")
    axes[1].set_ylabel("cos of the effective blocks to the construction")
    for ax in axes[:2]:
        ax.set_xlabel("Adam step")
    axes[2].set_xlabel("updates of the sampled closed loop")
    axes[2].set_ylabel(
        f"held-out greedy normalised return\n(band: {sem_label(n_held, 'held-out MDPs')};\n"
        f"a diverged loop scored {DIVERGED_SCORE:g})"
    )
    if runs:
        axes[2].axvline(runs[0]["config"]["T"], color="k", ls=":", lw=0.8, label="(P2) horizon T")
    for ax in axes:
        ax.legend(fontsize=6)
    failed = [r["source"] for r in doc["runs"] if "failed" in r]
    note = f"; failed: {', '.join(failed)}" if failed else ""
    fig.suptitle(f"(P2) every seed: {doc['name']}{note}", fontsize=10)
    return save_figure(fig, path.with_suffix(".png"))

"""The figures of :mod:`lsa_theory.experiments.context_length`, drawn from its saved results."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import read_json
from ..plots import pyplot, save_figure, sem_label
from .common import REGIMES

__all__ = ["plot_context_length_regimes", "plot_context_length"]


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
    plt = pyplot()

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
            ns = sorted({r["n"] for r in doc["rows"]})
            ax.set_xticks(ns, [str(n) for n in ns])  # the measured n, not 2, 3, 4, ... x 10^k
            ax.minorticks_off()
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
    return save_figure(fig, out / f"context_length_{regime}.png")


def plot_context_length(out: str | Path) -> Path:
    """Normalised return after a fixed number of updates against ``n`` with standard-error bars
    (block and teacher) from ``out/context_length.json``. Writes ``out/context_length.png``."""
    plt = pyplot()

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
    return save_figure(fig, out / "context_length.png")

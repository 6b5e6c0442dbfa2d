"""The td-pretrain figure, from saved results only."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import read_json

__all__ = ["plot_td_pretrain"]

_METRICS = (
    ("dist_fix", "distance to Fix(G) (outside share of the norm)"),
    ("dist_w3", "distance to (W3) up to scale (sine)"),
    ("dist_theta_star", "distance to theta* of (WP3) (relative)"),
    ("heldout_value_err", "held-out rel. value error (zero predictor = 1)"),
)


def plot_td_pretrain(out: str | Path) -> Path:
    """``td_pretrain.png`` from ``td_pretrain.json`` in ``out``: the four (WP6) quantities against the
    Adam step, one colour per number of distinct tasks k (fresh: a new task every iteration), one line
    per seed (every run drawn)."""
    from ..plots import pyplot, save_figure

    plt = pyplot()
    out = Path(out)
    doc = read_json(out / "td_pretrain.json")
    ks = list(dict.fromkeys(r["k"] for r in doc["runs"]))
    colours = plt.get_cmap("tab10")(np.arange(len(ks)) % 10)
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    for ax, (metric, label) in zip(axes.ravel(), _METRICS, strict=True):
        for k, col in zip(ks, colours, strict=True):
            for j, run in enumerate(r for r in doc["runs"] if r["k"] == k):
                steps = [row["step"] for row in run["log"] if row[metric] is not None]
                vals = [row[metric] for row in run["log"] if row[metric] is not None]
                if vals:
                    ax.plot(steps, vals, color=col, lw=1, alpha=0.8, label=f"k = {k}" if j == 0 else None)
        if metric == "heldout_value_err":
            ax.axhline(1.0, color="k", lw=0.6, ls=":")
            finite = [row[metric] for r in doc["runs"] for row in r["log"] if np.isfinite(row[metric])]
            if finite and max(finite) > 5:
                ax.set_yscale("log")
        ax.set_xlabel("Adam step")
        ax.set_ylabel(label)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "theta* of (WP3) is stated for L = 1 only", ha="center", transform=ax.transAxes)
    cfg = doc["config"]
    st = doc["stationary"]
    fig.suptitle(
        f"[W]'s TD pretraining, d = {cfg['d']}, n = {cfg['n']}, L = {cfg['L']}, seeds {cfg['seeds']}; "
        f"theta* (L = 1): (a*, b*) = ({st['a_star']:.3f}, {st['b_star']:.3f})",
        fontsize=10,
    )
    return save_figure(fig, out / "td_pretrain.png")

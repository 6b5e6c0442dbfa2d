"""The learning-curve figure of :mod:`lsa_theory.experiments.control`, drawn from ``control.json``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import read_json
from ..plots import SEM, pyplot, save_figure, sem_label


def plot_control(out: str | Path) -> Path:
    """Learning curves from ``out/control.json``: normalised return of the greedy policy against
    environment steps for the block, the teacher (dashed) and tabular SARSA, with the uniform (0)
    and optimal (1) baselines; one panel per (env, algo). Writes ``out/control.png``."""
    plt = pyplot()

    out = Path(out)
    doc = read_json(out / "control.json")
    rows, n_steps = doc["envs"], doc["config"]["n"]
    cols = min(3, len(rows))
    nrows = -(-len(rows) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.6 * cols, 3.6 * nrows), squeeze=False)
    for ax, row in zip(axes.ravel(), rows, strict=False):
        c = row["curves"]
        x = np.asarray(c["updates"], dtype=float) * n_steps
        for name, style, label in (
            ("block", "-", "frozen block"),
            ("teacher", "--", "exact teacher"),
            ("tabular", ":", "tabular SARSA"),
        ):
            if f"{name}_mean" not in c:
                continue
            m = np.asarray(c[f"{name}_mean"], dtype=float)
            s = np.asarray(c[f"{name}_sem"], dtype=float)
            (line,) = ax.plot(x, m, style, lw=1.3, label=label)
            ax.fill_between(x, m - s, m + s, color=line.get_color(), alpha=0.2, lw=0)
        ax.axhline(1.0, color="k", lw=0.7, label="optimal")
        ax.axhline(0.0, color="0.5", lw=0.7, label="uniform")
        title = f"{row['name']} ({row['algo']}, {row['n_seeds']} seeds"
        if row.get("n_diverged"):
            title += f"; block diverged in {row['n_diverged']}"
        ax.set_title(title + ")", fontsize=9)
        ax.set_xlabel("environment steps")
        ax.set_ylabel(f"normalised return (bands: {sem_label(row['n_seeds'], 'seeds')})", fontsize=8)
    for ax in axes.ravel()[len(rows) :]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=7)
    fig.suptitle(f"(S6) deployment of the frozen block ({SEM} over seeds)")
    return save_figure(fig, out / "control.png")

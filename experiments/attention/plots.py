"""The attention figure, from saved results only."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import read_json

__all__ = ["plot_attention"]


def plot_attention(out: str | Path) -> Path:
    """``attention.png`` from ``attention.json`` in ``out``: (left) the training loss (M1) against the
    Adam step, one colour per model, one line per seed (every run drawn); (middle) the held-out error
    of every run, with the (S3) probes' values as horizontal lines; (right) the update correlation
    and the (S3) norm share of every run."""
    from ..plots import pyplot, save_figure

    plt = pyplot()
    out = Path(out)
    doc = read_json(out / "attention.json")
    models = list(dict.fromkeys((r["attention"], r["heads"]) for r in doc["runs"]))
    colours = plt.get_cmap("tab10")(np.arange(len(models)) % 10)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    for i, (model, col) in enumerate(zip(models, colours, strict=True)):
        mine = [r for r in doc["runs"] if (r["attention"], r["heads"]) == model]
        label = f"{model[0]}, {model[1]} head{'s' if model[1] > 1 else ''}"
        for j, r in enumerate(mine):
            log = np.array(r["log"], dtype=float)
            if log.size:
                axes[0].plot(log[:, 0], log[:, 1], color=col, lw=1, label=label if j == 0 else None)
            mark = "x" if r["diverged"] else "o"
            axes[1].scatter([i], [r["heldout_err"]], color=col, marker=mark)
            axes[2].scatter([r["s3_share"]], [r["update_corr"]], color=col, marker=mark)
    axes[0].set_yscale("log")
    axes[0].set_xlabel("Adam step")
    axes[0].set_ylabel("training loss (M1)")
    axes[0].legend(fontsize=7)
    names = [f"{a}\n{h}h" for a, h in models]
    axes[1].set_xticks(range(len(models)), names, fontsize=8)
    axes[1].set_yscale("log")
    axes[1].set_ylabel("held-out error (zero update = 1)")
    for row in doc["construction"]["rows"]:
        if row["block"].startswith("centred"):
            axes[1].axhline(
                row["heldout_err"], color="k", ls=":", lw=0.8, label="centred TD (softmax 2-head limit)"
            )
        if row["block"].startswith("relu, 1 head"):
            axes[1].axhline(row["heldout_err"], color="grey", ls="--", lw=0.8, label="relu 1 head at (S3)")
    axes[1].legend(fontsize=7)
    axes[2].set_xlabel("share of |theta|^2 on the (S3) support")
    axes[2].set_ylabel("corr(block update, teacher update), held out")
    cfg = doc["config"]
    fig.suptitle(
        f"SARSA teacher mimicking, one attention layer: S = {cfg['S']}, A = {cfg['A']}, n = {cfg['n']}, "
        f"k = {cfg['k']} MDPs, {cfg['steps']} Adam steps, seeds {cfg['seeds']} (x: diverged)",
        fontsize=10,
    )
    return save_figure(fig, out / "attention.png")

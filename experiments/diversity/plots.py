"""The diversity figure, from saved results only."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import read_json
from ..plots import integer_ticks, pyplot, save_figure

__all__ = ["plot_diversity"]


def plot_diversity(out: str | Path) -> Path:
    """From ``diversity.json``: held-out error and certified kernel dimension, beside the (M4)
    tangent dimension, against k (resampled vs shared features, S = A = 2; integer ticks), and the
    single-MDP held-out error against d at every size."""
    plt = pyplot()

    out = Path(out)
    all_rows = read_json(out / "diversity.json")["rows"]
    rows = [r for r in all_rows if r["table"] == "k"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for shared, style in ((False, "o-"), (True, "s--")):
        sel = [r for r in rows if r["shared_features"] == shared]
        ks = [r["k"] for r in sel]
        label = "shared features" if shared else "resampled features"
        axes[0].loglog(ks, [max(r["heldout_err"], 1e-18) for r in sel], style, label=label)
        kd = [r["ker_dim"] if r["ker_dim"] is not None else np.nan for r in sel]
        (ln,) = axes[1].semilogx(ks, kd, style, label=f"{label}: certified kernel")
        axes[1].semilogx(
            ks, [r["tangent_dim"] for r in sel], "x:", color=ln.get_color(), ms=8,
            label=f"{label}: (M4) tangent dimension",
        )  # fmt: skip
    d = rows[0]["d"] if rows else "S A"
    axes[0].set_xlabel(f"training MDPs k (d = {d})")
    axes[0].set_ylabel("held-out relative error of the flow limit")
    axes[1].set_xlabel(f"training MDPs k (d = {d})")
    axes[1].set_ylabel("Hessian kernel / (M4) tangent dimension")
    integer_ticks(axes[1].yaxis)
    single = [r for r in all_rows if r["k"] == 1 and r["shared_features"] and r["reward"] == "sa"]
    single = [r for r in single if r["table"] in ("M5", "d")]
    for S, A in sorted({(r["S"], r["A"]) for r in single}):
        sel = sorted((r for r in single if (r["S"], r["A"]) == (S, A)), key=lambda r: r["d"])
        axes[2].semilogy(
            [r["d"] / (S * A) for r in sel],
            [max(r["heldout_err"], 1e-18) for r in sel],
            "o-",
            label=f"S = A = {S}",
        )
        for r in sel:
            xy = (r["d"] / (S * A), max(r["heldout_err"], 1e-18))
            axes[2].annotate(f"d={r['d']}, ker {r['ker_dim']}", xy, fontsize=6)
    axes[2].set_xlabel("d / |S||A| (one MDP, one feature map)")
    axes[2].set_ylabel("held-out relative error of the flow limit")
    for ax in axes:
        ax.legend(fontsize=8)
    fig.suptitle("(M7): task diversity and the optimal manifold; the cost depends on d")
    return save_figure(fig, out / "diversity.png")

"""Figures drawn from package objects or saved results (never from hard-coded paths)."""

from __future__ import annotations

import numpy as np


def construction_heatmaps(P: np.ndarray, V: np.ndarray, layout, titles=("P", "V")):
    """Heatmaps of ``P`` and ``V`` with the (L2) block split ``(m | D - m)`` drawn; returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2))
    for ax, M, title in zip(axes, (P, V), titles, strict=True):
        lim = float(np.abs(M).max()) or 1.0
        im = ax.imshow(M, cmap="RdBu_r", vmin=-lim, vmax=lim)
        for x in (layout.m - 0.5,):
            ax.axhline(x, color="k", lw=0.8)
            ax.axvline(x, color="k", lw=0.8)
        ax.set_title(title)
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.tight_layout()
    return fig

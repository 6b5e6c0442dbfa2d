"""Figures drawn from package objects or saved results (never from hard-coded paths), and the
labelling conventions every figure of the package shares."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = [
    "SEM",
    "construction_heatmaps",
    "integer_ticks",
    "label_heatmap",
    "pyplot",
    "save_figure",
    "sem_label",
]

#: How every error bar / band of the package is labelled: the standard error of the mean.
SEM = "mean ± s.e.m."


def pyplot():
    """``matplotlib.pyplot`` on the non-interactive ``Agg`` backend, imported on call (no
    import-time side effect): the opening of every figure function drawn from saved results."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path) -> Path:
    """Lay out ``fig`` (``tight_layout``), write it to ``path`` at 120 dpi and close it; returns
    ``Path(path)``: the closing of every figure function drawn from saved results."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def sem_label(n, what: str) -> str:
    """``"mean ± s.e.m. over n what"``: the label of an error bar or band of ``n`` samples."""
    return f"{SEM} over {n} {what}"


def integer_ticks(axis) -> None:
    """Integer ticks only on ``axis`` (``ax.xaxis`` / ``ax.yaxis``): for dimensions and indices."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def label_heatmap(ax, image, what: str, m: int | None = None) -> None:
    """Axis labels (row / column index, with the (L2) split ``(m | D - m)`` when ``m`` is given)
    and a labelled colorbar (``what``) for a matrix drawn with ``imshow`` on ``ax``."""
    split = f" (line: (L2) split at m = {m})" if m is not None else ""
    ax.set_xlabel("column index" + split)
    ax.set_ylabel("row index")
    integer_ticks(ax.xaxis)
    integer_ticks(ax.yaxis)
    ax.figure.colorbar(image, ax=ax, shrink=0.8, label=f"entry of {what}")


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
        label_heatmap(ax, im, title, layout.m)
    fig.tight_layout()
    return fig

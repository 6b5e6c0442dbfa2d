"""Figures drawn from package objects or saved results (never from hard-coded paths), and the
labelling conventions every figure of the package shares."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = [
    "SEM",
    "construction_heatmaps",
    "integer_ticks",
    "coincide",
    "fit_texts",
    "label_heatmap",
    "labelled_curves",
    "note_empty",
    "note_identical",
    "pyplot",
    "save_figure",
    "sem_label",
    "unclutter_xticks",
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
    """Lay out ``fig`` so that a reader can read all of it, write it to ``path`` at 120 dpi and
    close it; returns ``Path(path)``: the closing of every figure function drawn from saved
    results. Measured through matplotlib's renderer after ``tight_layout``: a title or label
    longer than its room is wrapped (:func:`fit_texts`), overlapping x tick labels lose the minor
    labels, then turn (:func:`unclutter_xticks`), an axis with a legend but no data shows its
    legend's text as a note instead (:func:`note_empty`), and labelled curves that coincide
    within a pixel get a note naming them (:func:`note_identical`)."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    for ax in fig.axes:
        note_empty(ax)
    r = _renderer(fig)  # one draw serves both measurements
    if fit_texts(fig, r) | unclutter_xticks(fig, r):
        fig.tight_layout()
        if fit_texts(fig):
            fig.tight_layout()
    for ax in fig.axes:
        note_identical(ax)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def _renderer(fig):
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def fit_texts(fig, renderer=None) -> bool:
    """Wrap every figure text (suptitle), axis title and axis label of ``fig`` whose rendered
    length exceeds its room (figure texts and y labels: the figure's width / height; titles and x
    labels: their axis' width): each line is refilled to ``len * room / length`` characters at
    word boundaries (mathtext is left alone). Measured with ``renderer`` (a renderer of the
    current layout, or None: draw ``fig`` first). Returns whether any text changed."""
    import textwrap

    r = _renderer(fig) if renderer is None else renderer
    W, H = fig.bbox.width, fig.bbox.height
    items = [(t, 0.98 * W, "x") for t in fig.texts]
    for ax in fig.axes:
        if not ax.get_visible() or not ax.axison:
            continue
        w = ax.get_window_extent(r).width
        items += [(ax.title, 1.05 * w, "x"), (ax.xaxis.label, 1.05 * w, "x"), (ax.yaxis.label, 0.95 * H, "y")]
    changed = False
    for t, room, along in items:
        text = t.get_text()
        if not t.get_visible() or not text.strip() or "$" in text:
            continue
        e = t.get_window_extent(r)
        length = e.width if along == "x" else e.height
        if length <= room:
            continue
        lines = text.split("\n")
        width = max(8, int(max(map(len, lines)) * room / length * 0.97))
        t.set_text("\n".join(textwrap.fill(line, width) for line in lines))
        changed = True
    return changed


def _xtick_labels(ax, r) -> list:
    lo, hi = sorted(ax.get_xlim())
    ticks = ax.xaxis.get_major_ticks() + ax.xaxis.get_minor_ticks()
    return [
        t.label1
        for t in ticks
        if t.get_visible()
        and t.label1.get_visible()
        and t.label1.get_text().strip()
        and lo <= t.get_loc() <= hi
    ]


def _overlap(labels, r) -> bool:
    ext = [t.get_window_extent(r) for t in labels]
    return any(ext[i].overlaps(ext[j]) for i in range(len(ext)) for j in range(i + 1, len(ext)))


def unclutter_xticks(fig, renderer=None) -> bool:
    """Where x tick labels of one axis overlap on the rendered ``fig``: drop the minor tick labels
    (log axes label 2, 3, 4, ... x 10^k), then, if they still overlap, turn the labels 45 degrees.
    Measured with ``renderer`` as :func:`fit_texts`. Returns whether any axis changed."""
    from matplotlib.ticker import NullFormatter

    r = _renderer(fig) if renderer is None else renderer
    crowded = [ax for ax in fig.axes if ax.axison and _overlap(_xtick_labels(ax, r), r)]
    if not crowded:
        return False
    for ax in crowded:
        ax.xaxis.set_minor_formatter(NullFormatter())
    r = _renderer(fig)
    for ax in crowded:
        if _overlap(_xtick_labels(ax, r), r):
            ax.tick_params(axis="x", labelrotation=45)
    return True


def _draws_data(ax) -> bool:
    """Whether ``ax`` draws anything in data coordinates: an image, a patch, a collection with
    content or a line with a finite point (reference lines in axis coordinates do not count)."""
    if ax.images or ax.patches or any(len(c.get_paths()) or len(c.get_offsets()) for c in ax.collections):
        return True
    return any(
        ln.get_transform().contains_branch(ax.transData)
        and np.isfinite(np.asarray(ln.get_ydata(), float)).any()
        for ln in ax.get_lines()
    )


def note_empty(ax) -> None:
    """An axis with a legend that draws no data: the legend and the ticks go, the legend's entries
    are written in the middle of the panel ("no data to draw", then the entries)."""
    leg = ax.get_legend()
    if leg is None or _draws_data(ax):
        return
    texts = [t.get_text() for t in leg.get_texts() if t.get_text().strip()]
    leg.remove()
    ax.set_xticks([])  # the empty panel's default ticks (-0.04 ... 0.04) would mean nothing
    ax.set_yticks([])
    ax.text(
        0.5, 0.5, "\n".join(["no data to draw", *texts]), transform=ax.transAxes, ha="center", va="center",
        fontsize=8, wrap=True,
    )  # fmt: skip


def labelled_curves(ax) -> list[tuple[str, object]]:
    """``(label, line)`` of every labelled data curve of ``ax`` in drawing order: error-bar
    containers by their data line, then labelled lines in data coordinates."""
    from matplotlib.container import ErrorbarContainer

    found, seen = [], set()
    for c in ax.containers:
        if isinstance(c, ErrorbarContainer) and c.lines[0] is not None:
            seen.add(id(c.lines[0]))
            found.append((c.get_label(), c.lines[0]))
    for ln in ax.get_lines():
        if id(ln) not in seen and not ln.get_label().startswith("_"):
            if ln.get_transform().contains_branch(ax.transData):
                found.append((ln.get_label(), ln))
    return found


def coincide(ax, a, b, pixels: float = 1.0) -> bool:
    """Whether lines ``a`` and ``b`` of ``ax`` hide each other: the same number of points, the same
    finite points, at least one, each within ``pixels`` display pixels of its partner."""
    pa = ax.transData.transform(
        np.column_stack([np.asarray(a.get_xdata(), float), np.asarray(a.get_ydata(), float)])
    )
    pb = ax.transData.transform(
        np.column_stack([np.asarray(b.get_xdata(), float), np.asarray(b.get_ydata(), float)])
    )
    if pa.shape != pb.shape:
        return False
    fa, fb = np.isfinite(pa).all(axis=1), np.isfinite(pb).all(axis=1)
    if not fa.any() or not np.array_equal(fa, fb):
        return False
    return bool(np.max(np.abs(pa[fa] - pb[fa])) <= pixels)


def note_identical(ax) -> None:
    """For every pair of labelled curves of ``ax`` that :func:`coincide` (B drawn later, on top of
    A): B's entry in the axis' legend becomes "B (identical within a pixel to A)", wrapped; without
    such an entry the same words are written in the lower left of the panel."""
    import textwrap

    curves, notes = labelled_curves(ax), []
    leg = ax.get_legend()
    entries = {t.get_text(): t for t in leg.get_texts()} if leg is not None else {}
    for i, (la, a) in enumerate(curves):
        for lb, b in curves[i + 1 :]:
            if coincide(ax, a, b):
                note = f"{lb} (identical within a pixel to {la})"
                if lb in entries:
                    entries.pop(lb).set_text(textwrap.fill(note, max(40, len(lb))))
                else:
                    notes.append(textwrap.fill(note, 60))
    if notes:
        ax.text(
            0.01, 0.01, "\n".join(notes), transform=ax.transAxes, ha="left", va="bottom", fontsize=6,
            bbox=dict(facecolor="white", alpha=0.7, lw=0),
        )  # fmt: skip


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

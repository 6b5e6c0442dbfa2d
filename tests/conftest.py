"""Shared test set-up: hypothesis profiles and small seeded fixtures.

Profiles: ``dev`` (default, 50 examples) and ``ci`` (derandomized, loaded when ``CI`` is set);
``HYPOTHESIS_PROFILE`` overrides. Numerical tests use ``deadline=None`` in their settings.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "ci",
    max_examples=50,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh seeded generator per test."""
    return np.random.default_rng(20260522)


class SavedFigures:
    """The matplotlib figures a plot function saved, by file name, with the checks every figure of
    the package must pass (labelled error bars and heatmaps, integer dimension ticks)."""

    def __init__(self) -> None:
        self.figs: dict = {}

    def __getitem__(self, name: str):
        return self.figs[name]

    @staticmethod
    def legend_texts(ax) -> list[str]:
        leg = ax.get_legend()
        return [t.get_text() for t in leg.get_texts()] if leg is not None else []

    @staticmethod
    def assert_integer_ticks(axis) -> None:
        lo, hi = sorted(axis.get_view_interval())
        ticks = [t for t in axis.get_majorticklocs() if lo - 1e-9 <= t <= hi + 1e-9]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks

    def assert_error_bars_labelled(self, fig) -> int:
        """Every axes with an errorbar or a fill_between band says it is a standard error of the mean
        (ylabel or legend); returns how many such axes there are."""
        from matplotlib.collections import PolyCollection
        from matplotlib.container import ErrorbarContainer

        n = 0
        for ax in fig.axes:
            bars = any(isinstance(c, ErrorbarContainer) for c in ax.containers)
            bands = any(isinstance(c, PolyCollection) for c in ax.collections)
            if bars or bands:
                n += 1
                text = " ".join([ax.get_ylabel(), *self.legend_texts(ax)])
                assert "s.e.m." in text, text
        return n

    @staticmethod
    def layout_problems(fig) -> list[str]:
        """What a reader of the saved figure could not read, measured by matplotlib's renderer
        (``get_window_extent`` after a draw, in display pixels): a text artist (suptitle, title,
        axis label, tick label, legend text, annotation) reaching outside the figure by more than
        half a pixel; two x tick labels of one axis overlapping; an axis that carries a legend but
        draws no data; a missing value printed as ``None``; two labelled curves of one axis within
        a pixel of each other at every point without a note on the axis or in its legend
        ("identical", naming the one hidden)."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.text import Text

        canvas = FigureCanvasAgg(fig)  # a saved figure is closed: its canvas no longer renders
        canvas.draw()
        r = canvas.get_renderer()
        box, tol, out = fig.bbox, 0.5, []

        def outside(t) -> bool:
            e = t.get_window_extent(r)
            return e.x0 < box.x0 - tol or e.y0 < box.y0 - tol or e.x1 > box.x1 + tol or e.y1 > box.y1 + tol

        undrawn = set()  # tick labels of ticks outside the view: matplotlib does not draw them
        for ax in fig.axes:
            for axis in (ax.xaxis, ax.yaxis):  # compared in the scale's coordinates (log: log10)
                scale = axis.get_transform().transform
                lo, hi = sorted(scale(np.asarray(axis.get_view_interval(), float)))
                for t in axis.get_major_ticks() + axis.get_minor_ticks():
                    loc = scale(np.array([t.get_loc()], float))[0]
                    if not (np.isfinite(loc) and lo - 1e-9 * (hi - lo) <= loc <= hi + 1e-9 * (hi - lo)):
                        undrawn |= {id(t.label1), id(t.label2)}
        texts = [
            t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip() and id(t) not in undrawn
        ]
        for t in texts:
            if t.figure is not None and outside(t):
                out.append(f"outside the figure: {t.get_text()!r}")
            if re.search(r"\bNone\b", t.get_text()):
                out.append(f"a missing value printed as None: {t.get_text()!r}")
        for i, ax in enumerate(fig.axes):
            name = f"axis {i} ({ax.get_title() or ax.get_ylabel()!r})"
            if not ax.get_visible() or not ax.axison:
                continue
            lo, hi = sorted(ax.get_xlim())
            ticks = [
                t.label1
                for t in ax.xaxis.get_major_ticks() + ax.xaxis.get_minor_ticks()
                if t.label1.get_visible()
                and t.label1.get_text().strip()
                and lo <= t.get_loc() <= hi
                and t.get_visible()
            ]
            ext = [t.get_window_extent(r) for t in ticks]
            for a in range(len(ext)):
                for b in range(a + 1, len(ext)):
                    if ext[a].overlaps(ext[b]):
                        out.append(
                            f"{name}: x tick labels overlap: {ticks[a].get_text()!r}, {ticks[b].get_text()!r}"
                        )
            curves = SavedFigures._curves(ax)
            drawn = any(np.isfinite(y).any() for _, _, y in curves) or SavedFigures._draws_other(ax)
            if ax.get_legend() is not None and not drawn:
                out.append(f"{name}: a legend on an axis that draws no data")
            notes = " ".join(t.get_text() for t in ax.texts + SavedFigures._legend_text_artists(ax))
            notes = notes.replace("\n", " ")
            px = [ax.transData.transform(np.column_stack([x, y])) for _, x, y in curves]
            for a in range(len(curves)):
                for b in range(a + 1, len(curves)):
                    (la, pa), (lb, pb) = (curves[a][0], px[a]), (curves[b][0], px[b])
                    if pa.shape != pb.shape:
                        continue
                    fa, fb = np.isfinite(pa).all(axis=1), np.isfinite(pb).all(axis=1)
                    hidden = fa.any() and np.array_equal(fa, fb) and np.abs(pa[fa] - pb[fa]).max() < 1.0
                    if hidden and not ("identical" in notes and la in notes):
                        out.append(f"{name}: {lb!r} hides {la!r} (within a pixel) without a note")
        return out

    @staticmethod
    def _curves(ax) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """``(label, x, y)`` of every labelled data curve of ``ax`` in drawing order (the listing of
        :func:`lsa_theory.experiments.plots.labelled_curves`; what counts as hidden is decided here)."""
        from lsa_theory.experiments.plots import labelled_curves

        return [
            (label, np.asarray(ln.get_xdata(), float), np.asarray(ln.get_ydata(), float))
            for label, ln in labelled_curves(ax)
        ]

    @staticmethod
    def _legend_text_artists(ax) -> list:
        leg = ax.get_legend()
        return list(leg.get_texts()) if leg is not None else []

    @staticmethod
    def _in_data(ax, artist) -> bool:
        return artist.get_transform().contains_branch(ax.transData)

    @staticmethod
    def _draws_other(ax) -> bool:
        """Images, patches, collections with content, or unlabelled data lines with a finite point."""
        if ax.images or ax.patches:
            return True
        for c in ax.collections:
            if len(c.get_paths()) or len(c.get_offsets()):
                return True
        return any(
            SavedFigures._in_data(ax, ln) and np.isfinite(np.asarray(ln.get_ydata(), float)).any()
            for ln in ax.get_lines()
        )

    @staticmethod
    def assert_heatmaps_labelled(fig) -> int:
        """Every image has row/column axis labels and a labelled colorbar; returns the image count."""
        n = 0
        for ax in fig.axes:
            for im in ax.images:
                n += 1
                assert ax.get_xlabel() and ax.get_ylabel(), ax.get_title()
                assert im.colorbar is not None and im.colorbar.ax.get_ylabel(), ax.get_title()
        return n


@pytest.fixture
def figures(monkeypatch) -> Iterator[SavedFigures]:
    """Records every figure saved during the test (``Figure.savefig`` still writes the file); at
    the end of the test every one of them must have no :meth:`SavedFigures.layout_problems`."""
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    saved = SavedFigures()
    real = Figure.savefig

    def savefig(self, fname, *args, **kwargs):
        saved.figs[Path(fname).name] = self
        return real(self, fname, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    yield saved
    problems = {name: SavedFigures.layout_problems(fig) for name, fig in saved.figs.items()}
    problems = {name: p for name, p in problems.items() if p}
    assert not problems, f"figures a reader cannot read: {problems}"

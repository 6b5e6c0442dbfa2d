"""Shared test set-up: hypothesis profiles and small seeded fixtures.

Profiles: ``dev`` (default, 50 examples) and ``ci`` (derandomized, loaded when ``CI`` is set);
``HYPOTHESIS_PROFILE`` overrides. Numerical tests use ``deadline=None`` in their settings.
"""

from __future__ import annotations

import os

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
def figures(monkeypatch) -> SavedFigures:
    """Records every figure saved during the test (``Figure.savefig`` still writes the file)."""
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
    return saved

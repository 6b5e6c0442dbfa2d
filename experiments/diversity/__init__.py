r"""``lsa-theory diversity``: certified richness (M5) and the cost of missing task diversity (M7):
the face of the experiment.

Face: :data:`Config` (:class:`DiversityConfig`, frozen, with ``quick()`` and ``full()``),
:func:`units` (one :class:`Unit` per row of :func:`diversity_rows`), :func:`run_unit` (the kernel
certificate, the flow and the held-out error of one row), :func:`run` (:func:`run_diversity`:
``diversity.json``, resumed by row) and :func:`plot` (:func:`plot_diversity`, from saved results).

Files: ``experiment.py`` (the configuration, its rows, their datasets and verdicts, and the run),
``plots.py`` (the figure).
"""

from __future__ import annotations

from .experiment import (
    DiversityConfig,
    Unit,
    diversity_rows,
    heldout_error,
    kernel_verdict,
    row_datasets,
    run_diversity,
    run_unit,
    units,
)
from .plots import plot_diversity

__all__ = [
    "Config",
    "Unit",
    "units",
    "run_unit",
    "run",
    "plot",
    "DiversityConfig",
    "diversity_rows",
    "row_datasets",
    "kernel_verdict",
    "heldout_error",
    "run_diversity",
    "plot_diversity",
]

#: The face of the experiment: its configuration, run and figure.
Config = DiversityConfig
run = run_diversity
plot = plot_diversity

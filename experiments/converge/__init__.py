r"""``lsa-theory converge``: local exponential convergence (M6), conservation (M3) and richness (M5)
of gradient flows started near the construction: the face of the experiment.

Face: :data:`Config` (:class:`ConvergeConfig`, frozen, with ``quick()`` and ``full()``),
:func:`units` (one :class:`Unit` per flow: the (seed, c, radius) runs, the unrealisable runs and
the radius sweep, :data:`PARTS`), :func:`run_unit`, :func:`run` (:func:`run_converge`:
``converge.json`` / ``converge.npz``, resumed by unit) and :func:`plot` (:func:`plot_converge`,
from saved results).

Files: ``experiment.py`` (the configuration, its units, the (M6) prediction before the flow and
the run), ``pl.py`` (the PL ratios along a flow and their round-off bound), ``plots.py`` (the
figures).
"""

from __future__ import annotations

from .experiment import (
    PARTS,
    ConvergeConfig,
    Unit,
    noisy_targets,
    predict_rate,
    predict_rates,
    reached_manifold,
    run_converge,
    run_key,
    run_unit,
    units,
)
from .pl import PL_RTOL, pl_ratio_error_bound, pl_ratios
from .plots import plot_converge

__all__ = [
    "Config",
    "units",
    "run_unit",
    "run",
    "plot",
    "ConvergeConfig",
    "PARTS",
    "Unit",
    "run_key",
    "run_converge",
    "plot_converge",
    "predict_rate",
    "predict_rates",
    "noisy_targets",
    "reached_manifold",
    "PL_RTOL",
    "pl_ratios",
    "pl_ratio_error_bound",
]

#: The face of the experiment: its configuration, run and figure.
Config = ConvergeConfig
run = run_converge
plot = plot_converge

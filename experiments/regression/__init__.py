r"""``lsa-theory regression``: [ZFB]'s global optimum of gradient flow (R4)/(R5) on in-context
regression, measured: the face of the experiment.

Face: :data:`Config` (:class:`RegressionConfig`, frozen, with ``quick()`` and ``full()``),
:func:`units` (the unit keys: each population flow, then ``"sampled"``, ``"gamma"`` and
``"trained"``), :func:`run_unit`, :func:`run` (:func:`run_regression`: ``regression.json`` /
``regression.npz``, resumed by unit from :data:`UNITS_FILE`) and :func:`plot`
(:func:`plot_regression`, from saved results).

Files: ``experiment.py`` (the configuration, the population flows, the sampled sweep, the
least-squares check of ``Gamma`` or of the data law's optimum, the acceptance criteria and the run),
``laws.py`` (every data law's one-layer optimum against the least-squares minimiser),
``stack.py`` (the trained L-layer stacks read against (R3)), ``plots.py`` (the figure).
"""

from __future__ import annotations

from .experiment import (
    CRITERIA,
    GAMMA_ERROR,
    QUICK_NONLINEAR,
    UNITS_FILE,
    RegressionConfig,
    gamma_check,
    grad_scale,
    population_passed,
    population_run,
    run_regression,
    run_unit,
    sampled_runs,
    target_matrix,
    target_name,
    units,
)
from .laws import (
    CALIBRATION,
    LAW_SETTINGS,
    law_checks,
    run_law_checks,
    wald_calibration,
)
from .plots import plot_regression

__all__ = [
    "Config",
    "units",
    "run_unit",
    "run",
    "plot",
    "RegressionConfig",
    "CRITERIA",
    "GAMMA_ERROR",
    "QUICK_NONLINEAR",
    "UNITS_FILE",
    "run_regression",
    "plot_regression",
    "grad_scale",
    "population_run",
    "population_passed",
    "sampled_runs",
    "gamma_check",
    "target_name",
    "target_matrix",
    "LAW_SETTINGS",
    "CALIBRATION",
    "wald_calibration",
    "law_checks",
    "run_law_checks",
]

#: The face of the experiment: its configuration, run and figure.
Config = RegressionConfig
run = run_regression
plot = plot_regression

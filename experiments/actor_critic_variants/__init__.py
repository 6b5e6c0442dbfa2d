r"""``reproduce``'s part ``actor-critic-variants``: finding (A6), the state-value critic against the
action-value critic, measured: the face of the experiment.

Face: :data:`Config` (frozen, with ``quick()`` and ``full()``), :func:`units` (the exact expected
actor steps, then the closed loop (A5) of both variants), :func:`run_unit`, :func:`run`
(:func:`run_variants`) and :func:`plot` ((A6) has tables, not a figure: the kind
``actor-critic-variants`` of :mod:`lsa_theory.experiments.tables`, from the saved document).

Files: ``experiment.py`` (the measurements and their round-off bounds), ``plots.py`` (the tables).
"""

from __future__ import annotations

from .experiment import (
    Q_STEP_CEILING,
    VARIANTS,
    Config,
    control_config,
    expected_steps,
    run,
    run_unit,
    run_variants,
    step_quantities,
    step_roundoff_bound,
    units,
)
from .plots import plot

__all__ = [
    "Config",
    "units",
    "run_unit",
    "run",
    "plot",
    "control_config",
    "Q_STEP_CEILING",
    "VARIANTS",
    "expected_steps",
    "run_variants",
    "step_quantities",
    "step_roundoff_bound",
]

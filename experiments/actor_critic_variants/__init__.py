r"""``reproduce``'s part ``actor-critic-variants``: finding (A6), the state-value critic against the
action-value critic, measured: the face of the experiment.

Face: :data:`Config` (frozen, with ``quick()`` and ``full()``), :func:`units` (the exact expected
actor steps, then the closed loop (A5) of both variants), :func:`run_unit`, :func:`run`
(:func:`run_variants`) and :func:`plot` ((A6) has tables, not a figure: :func:`markdown_tables`
of the saved document).

Files: ``experiment.py`` (the measurements, their round-off bounds and the tables).
"""

from __future__ import annotations

from .experiment import (
    Q_STEP_CEILING,
    VARIANTS,
    Config,
    control_config,
    expected_steps,
    markdown_tables,
    plot,
    run,
    run_unit,
    run_variants,
    step_quantities,
    step_roundoff_bound,
    units,
)

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
    "markdown_tables",
    "run_variants",
    "step_quantities",
    "step_roundoff_bound",
]

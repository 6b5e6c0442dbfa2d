r"""``lsa-theory depth``: error against depth L and context length, trained stacks against tuned
baselines, with out-of-distribution tests (issue 23, item 4): the face of the experiment.

Face: :data:`Config` (:class:`DepthConfig`, frozen, with ``quick()`` and ``full()``), :func:`units`
(``reg/baselines``, ``reg/L<L>/N<N>/<param>/s<seed>``, ``td/baselines``,
``td/L<L>/<mode>/<kind>/s<seed>``, ``ood``), :func:`run_unit`, :func:`run` (:func:`run_depth`:
``depth.json`` / ``depth.npz``, resumed by unit) and :func:`plot` (:func:`plot_depth`, from saved
results).

Files: ``experiment.py`` (the configuration, the units, the run, the docs tables), ``baselines.py``
(tuned (R3) gradient descent, batch TD(0) = (W3), LSTD, the value error), ``plots.py`` (the figure).
"""

from __future__ import annotations

from .experiment import (
    REG_METHODS,
    TD_DIVERGED,
    TD_MODES,
    UNITS_FILE,
    DepthConfig,
    run_depth,
    run_unit,
    train_td_stack,
    units,
)
from .plots import plot_depth

__all__ = [
    "Config",
    "units",
    "run_unit",
    "run",
    "plot",
    "DepthConfig",
    "REG_METHODS",
    "TD_DIVERGED",
    "TD_MODES",
    "UNITS_FILE",
    "run_depth",
    "plot_depth",
    "train_td_stack",
]

#: The face of the experiment: its configuration, run and figure.
Config = DepthConfig
run = run_depth
plot = plot_depth

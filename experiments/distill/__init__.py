r"""``lsa-theory distill --mode in-context``: Algorithm Distillation's principle in the LSA setting,
(AD0)-(AD3) and (AD5) of docs/theory.md §11, measured: the face of the experiment.

Face: :data:`Config` (:class:`DistillConfig`, frozen, with ``quick()`` and ``full()``), :func:`units`
(``verify``, then one unit per held-out MDP), :func:`run_unit`, :func:`run` (:func:`run_distill`:
``distill.json`` / ``.npz``, resumed by unit) and :func:`plot` (:func:`plot_distill`, from saved
results).

Files: ``experiment.py`` (the configuration, the exact rows' tolerances :data:`CRITERIA`, the
agents, the units and the run), ``plots.py`` (the figure).
"""

from __future__ import annotations

from .experiment import AGENTS, CRITERIA, UNITS_FILE, DistillConfig, run_distill, run_unit, units
from .plots import plot_distill

__all__ = [
    "Config",
    "units",
    "run_unit",
    "run",
    "plot",
    "AGENTS",
    "DistillConfig",
    "CRITERIA",
    "UNITS_FILE",
    "run_distill",
    "plot_distill",
]

#: The face of the experiment: its configuration, run and figure.
Config = DistillConfig
run = run_distill
plot = plot_distill

r"""``lsa-theory autoregressive``: in-context autoregressive learning [Sa], (AR1)-(AR10), measured:
the face of the experiment.

Face: :data:`Config` (:class:`ARConfig`, frozen, with ``quick()`` and ``full()``), :func:`units`
(``verify``, ``gd_class``, ``theta6``, ``dense``, ``curve``), :func:`run_unit`, :func:`run`
(:func:`run_autoregressive`: ``autoregressive.json`` / ``.npz``, resumed by unit) and :func:`plot`
(:func:`plot_autoregressive`, from saved results).

Files: ``experiment.py`` (the configuration, the checks' tolerances :data:`CRITERIA`, the units and
the run), ``plots.py`` (the figure), ``pe.py`` ((AR10) measured: a multi-head linear attention with
learned positional weights on non-augmented tokens, trained).
"""

from __future__ import annotations

from .experiment import CRITERIA, UNITS_FILE, ARConfig, run_autoregressive, run_unit, units
from .plots import plot_autoregressive

__all__ = [
    "Config",
    "units",
    "run_unit",
    "run",
    "plot",
    "ARConfig",
    "CRITERIA",
    "UNITS_FILE",
    "run_autoregressive",
    "plot_autoregressive",
]

#: The face of the experiment: its configuration, run and figure.
Config = ARConfig
run = run_autoregressive
plot = plot_autoregressive

r"""``lsa-theory td-pretrain``: [W]'s multi-task TD pretraining, THEORY §10 (WP1)-(WP6), measured:
the face of the experiment.

Face: :data:`Config` (:class:`TDPConfig`, frozen, with ``quick()`` and ``full()``), :func:`units`
(``invariance``, ``stationary``, ``run-<k>-s<seed>``), :func:`run_unit`, :func:`run`
(:func:`run_td_pretrain`: ``td_pretrain.json``, resumed by unit) and :func:`plot`
(:func:`plot_td_pretrain`, from saved results).

Files: ``experiment.py`` (the configuration, the verdicts' thresholds :data:`CRITERIA`, THEORY's
values :data:`THEORY_WP3`, the units and the run), ``plots.py`` (the figure).
"""

from __future__ import annotations

from .experiment import CRITERIA, THEORY_WP3, UNITS_FILE, TDPConfig, run_td_pretrain, run_unit, units
from .plots import plot_td_pretrain

__all__ = [
    "Config",
    "units",
    "run_unit",
    "run",
    "plot",
    "TDPConfig",
    "CRITERIA",
    "THEORY_WP3",
    "UNITS_FILE",
    "run_td_pretrain",
    "plot_td_pretrain",
]

#: The face of the experiment: its configuration, run and figure.
Config = TDPConfig
run = run_td_pretrain
plot = plot_td_pretrain

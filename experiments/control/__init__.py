r"""``lsa-theory control``: a frozen LSA block deployed as an in-context controller, the closed
loops (S6) and (A5), against its exact teacher and tabular SARSA: the face of the experiment.

Face: :data:`Config` (:class:`ControlConfig`, frozen, with ``quick()`` and ``full()``),
:func:`units` (one :class:`Unit` per (env, algo, seed)), :func:`run_unit`, :func:`run`
(:func:`run_control`: ``control.json`` / ``control.npz``, resumed by unit) and :func:`plot`
(:func:`plot_control`, from saved results). The deployment itself, :func:`deploy`, is the
library call behind every unit, the context-length sweeps
(:mod:`lsa_theory.experiments.context_length`) and pretraining's evaluation.

Files: ``experiment.py`` (the configuration, its units and the run), ``deployment.py`` (the closed
loop of a registered or user-declared :class:`lsa_theory.constructions.ClosedLoopAlgorithm`
driven by frozen weights, and the tabular-SARSA baseline), ``weights.py`` (``"constructed"``,
``"teacher"``, arrays, a list of heads with an attention function, or ``.npz``; the ``"l1"`` /
``"l2"`` forward passes and their round-off bounds), ``roundoff.py`` (the round-off model of
"block = teacher" along a loop), ``result.py`` (:class:`DeployResult` and how two runs are
compared), ``plots.py`` (the figure).
"""

from __future__ import annotations

from .deployment import deploy, deployment_dims, tabular_sarsa
from .experiment import ENV_FIELDS, ControlConfig, Unit, run_control, run_unit, unit_key, units
from .plots import plot_control
from .result import DeployResult, eval_points, first_mismatch, max_w_diff
from .roundoff import block_teacher_check, block_teacher_error_bound
from .weights import (
    ALGOS,
    DENSE_CONSTRUCTION_MAX_D,
    FORWARDS,
    L1_MAX_D,
    BlockWeights,
    constructed_blocks,
    l2_readout,
    loop_update,
    resolve_weights,
)

__all__ = [
    "Config",
    "units",
    "run_unit",
    "run",
    "plot",
    "ControlConfig",
    "Unit",
    "unit_key",
    "ENV_FIELDS",
    "run_control",
    "plot_control",
    "deploy",
    "deployment_dims",
    "tabular_sarsa",
    "DeployResult",
    "eval_points",
    "first_mismatch",
    "max_w_diff",
    "block_teacher_check",
    "block_teacher_error_bound",
    "ALGOS",
    "FORWARDS",
    "L1_MAX_D",
    "DENSE_CONSTRUCTION_MAX_D",
    "BlockWeights",
    "constructed_blocks",
    "resolve_weights",
    "loop_update",
    "l2_readout",
]

#: The face of the experiment: its configuration, run and figure.
Config = ControlConfig
run = run_control
plot = plot_control

"""Training one LSA block by teacher mimicking (Algorithm 1 of [LL] (S6) on the objective (M1)): the
face of the experiment.

Face: :data:`Config` (:class:`TrainConfig`, frozen, with ``quick()`` and ``full()``), :func:`run`
(:func:`train`), :func:`plot` (:func:`plot_training`, from saved results). Training is one long
run, not a list of independent units: its resume is the checkpoint ``checkpoint.pt`` (every
``checkpoint_every`` steps, bit for bit, :mod:`lsa_theory.experiments.training.loop`), so :func:`units`
names that one run and :func:`run_unit` is :func:`run`. The sweeps over seeds, task diversity and
context length (:mod:`lsa_theory.experiments.training.sweeps`) run it several times.

Files: ``config.py`` (the configuration), ``data.py`` (teacher data and its memory use),
``model.py`` (the (L2) forward, the loss (M1), initialisation and metrics), ``loop.py`` (the
training loop and its checkpoints), ``sweeps.py`` (seeds, the (M7) sweep, deployment),
``plots.py`` (figures from saved results), ``experiment.py`` (its one unit).
"""

from __future__ import annotations

from .config import TrainConfig
from .data import TrainData, heldout_data, make_data, teacher_data
from .experiment import run_unit, units
from .loop import CHECKPOINT, TrainResult, lr_at, train
from .model import (
    construction_pv,
    frozen_blocks,
    full_params,
    heldout_error,
    increment,
    init_params,
    structure_metrics,
    training_loss,
)
from .plots import plot_diversity_training, plot_returns_by_k, plot_training, plot_training_seeds
from .sweeps import (
    DIVERSITY_KS,
    QUICK_DIVERSITY_KS,
    deployed_returns_by_k,
    diversity_training_sweep,
    heldout_error_without_cubic,
    run_dir,
    teacher_matching_vs_n,
    train_seeds,
)

__all__ = [
    "Config",
    "units",
    "run_unit",
    "run",
    "plot",
    "TrainConfig",
    "TrainData",
    "TrainResult",
    "CHECKPOINT",
    "make_data",
    "teacher_data",
    "heldout_data",
    "increment",
    "training_loss",
    "init_params",
    "full_params",
    "frozen_blocks",
    "structure_metrics",
    "construction_pv",
    "heldout_error",
    "lr_at",
    "train",
    "train_seeds",
    "heldout_error_without_cubic",
    "DIVERSITY_KS",
    "QUICK_DIVERSITY_KS",
    "diversity_training_sweep",
    "run_dir",
    "deployed_returns_by_k",
    "teacher_matching_vs_n",
    "plot_training",
    "plot_training_seeds",
    "plot_diversity_training",
    "plot_returns_by_k",
]

#: The experiment's configuration (frozen; ``Config.quick()``, ``Config.full()``).
Config = TrainConfig
#: Its run: :func:`train` of ``cfg``, saved to (and resumed from) ``out``.
run = train
#: Its figure, from the saved results in ``out``: :func:`plot_training`.
plot = plot_training

r"""``lsa-theory pretrain``: reinforcement pretraining (P2) of one LSA block against teacher
mimicking (P1), compared on held-out MDPs (P3): the face of the experiment.

Face: :data:`Config` (:class:`PretrainConfig`, frozen, with ``quick()`` and ``full()``),
:func:`units` (the two trained blocks, ``"rl"`` and ``"teacher"``), :func:`run_unit` (one block,
resumed from its checkpoint), :func:`run` (:func:`run_pretrain`: both blocks, then the scoring)
and :func:`plot` (:func:`plot_pretrain`, from saved results).

Files: ``config.py`` (the configuration and its MDPs), ``expected_loop.py`` (the expected-context
loop and the smooth objective (P2)), ``train.py`` (Adam on (P2), checkpoints), ``evaluate.py``
(scoring blocks on held-out MDPs: sampled and smooth deployments, (S3) alignment, update
agreement), ``compare.py`` (the comparison (P3), its units and the (T, k) sweep), ``sampled.py``
((P2) and (P1) of a block with heads and an attention function on sampled loops, and their
comparison), ``plots.py`` (figures from saved results).
"""

from __future__ import annotations

from . import expected_loop, sampled
from .compare import (
    RUN_MODES,
    SWEEP_KS,
    SWEEP_TS,
    UNITS,
    plot_pretrain,
    pretrain_sweep,
    run_pretrain,
    run_unit,
    seeds_document,
    units,
)
from .config import ALGOS, HORIZONS, INITS, PretrainConfig, heldout_batch, init_start, training_batch
from .evaluate import ENTRY_FIELDS, evaluate_blocks, s3_alignment, softmax_deploy, update_agreement
from .plots import plot_blocks, plot_returns, plot_rl_training, plot_seeds, plot_sweep
from .train import CHECKPOINT, RLResult, TrainingDiverged, rl_loss, train_rl

__all__ = [
    "Config",
    "units",
    "run_unit",
    "run",
    "plot",
    "PretrainConfig",
    "ALGOS",
    "HORIZONS",
    "INITS",
    "UNITS",
    "RUN_MODES",
    "CHECKPOINT",
    "training_batch",
    "heldout_batch",
    "init_start",
    "rl_loss",
    "train_rl",
    "RLResult",
    "TrainingDiverged",
    "evaluate_blocks",
    "ENTRY_FIELDS",
    "s3_alignment",
    "softmax_deploy",
    "update_agreement",
    "run_pretrain",
    "plot_pretrain",
    "SWEEP_TS",
    "SWEEP_KS",
    "pretrain_sweep",
    "seeds_document",
    "plot_returns",
    "plot_rl_training",
    "plot_blocks",
    "plot_sweep",
    "plot_seeds",
    "expected_loop",
    "sampled",
]

#: The face of the experiment: its configuration, run and figures.
Config = PretrainConfig
run = run_pretrain
plot = plot_pretrain

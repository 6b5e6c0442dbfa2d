r"""``lsa-theory attention``: multi-head and nonlinear attention in SARSA teacher mimicking: the face
of the experiment.

Face: :data:`Config` (:class:`AttentionConfig`, frozen, with ``quick()`` and ``full()``),
:func:`units` (``construction``, ``<attention>-h<H>-s<seed>``), :func:`run_unit`, :func:`run`
(:func:`run_attention`: ``attention.json`` and ``attention.npz``, resumed by unit) and :func:`plot`
(:func:`plot_attention`, from saved results).

Files: ``model.py`` (raw teacher prompts, the block, training, metrics), ``experiment.py`` (the
configuration, the units and the run), ``plots.py`` (the figure).
"""

from __future__ import annotations

from .experiment import ARRAYS_FILE, UNITS_FILE, AttentionConfig, run_attention, run_unit, units
from .model import (
    attention_entropy,
    block_increment,
    heldout_metrics,
    init_heads,
    operator_cos,
    run_metrics,
    s3_share,
    teacher_prompts,
    train_heads,
)
from .plots import plot_attention

__all__ = [
    "Config",
    "units",
    "run_unit",
    "run",
    "plot",
    "AttentionConfig",
    "UNITS_FILE",
    "ARRAYS_FILE",
    "run_attention",
    "plot_attention",
    "teacher_prompts",
    "block_increment",
    "heldout_metrics",
    "s3_share",
    "operator_cos",
    "attention_entropy",
    "init_heads",
    "train_heads",
    "run_metrics",
]

#: The face of the experiment: its configuration, run and figure.
Config = AttentionConfig
run = run_attention
plot = plot_attention

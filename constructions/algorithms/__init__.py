"""The package's algorithm declarations, one module each (see :mod:`lsa_theory.constructions.registry`).

Importing this package registers every declaration in :data:`lsa_theory.constructions.ALGORITHMS`:

- :mod:`.sarsa` (S3)-(S6), :mod:`.actor_critic` (A1)-(A5) with the state-value critic,
  :mod:`.actor_critic_q` the action-value variant of (A6), :mod:`.td` (W3);
- [W]'s TD family: :mod:`.td_precond` (W4) preconditioned TD(0), any ``C_l`` per layer;
  :mod:`.td_lambda` (W5) TD(lambda) through the eligibility-trace mask; :mod:`.residual_gradient`
  (W6); :mod:`.td_average_reward` (W7) average-reward TD with a running-mean head;
- in-context regression, :mod:`.regression`: (R1) prompt, (R2) one gradient step [vO] and (R3)
  preconditioned gradient descent [Ahn] on the masked block (W2), and the one-layer prediction
  from statistics of (R4) (two declarations, ``gd_regression`` and ``precond_gd_regression``,
  sharing the prompt);
- in-context autoregressive learning, :mod:`.autoregressive`: (AR4)/(AR5), the GD-class layer on
  augmented tokens is one preconditioned gradient step on the sequence's own past (``gd_autoregressive``);
- Algorithm Distillation, :mod:`.distill`: (AD1), K episode-masked (S3) layers read a source's
  learning history and output its parameter after K episodes (``ad_masked_sarsa``).

Each module holds its construction (written once: float64 for float hyperparameters, exact
``dtype=object`` arrays for symbolic ones), a deliberately naive reference loop (explicit Python
loops using only ``+``, ``*``, ``/``, so it runs on symbols too), its prompt layout and a
module-level ``ALGORITHM`` declaration; every check of a claim (numeric, exact, property sweep)
is derived from the declaration by :mod:`lsa_theory.constructions.derive`. The public names are re-exported
by :mod:`constructions`.
"""

from __future__ import annotations

from ..registry import register
from . import (
    actor_critic,
    actor_critic_q,
    autoregressive,
    distill,
    regression,
    residual_gradient,
    sarsa,
    td,
    td_average_reward,
    td_lambda,
    td_precond,
)

MODULES = (
    sarsa,
    actor_critic,
    actor_critic_q,
    td,
    td_precond,
    td_lambda,
    residual_gradient,
    td_average_reward,
)

for _module in MODULES:
    register(_module.ALGORITHM)
register(regression.GD_ALGORITHM)
register(regression.PRECOND_ALGORITHM)
register(autoregressive.ALGORITHM)
register(distill.ALGORITHM)

"""The package's algorithm declarations, one module each (see :mod:`constructions.registry`).

Importing this package registers every declaration in :data:`constructions.ALGORITHMS`.
"""

from __future__ import annotations

from ..registry import register
from . import actor_critic, actor_critic_q, sarsa, td

MODULES = (sarsa, actor_critic, actor_critic_q, td)

for _module in MODULES:
    register(_module.ALGORITHM)

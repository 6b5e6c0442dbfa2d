r"""The action-value-critic variant of the actor-critic: finding (A6) of docs/theory.md.

Identical to :mod:`lsa_theory.constructions.algorithms.actor_critic` but the critic is
:math:`Q_w(s, a) = w^\top\phi(s, a)` on state-action features, so the context rows are those of
(H) plus the scores. The identity (A4) still holds, but at the critic's fixed point
``Q_w = Q^pi`` the expected TD error given ``(s_i, a_i)`` is zero, so the expected actor step
vanishes there: the variant is kept to report (A6), not as the default.
"""

from __future__ import annotations

from ..closed_loop import Dims
from .actor_critic import ActorCritic


class ActorCriticQ(ActorCritic):
    """(A3)/(A4) with the action-value critic of (A6)."""

    name = "actor_critic_q"
    claim = "(A6)"
    statement = "(c P*, V*/c) of (A3) = batch actor-critic (A2), action-value critic"
    critic = "action"

    def sizes(self, quick):
        return (
            {"S": 3, "A": 3, "d": 9, "d_pi": 9, "n": 20}
            if quick
            else {"S": 9, "A": 4, "d": 36, "d_pi": 36, "n": 20}
        )

    def dims(self, S, A, d=None, d_pi=None):
        """Action-value critic: ``d = S A``, actor ``d_pi = d`` by default."""
        d = S * A if d is None else d
        return Dims(d, d if d_pi is None else d_pi)


ALGORITHM = ActorCriticQ()

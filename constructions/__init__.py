"""Explicit LSA constructions of THEORY.md, numeric and symbolic, with their verification.

- :func:`sarsa` (S3)/(S4), :func:`actor_critic` (A3)/(A4), :func:`td` (W3): float64 numpy ``(P, V)``
  / ``(P, Q)``;
- ``*_symbolic``: the same as sympy matrices with symbolic ``alpha``, ``beta``, ``c``;
- ``prove_*``: polynomial identities checked by ``expand(lhs - rhs) == 0``;
- ``verify_*``: residuals of one numeric instance against the naive loops of
  :mod:`lsa_theory.reference`; :func:`run_claims` builds the ``lsa-theory verify`` table;
- :mod:`constructions.algorithms`: one module per in-context algorithm with all of the above in one
  place (:mod:`constructions.algorithms.regression`: (R1)-(R3) and the one-layer prediction of (R4)).
"""

from .numeric import actor_critic, sarsa, td
from .symbolic import (
    SymbolicProof,
    actor_critic_symbolic,
    prove_actor_critic,
    prove_lemma_c1,
    prove_sarsa,
    prove_td,
    sarsa_symbolic,
    td_symbolic,
)
from .verify import (
    READOUT_TOL,
    Residuals,
    Row,
    relative_residual,
    run_claims,
    verify_actor_critic,
    verify_lemma_c1,
    verify_sarsa,
    verify_td,
)

__all__ = [
    "READOUT_TOL",
    "Residuals",
    "Row",
    "SymbolicProof",
    "actor_critic",
    "actor_critic_symbolic",
    "prove_actor_critic",
    "prove_lemma_c1",
    "prove_sarsa",
    "prove_td",
    "relative_residual",
    "run_claims",
    "sarsa",
    "sarsa_symbolic",
    "td",
    "td_symbolic",
    "verify_actor_critic",
    "verify_lemma_c1",
    "verify_sarsa",
    "verify_td",
]

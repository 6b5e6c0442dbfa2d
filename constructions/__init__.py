"""Explicit LSA constructions of docs/theory.md, numeric and symbolic, with their verification.

- :func:`sarsa` (S3)/(S4), :func:`actor_critic` (A3)/(A4), :func:`td` (W3), and with ``C`` (W4):
  float64 numpy ``(P, V)`` / ``(P, Q)``;
- [W]'s TD family, one module each in :mod:`constructions.algorithms`: :func:`td_lambda` (W5),
  :func:`residual_gradient` (W6), :func:`td_average_reward` (W7), with their naive loops,
  ``verify_*`` and fixed-size ``prove_*``;
- ``*_symbolic``: the same as sympy matrices with symbolic ``alpha``, ``beta``, ``c``;
- ``prove_*``: polynomial identities checked by ``expand(lhs - rhs) == 0``;
- :mod:`constructions.symbolic_sizes`: the same identities for every ``d, n`` (block algebra with
  symbolic sizes, normal form of :mod:`constructions.matrix_words`), multi-layer claims by induction;
  (W7)'s two-head layer in :mod:`constructions.symbolic_sizes_w7`, (R2)/(R3) in
  :mod:`constructions.symbolic_sizes_regression`; :mod:`constructions.proof_link` evaluates every
  proof expression against the numeric forward pass and claims an all-sizes row for a declaration
  only once its construction is the proved block form (:mod:`constructions.proof_forms`);
- ``verify_*``: residuals of one numeric instance against the naive loops of
  :mod:`lsa_theory.reference`; :func:`run_claims` builds the ``lsa-theory verify`` table;
- :mod:`constructions.algorithms`: one module per in-context algorithm with all of the above in one
  place (:mod:`constructions.algorithms.regression`: (R1)-(R3) and the one-layer prediction of (R4)).
"""

from . import algorithms as _algorithms  # noqa: F401  (registers the package's declarations)
from .algorithms.residual_gradient import (
    naive_residual_gradient,
    prove_residual_gradient,
    residual_gradient,
    residual_gradient_symbolic,
    verify_residual_gradient,
)
from .algorithms.td_average_reward import (
    average_reward_prompt,
    average_reward_stack,
    naive_average_reward_td,
    prove_td_average_reward,
    running_mean_mask,
    td_average_reward,
    td_average_reward_symbolic,
    verify_td_average_reward,
)
from .algorithms.td_lambda import (
    naive_batch_td_lambda,
    prove_td_lambda,
    td_lambda,
    td_lambda_symbolic,
    verify_td_lambda,
)
from .algorithms.td_precond import (
    naive_precond_td,
    prove_td_precond,
    td_precond,
    td_precond_symbolic,
    verify_td_precond,
)
from .closed_loop import ClosedLoopAlgorithm, Dims, Draws, load_closed_loop_module
from .numeric import actor_critic, sarsa, td
from .registry import ALGORITHMS, Algorithm, Registry, check_declaration, load_module, register
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
    "ALGORITHMS",
    "Algorithm",
    "ClosedLoopAlgorithm",
    "Dims",
    "Draws",
    "Registry",
    "load_module",
    "check_declaration",
    "load_closed_loop_module",
    "register",
    "READOUT_TOL",
    "Residuals",
    "Row",
    "SymbolicProof",
    "actor_critic",
    "actor_critic_symbolic",
    "average_reward_prompt",
    "average_reward_stack",
    "naive_average_reward_td",
    "naive_batch_td_lambda",
    "naive_precond_td",
    "naive_residual_gradient",
    "prove_actor_critic",
    "prove_lemma_c1",
    "prove_residual_gradient",
    "prove_sarsa",
    "prove_td",
    "prove_td_average_reward",
    "prove_td_lambda",
    "prove_td_precond",
    "relative_residual",
    "residual_gradient",
    "residual_gradient_symbolic",
    "run_claims",
    "running_mean_mask",
    "sarsa",
    "sarsa_symbolic",
    "td",
    "td_average_reward",
    "td_average_reward_symbolic",
    "td_lambda",
    "td_lambda_symbolic",
    "td_precond",
    "td_precond_symbolic",
    "td_symbolic",
    "verify_actor_critic",
    "verify_lemma_c1",
    "verify_residual_gradient",
    "verify_sarsa",
    "verify_td",
    "verify_td_average_reward",
    "verify_td_lambda",
    "verify_td_precond",
]

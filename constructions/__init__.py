"""Explicit LSA constructions of docs/theory.md with their verification, one engine per claim.

- :func:`sarsa` (S3)/(S4), :func:`actor_critic` (A3)/(A4), :func:`td` (W3), and with ``C`` (W4):
  float64 numpy ``(P, V)`` / ``(P, Q)``, or ``dtype=object`` arrays of exact entries when the
  hyperparameters are sympy symbols (one construction for both backends);
- [W]'s TD family, one module each in :mod:`lsa_theory.constructions.algorithms`: :func:`td_lambda` (W5),
  :func:`residual_gradient` (W6), :func:`td_average_reward` (W7), with their naive loops;
- :mod:`lsa_theory.constructions.registry`: one declaration per in-context algorithm (:data:`ALGORITHMS`),
  from which :mod:`lsa_theory.constructions.derive` derives every level: the numeric identity against the
  naive loop, the invariants, the property sweeps and the fixed-size exact proof
  (:func:`lsa_theory.constructions.derive.prove`, in the ring of :mod:`lsa_theory.constructions.symbolic`);
- :mod:`lsa_theory.constructions.symbolic_sizes`: the same identities for every ``d, n`` (block algebra with
  symbolic sizes, normal form of :mod:`lsa_theory.constructions.matrix_words`), multi-layer claims by
  induction;
  (W7)'s two-head layer in :mod:`lsa_theory.constructions.symbolic_sizes_w7`, (R2)/(R3) in
  :mod:`lsa_theory.constructions.symbolic_sizes_regression`; :mod:`lsa_theory.constructions.proof_link`
  evaluates every
  proof expression against the numeric forward pass and claims an all-sizes row for a declaration
  only once its construction is the proved block form (:mod:`lsa_theory.constructions.proof_forms`);
- :func:`run_claims` builds the ``lsa-theory verify`` table (every declaration's rows, then the
  (L1)/(L2)/(R4) block rows).
"""

from . import algorithms as _algorithms  # noqa: F401  (registers the package's declarations)
from .algorithms.residual_gradient import naive_residual_gradient, residual_gradient
from .algorithms.td_average_reward import (
    average_reward_prompt,
    average_reward_stack,
    naive_average_reward_td,
    td_average_reward,
)
from .algorithms.td_lambda import naive_batch_td_lambda, td_lambda
from .algorithms.td_precond import naive_precond_td, td_precond
from .closed_loop import ClosedLoopAlgorithm, Dims, Draws, closed_loop_algorithm, load_closed_loop_module
from .numeric import actor_critic, is_exact, running_mean_mask, sarsa, td
from .registry import ALGORITHMS, Algorithm, Registry, check_declaration, load_module, register
from .symbolic import SymbolicProof
from .verify import READOUT_TOL, Residuals, Row, relative_residual, run_claims

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
    "closed_loop_algorithm",
    "register",
    "READOUT_TOL",
    "Residuals",
    "Row",
    "SymbolicProof",
    "actor_critic",
    "is_exact",
    "average_reward_prompt",
    "average_reward_stack",
    "naive_average_reward_td",
    "naive_batch_td_lambda",
    "naive_precond_td",
    "naive_residual_gradient",
    "relative_residual",
    "residual_gradient",
    "run_claims",
    "running_mean_mask",
    "sarsa",
    "td",
    "td_average_reward",
    "td_lambda",
    "td_precond",
]

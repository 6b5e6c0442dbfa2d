"""lsa-theory core: tabular MDPs, features, rollouts, prompts, LSA blocks and reference algorithms.

Notation and equation labels follow ``docs/theory.md``. The public API is re-exported here; the
subpackages ``lsa_theory.constructions``, ``.dynamics``, ``.experiments`` and ``.cli`` build on it
(imports only go core -> outward).
"""

from .algorithms import actor_critic_update, sarsa_update, sarsa_update_error_bound, td_errors, td_update
from .attention import ATTENTIONS, attention_layer, attention_stack
from .features import FEATURE_KINDS, random_features, random_state_features
from .loop_driver import (
    actor_critic_loop,
    actor_critic_loop_batched,
    sarsa_loop,
    sarsa_loop_batched,
)
from .lsa import (
    causal_lsa,
    causal_weights,
    lsa_block,
    lsa_stack,
    masked_lsa,
    masked_lsa_stack,
    readout,
    sufficient_statistics,
    tf_from_statistics,
    trace_mask,
)
from .mdp import (
    OptimalSolution,
    TabularMDP,
    check_policy,
    expected_return,
    normalized_return,
    optimal,
    q_pi,
    random_mdp,
    uniform_policy,
    v_pi,
)
from .policies import epsilon_greedy, greedy, q_values, score, softmax_policy
from .prompts import (
    Layout,
    actor_critic_prompt,
    context_columns,
    sarsa_dims,
    sarsa_prompt,
    td_prompt,
)
from .reference import naive_batch_actor_critic, naive_batch_sarsa, naive_batch_td
from .rollout import (
    LoopResult,
    Trajectory,
    actor_critic_columns,
    actor_critic_context,
    rollout,
    sarsa_columns,
    sarsa_context,
    td_columns,
)
from .rollout_batched import loop_draws

__version__ = "0.1.0"

__all__ = [
    "ATTENTIONS",
    "FEATURE_KINDS",
    "Layout",
    "LoopResult",
    "OptimalSolution",
    "TabularMDP",
    "Trajectory",
    "actor_critic_columns",
    "actor_critic_context",
    "actor_critic_loop",
    "actor_critic_loop_batched",
    "actor_critic_prompt",
    "actor_critic_update",
    "attention_layer",
    "attention_stack",
    "causal_lsa",
    "causal_weights",
    "check_policy",
    "context_columns",
    "epsilon_greedy",
    "expected_return",
    "greedy",
    "loop_draws",
    "lsa_block",
    "lsa_stack",
    "masked_lsa",
    "masked_lsa_stack",
    "naive_batch_actor_critic",
    "naive_batch_sarsa",
    "naive_batch_td",
    "normalized_return",
    "optimal",
    "q_pi",
    "q_values",
    "random_features",
    "random_mdp",
    "random_state_features",
    "readout",
    "rollout",
    "sarsa_columns",
    "sarsa_context",
    "sarsa_dims",
    "sarsa_loop",
    "sarsa_loop_batched",
    "sarsa_prompt",
    "sarsa_update",
    "sarsa_update_error_bound",
    "sufficient_statistics",
    "tf_from_statistics",
    "trace_mask",
    "score",
    "softmax_policy",
    "td_columns",
    "td_errors",
    "td_prompt",
    "td_update",
    "uniform_policy",
    "v_pi",
]

import pathlib as _pathlib  # noqa: E402

# From a source checkout the subpackages are the folders beside this one (pyproject.toml's
# package-dir installs them inside lsa_theory/): they are found there too, so a checkout put on
# PYTHONPATH is used whole, never its core with another checkout's installed subpackages.
_root = _pathlib.Path(__file__).resolve().parent.parent
if (_root / "pyproject.toml").is_file() and (_root / "constructions" / "__init__.py").is_file():
    __path__.append(str(_root))
del _pathlib, _root

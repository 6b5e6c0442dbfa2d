"""Input fuzz of the public API (issue 13): bad inputs raise a ValueError naming the argument,
good variants work and return the promised type, and no input is mutated or frozen.

Every public function of ``lsa_theory`` (and ``lsa_theory.constructions.sarsa``, ``actor_critic``, ``td``)
has a :class:`Spec`: a good call (numpy float64 arguments), which arguments are arrays, whether
it is an *array function* (torch in -> torch out, differentiable; the first array argument sets
the kind) and explicit bad values (shapes, ranges, types). Each array argument is then fuzzed
automatically with complex, object, bool and string dtypes, ``None``, NaN, inf, a 0-d scalar,
a complex torch tensor and (for fixed-ndim arguments) one more or one fewer dimension; each
scalar argument with NaN/inf/bool/None/string/complex/1-element arrays. A bad case passes only
if it raises ``ValueError`` whose message names the argument before its first ``": "``.

Good variants of every spec: nested lists, float32, torch float64 (without and with
``requires_grad``, all arrays at once and one argument at a time). Array functions must return
torch for torch input (with a graph when an input requires grad) and refuse a torch argument
next to a numpy prompt; the other functions read torch values (detached) and return numpy. After
every good call the caller's numpy arrays equal their copies and are still writable.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import lsa_theory as lt
from lsa_theory import constructions

torch = pytest.importorskip("torch")

S, A, d, d_pi, n, k = 2, 2, 3, 2, 4, 2
NAN, INF = float("nan"), float("inf")


class Fresh:
    """An argument rebuilt for every call (generators, so that every call sees the same draws)."""

    def __init__(self, make: Callable[[], Any]):
        self.make = make


def _rng(seed: int = 0) -> Fresh:
    return Fresh(lambda: np.random.default_rng(seed))


def _negative_kernel() -> np.ndarray:
    P = np.array(P0, copy=True)
    P[0, 0] = [1.5, -0.5]  # rows still sum to 1
    return P


_g = np.random.default_rng(1)
MDP = lt.random_mdp(S, A, 0.5, _g)
P0, R0, MU0 = np.array(MDP.P), np.array(MDP.r), np.array(MDP.mu0)
PI = _g.dirichlet(np.ones(A), size=S)
PHI = _g.uniform(-1, 1, (S, A, d))
PHI_PI = _g.uniform(-1, 1, (S, A, d_pi))
PHI_S = _g.uniform(-1, 1, (S, d))
W = _g.uniform(-1, 1, d)
LAM = _g.uniform(-1, 1, d_pi)
Q = _g.standard_normal((S, A))
F, FN, RW = _g.uniform(-1, 1, (n, d)), _g.uniform(-1, 1, (n, d)), _g.uniform(-1, 1, n)
X = lt.context_columns(F, FN, RW, 0.5)  # (2d+1, n)
G = _g.uniform(-1, 1, (d_pi, n))
LAYOUT = lt.Layout(d)
DH = LAYOUT.D
H = lt.sarsa_prompt(X, W)
PM, VM = (0.1 * _g.standard_normal((DH, DH)) for _ in range(2))
DZ = 2 * d + 1
Z = lt.td_prompt(X, PHI_S[0])
PZ, QZ = (0.1 * _g.standard_normal((DZ, DZ)) for _ in range(2))
SIGMA = lt.sufficient_statistics(X)
WT = np.concatenate([[1.0], W])
TRAJ = lt.rollout(MDP, PI, n, np.random.default_rng(2))
PK = np.stack([P0] * k)
RK, MUK = np.stack([R0] * k), np.stack([MU0] * k)
WK, LAMK = np.stack([W] * k), np.stack([LAM] * k)
U = np.random.default_rng(3).random((k, lt.loop_draws(n, 2)))


def _sarsa_teacher(X, w):
    return lt.sarsa_update(X, w, 0.2)


def _ac_teacher(X, g, w, lam):
    return lt.actor_critic_update(X, g, w, lam, 0.2, 0.1)


@dataclasses.dataclass
class Spec:
    """A public function, a good call and what to fuzz."""

    name: str
    fn: Callable
    args: dict[str, Any]
    arrays: dict[str, str] = dataclasses.field(default_factory=dict)  # name -> "fixed" | "batched"
    reals: tuple[str, ...] = ()  # real scalar arguments
    ints: dict[str, int] = dataclasses.field(default_factory=dict)  # int argument -> its minimum
    #: (argument, bad value) or (argument, bad value, the argument the message must name)
    bad: list[tuple] = dataclasses.field(default_factory=list)
    none_ok: tuple[str, ...] = ()  # arguments for which None is a valid value
    objects_ok: bool = False  # object arrays are valid (the naive loops run on sympy objects)
    torch_out: bool = False  # an array function: torch in -> torch out (differentiable)
    float32: bool = True  # float32 arrays are accepted (values close to the float64 call)
    lists: bool = True  # nested lists are accepted
    #: array arguments held constant in the gradient check (structural data, e.g. a mask whose
    #: query rows must stay zero: finite differences there would make it invalid input)
    no_grad: tuple[str, ...] = ()


def _call(spec: Spec, **over: Any) -> Any:
    args = {**spec.args, **over}
    return spec.fn(**{key: v.make() if isinstance(v, Fresh) else v for key, v in args.items()})


SPECS = [
    # --- MDPs and oracles (numpy out) -----------------------------------------------------------
    Spec(
        "TabularMDP",
        lt.TabularMDP,
        {"P": P0, "r": R0, "gamma": 0.5, "mu0": MU0, "reward_noise": 0.0},
        arrays={"P": "fixed", "r": "fixed", "mu0": "fixed"},
        reals=("gamma", "reward_noise"),
        bad=[
            ("P", P0[:, :, :1]),
            ("P", P0 * 1.1),
            ("P", _negative_kernel()),
            ("P", np.zeros((0, 1, 0))),
            ("r", np.zeros((S, A + 1))),
            ("r", np.zeros((A, S + 1))),
            ("mu0", np.ones(S + 1) / (S + 1)),
            ("mu0", MU0 * 0.9),
            ("gamma", 1.0),
            ("gamma", -0.1),
            ("reward_noise", -1.0),
        ],
    ),
    Spec(
        "random_mdp",
        lt.random_mdp,
        {"n_states": S, "n_actions": A, "gamma": 0.5, "rng": _rng(), "kind": "dirichlet"},
        reals=("gamma",),
        ints={"n_states": 1, "n_actions": 1},
        bad=[("rng", None), ("rng", 0), ("kind", "nope"), ("gamma", 1.0)],
        none_ok=("branching",),
    ),
    Spec(
        "random_mdp-garnet",
        lt.random_mdp,
        {"n_states": S, "n_actions": A, "gamma": 0.5, "rng": _rng(), "kind": "garnet", "branching": 1},
        ints={"branching": 1},
        bad=[("branching", S + 1), ("reward", "x")],
        none_ok=("branching",),
    ),
    Spec(
        "check_policy",
        lt.check_policy,
        {"mdp": MDP, "pi": PI},
        arrays={"pi": "fixed"},
        bad=[("pi", PI[:, :1]), ("pi", PI * 2), ("mdp", None), ("mdp", P0)],
    ),
    *[
        Spec(
            f.__name__,
            f,
            {"mdp": MDP, "pi": PI},
            arrays={"pi": "fixed"},
            bad=[("pi", PI[:1]), ("pi", PI.T[::-1] + 1), ("mdp", None)],
        )
        for f in (lt.q_pi, lt.v_pi, lt.expected_return, lt.normalized_return)
    ],
    Spec("uniform_policy", lt.uniform_policy, {"mdp": MDP}, bad=[("mdp", None), ("mdp", "mdp")]),
    Spec("optimal", lt.optimal, {"mdp": MDP}, ints={"max_iter": 1}, bad=[("mdp", None)]),
    # --- features and policies (numpy out) ----------------------------------------------------
    Spec(
        "random_features",
        lt.random_features,
        {"n_states": S, "n_actions": A, "d": d, "rng": _rng()},
        ints={"n_states": 1, "n_actions": 1, "d": 1},
        bad=[("rng", None), ("kind", "x")],
        none_ok=("d",),
    ),
    Spec(
        "random_state_features",
        lt.random_state_features,
        {"n_states": S, "d": d, "rng": _rng()},
        ints={"n_states": 1, "d": 1},
        bad=[("rng", 1)],
    ),
    Spec(
        "q_values",
        lt.q_values,
        {"phi": PHI, "w": W},
        arrays={"phi": "fixed", "w": "fixed"},
        bad=[("w", W[:-1]), ("phi", PHI[..., :0])],
    ),
    Spec("greedy", lt.greedy, {"Q": Q}, arrays={"Q": "fixed"}),
    Spec(
        "epsilon_greedy",
        lt.epsilon_greedy,
        {"Q": Q, "epsilon": 0.1},
        arrays={"Q": "fixed"},
        reals=("epsilon",),
        bad=[("epsilon", 1.5), ("epsilon", -0.1)],
    ),
    *[
        Spec(
            f.__name__,
            f,
            {"phi_pi": PHI_PI, "lam": LAM},
            arrays={"phi_pi": "fixed", "lam": "fixed"},
            bad=[("lam", LAM[:-1]), ("phi_pi", PHI_PI[..., :0])],
        )
        for f in (lt.softmax_policy, lt.score)
    ],
    # --- prompts (array functions) -----------------------------------------------------------
    Spec(
        "context_columns",
        lt.context_columns,
        {"phi": F, "phi_next": FN, "r": RW, "gamma": 0.5},
        arrays={"phi": "batched", "phi_next": "batched", "r": "batched"},
        reals=("gamma",),
        bad=[("phi_next", FN[:-1]), ("r", RW[:-1]), ("gamma", 1.0), ("phi", F[:0]), ("phi", F[:, :0])],
        torch_out=True,
    ),
    Spec(
        "sarsa_prompt",
        lt.sarsa_prompt,
        {"X": X, "w": W},
        arrays={"X": "batched", "w": "batched"},
        bad=[("X", X[:-1]), ("X", X[:, :0]), ("w", W[:-1]), ("w", np.stack([W] * 3)[:2, None][:, :, :-1])],
        torch_out=True,
    ),
    Spec(
        "actor_critic_prompt",
        lt.actor_critic_prompt,
        {"X": X, "g": G, "w": W, "lam": LAM},
        arrays={"X": "batched", "g": "batched", "w": "batched", "lam": "batched"},
        bad=[("g", G[:, :-1]), ("g", G[:0]), ("lam", LAM[:-1]), ("w", W[:-1])],
        torch_out=True,
    ),
    Spec(
        "td_prompt",
        lt.td_prompt,
        {"X": X, "phi_query": PHI_S[0]},
        arrays={"X": "batched", "phi_query": "batched"},
        bad=[("phi_query", PHI_S[0, :-1]), ("n_queries", 0), ("n_queries", 2, "phi_query")],
        torch_out=True,
    ),
    Spec("sarsa_dims", lt.sarsa_dims, {"D": DH}, ints={"D": 1}, bad=[("D", DH + 1), ("D", 2)]),
    Spec("Layout", lt.Layout, {"d": d, "d_pi": 0}, ints={"d": 1, "d_pi": 0}),
    # --- LSA blocks and (L2) (array functions) -----------------------------------------------
    Spec(
        "lsa_block",
        lt.lsa_block,
        {"H": H, "P": PM, "V": VM},
        arrays={"H": "batched", "P": "batched", "V": "batched"},
        bad=[("H", H[:, :1]), ("P", PM[:-1]), ("V", VM[:, :-1])],
        torch_out=True,
    ),
    Spec(
        "lsa_stack",
        lt.lsa_stack,
        {"H": H, "layers": [(PM, VM), (VM, PM)]},
        arrays={"H": "batched"},
        bad=[
            ("layers", []),
            ("layers", None),
            ("layers", [(PM,)]),
            ("layers", [PM]),
            ("layers", [(PM[:-1], VM)]),
        ],
        torch_out=True,
    ),
    Spec(
        "masked_lsa",
        lt.masked_lsa,
        {"Z": Z, "P": PZ, "Q": QZ},
        arrays={"Z": "batched", "P": "batched", "Q": "batched"},
        ints={"n_queries": 1},
        bad=[("Z", Z[:, :1]), ("P", PZ[1:]), ("n_queries", n + 1, "Z")],
        torch_out=True,
    ),
    Spec(
        "masked_lsa-mask",
        lt.masked_lsa,
        {"Z": Z, "P": PZ, "Q": QZ, "mask": lt.trace_mask(n, 0.5)},
        arrays={"Z": "batched", "P": "batched", "Q": "batched", "mask": "batched"},
        bad=[("mask", np.ones((n + 1, n + 1))), ("mask", np.eye(n)), ("mask", lt.trace_mask(n + 1, 0.5))],
        none_ok=("mask",),
        torch_out=True,
        no_grad=("mask",),
    ),
    Spec(
        "causal_lsa",
        lt.causal_lsa,
        {"E": Z, "P": PZ, "Q": QZ},
        arrays={"E": "batched", "P": "batched", "Q": "batched"},
        bad=[("E", Z[:, :0]), ("P", PZ[1:]), ("Q", QZ[:, 1:])],
        torch_out=True,
    ),
    Spec("causal_weights", lt.causal_weights, {"T": n}, ints={"T": 1}),
    Spec(
        "trace_mask",
        lt.trace_mask,
        {"n": n, "lam": 0.5},
        reals=("lam",),
        ints={"n": 1, "n_queries": 1},
        bad=[("lam", -0.1), ("lam", 1.5)],
    ),
    Spec(
        "masked_lsa_stack",
        lt.masked_lsa_stack,
        {"Z": Z, "layers": [(PZ, QZ)]},
        arrays={"Z": "batched"},
        bad=[("layers", ()), ("layers", 3), ("layers", [(PZ, QZ, PZ)])],
        torch_out=True,
    ),
    Spec(
        "attention_layer",
        lt.attention_layer,
        {"Z": Z, "heads": [(PZ, QZ), (QZ, PZ)], "attention": "softmax"},
        arrays={"Z": "batched"},
        ints={"n_queries": 0},
        bad=[
            ("heads", []),
            ("heads", 3),
            ("heads", [(PZ,)]),
            ("heads", [(PZ, QZ[1:])]),
            ("attention", "gelu"),
            ("attention", None),
            ("mask", np.eye(n)),
            ("mask", np.zeros((n + 1, n + 1))),
            ("n_queries", n + 1, "Z"),
        ],
        torch_out=True,
    ),
    Spec(
        "attention_stack",
        lt.attention_stack,
        {"Z": Z, "layers": [[(PZ, QZ)], [(QZ, PZ)]], "attention": "relu"},
        arrays={"Z": "batched"},
        bad=[("layers", []), ("layers", 3), ("layers", [[(PZ, QZ)], []]), ("attention", "GELU")],
        torch_out=True,
    ),
    Spec(
        "readout",
        lt.readout,
        {"H_out": H, "k": d},
        arrays={"H_out": "batched"},
        ints={"k": 1},
        bad=[("H_out", H[0]), ("k", DH + 1)],
        torch_out=True,
    ),
    Spec(
        "sufficient_statistics",
        lt.sufficient_statistics,
        {"X": X},
        arrays={"X": "batched"},
        bad=[("X", X[:, :0]), ("X", X[0])],
        torch_out=True,
    ),
    Spec(
        "tf_from_statistics",
        lt.tf_from_statistics,
        {"Sigma": SIGMA, "wt": WT, "P": PM, "V": VM, "n": n, "layout": LAYOUT},
        arrays={"Sigma": "batched", "wt": "batched", "P": "batched", "V": "batched"},
        ints={"n": 1},
        bad=[
            ("Sigma", SIGMA[:-1, :-1]),
            ("Sigma", SIGMA[0]),
            ("wt", WT[:-1]),
            ("P", PM[:-1, :-1]),
            ("V", VM[:-1]),
            ("layout", None),
            ("layout", d),
            ("layout", lt.Layout(d + 1), "Sigma"),
        ],
        torch_out=True,
    ),
    # --- update rules (array functions) -------------------------------------------------------
    Spec(
        "td_errors",
        lt.td_errors,
        {"X": X, "w": W},
        arrays={"X": "batched", "w": "batched"},
        bad=[("X", X[:-1]), ("X", X[:, :0]), ("w", W[:-1]), ("X", X[:1])],
        torch_out=True,
    ),
    Spec(
        "sarsa_update",
        lt.sarsa_update,
        {"X": X, "w": W, "alpha": 0.2},
        arrays={"X": "batched", "w": "batched"},
        reals=("alpha",),
        bad=[("X", X[:-1]), ("w", W[:-1])],
        torch_out=True,
    ),
    Spec(
        "sarsa_update_error_bound",
        lt.sarsa_update_error_bound,
        {"X": X, "w": W, "alpha": 0.2, "g": G, "lam": LAM, "beta": 0.1},
        arrays={"X": "fixed", "w": "fixed", "g": "fixed", "lam": "fixed"},
        reals=("alpha", "beta"),
        bad=[("X", X[:1]), ("X", X[:, :0]), ("g", G[:, :-1]), ("g", G[0]), ("lam", None, "g, lam")],
    ),
    Spec(
        "actor_critic_update",
        lt.actor_critic_update,
        {"X": X, "g": G, "w": W, "lam": LAM, "alpha": 0.2, "beta": 0.1},
        arrays={"X": "batched", "g": "batched", "w": "batched", "lam": "batched"},
        reals=("alpha", "beta"),
        bad=[("g", G[:, :-1]), ("g", G[0]), ("lam", LAM[:-1]), ("w", W[:-1])],
        torch_out=True,
    ),
    Spec(
        "td_update",
        lt.td_update,
        {"X": X, "w": W, "alpha": 0.2, "n_iter": 2},
        arrays={"X": "batched", "w": "batched"},
        reals=("alpha",),
        ints={"n_iter": 1},
        bad=[("w", W[:-1])],
        torch_out=True,
    ),
    # --- naive reference loops (sequences in, numpy out) ------------------------------------------
    Spec(
        "naive_batch_sarsa",
        lt.naive_batch_sarsa,
        {"phi": F, "phi_next": FN, "r": RW, "w": W, "gamma": 0.5, "alpha": 0.2},
        arrays={"phi": "fixed", "phi_next": "fixed", "r": "fixed", "w": "fixed"},
        reals=("gamma", "alpha"),
        ints={"n_iter": 1},
        bad=[
            ("gamma", 1.0),
            ("gamma", 5.0),
            ("phi", F[:-1]),
            ("phi_next", FN[:, :-1]),
            ("w", W[:-1], "phi"),  # reported on the first row that does not match w
            ("r", []),
        ],
        objects_ok=True,
    ),
    Spec(
        "naive_batch_actor_critic",
        lt.naive_batch_actor_critic,
        {
            "phi": F,
            "phi_next": FN,
            "r": RW,
            "g": G.T,
            "w": W,
            "lam": LAM,
            "gamma": 0.5,
            "alpha": 0.2,
            "beta": 0.1,
        },
        arrays={
            "phi": "fixed",
            "phi_next": "fixed",
            "r": "fixed",
            "g": "fixed",
            "w": "fixed",
            "lam": "fixed",
        },
        reals=("gamma", "alpha", "beta"),
        bad=[("gamma", 1.0), ("g", G), ("lam", LAM[:-1], "g")],
        objects_ok=True,
    ),
    Spec(
        "naive_batch_td",
        lt.naive_batch_td,
        {"phi": F, "phi_next": FN, "r": RW, "gamma": 0.5, "alpha": 0.2, "w0": W},
        arrays={"phi": "fixed", "phi_next": "fixed", "r": "fixed", "w0": "fixed"},
        reals=("gamma", "alpha"),
        ints={"n_iter": 1},
        bad=[("gamma", 1.0), ("phi", F[:, :0])],
        objects_ok=True,
        none_ok=("w0",),
    ),
    # --- rollouts and closed loops (numpy out) -------------------------------------------------
    Spec(
        "rollout",
        lt.rollout,
        {"mdp": MDP, "pi": PI, "n": n, "rng": _rng(), "s0": 0},
        arrays={"pi": "fixed"},
        ints={"n": 1, "s0": 0},
        bad=[("s0", S), ("rng", None), ("mdp", None), ("pi", PI[:1])],
        none_ok=("s0",),
    ),
    Spec(
        "sarsa_columns",
        lt.sarsa_columns,
        {"traj": TRAJ, "phi": PHI, "gamma": 0.5},
        arrays={"phi": "fixed"},
        reals=("gamma",),
        bad=[("traj", None), ("phi", PHI[..., :0]), ("gamma", 1.0)],
    ),
    Spec(
        "actor_critic_columns",
        lt.actor_critic_columns,
        {"traj": TRAJ, "phi": PHI, "phi_pi": PHI_PI, "lam": LAM, "gamma": 0.5},
        arrays={"phi": "fixed", "phi_pi": "fixed", "lam": "fixed"},
        reals=("gamma",),
        bad=[("traj", "x"), ("lam", LAM[:-1]), ("phi_pi", PHI_PI[..., :0])],
    ),
    Spec(
        "td_columns",
        lt.td_columns,
        {"traj": TRAJ, "phi_s": PHI_S, "gamma": 0.5},
        arrays={"phi_s": "fixed"},
        reals=("gamma",),
        bad=[("traj", None), ("phi_s", PHI_S[:, :0]), ("phi_s", PHI_S[:1])],
    ),
    Spec(
        "sarsa_context",
        lt.sarsa_context,
        {"mdp": MDP, "phi": PHI, "w": W, "n": n, "epsilon": 0.1, "rng": _rng()},
        arrays={"phi": "fixed", "w": "fixed"},
        reals=("epsilon",),
        ints={"n": 1},
        bad=[("phi", PHI[:1]), ("phi", PHI[..., :0]), ("w", W[:-1]), ("mdp", None), ("epsilon", 2.0)],
    ),
    Spec(
        "actor_critic_context",
        lt.actor_critic_context,
        {"mdp": MDP, "phi": PHI, "phi_pi": PHI_PI, "lam": LAM, "n": n, "rng": _rng()},
        arrays={"phi": "fixed", "phi_pi": "fixed", "lam": "fixed"},
        ints={"n": 1},
        bad=[("phi_pi", PHI_PI[:, :1]), ("lam", LAM[:-1]), ("mdp", 3)],
    ),
    Spec(
        "sarsa_loop",
        lt.sarsa_loop,
        {
            "mdp": MDP,
            "phi": PHI,
            "w0": W,
            "update": _sarsa_teacher,
            "n": n,
            "n_updates": 2,
            "epsilon": 0.1,
            "rng": _rng(),
        },
        arrays={"phi": "fixed", "w0": "fixed"},
        reals=("epsilon",),
        ints={"n": 1, "n_updates": 1},
        bad=[
            ("update", None),
            ("update", lambda X, w: w[:-1]),
            ("update", lambda X, w: w + 1j),
            ("update", lambda X, w: w * NAN),
            ("w0", W[:-1]),
            ("mdp", None),
        ],
        float32=False,  # float32 features may flip an argmax: only the types are compared
    ),
    Spec(
        "actor_critic_loop",
        lt.actor_critic_loop,
        {
            "mdp": MDP,
            "phi": PHI,
            "phi_pi": PHI_PI,
            "w0": W,
            "lam0": LAM,
            "update": _ac_teacher,
            "n": n,
            "n_updates": 2,
            "rng": _rng(),
        },
        arrays={"phi": "fixed", "phi_pi": "fixed", "w0": "fixed", "lam0": "fixed"},
        ints={"n": 1, "n_updates": 1},
        bad=[
            ("update", "f"),
            ("update", lambda X, g, w, lam: w),
            ("update", lambda X, g, w, lam: (w, lam[:-1])),
            ("update", lambda X, g, w, lam: (w, lam + 1j)),
            ("lam0", LAM[:-1]),
        ],
        float32=False,
    ),
    Spec("loop_draws", lt.loop_draws, {"n": n, "n_updates": 2}, ints={"n": 1, "n_updates": 1}),
    Spec(
        "sarsa_loop_batched",
        lt.sarsa_loop_batched,
        {
            "P": PK,
            "r": RK,
            "mu0": MUK,
            "gamma": 0.5,
            "phi": PHI,
            "w0": WK,
            "update": _sarsa_teacher,
            "U": U,
            "n": n,
            "n_updates": 2,
            "epsilon": 0.1,
        },
        arrays={"P": "fixed", "r": "fixed", "mu0": "fixed", "phi": "fixed", "w0": "fixed", "U": "fixed"},
        reals=("gamma", "epsilon"),
        ints={"n": 1, "n_updates": 1},
        bad=[
            ("P", PK * 1.1),
            ("mu0", MUK[:1]),
            ("U", U[:, :-1]),
            ("U", U + 1.0),
            ("w0", WK[:1]),
            ("update", None),
            ("update", lambda X, w: w[:, :-1]),
            ("update", lambda X, w: w + 1j),
        ],
        float32=False,
    ),
    Spec(
        "actor_critic_loop_batched",
        lt.actor_critic_loop_batched,
        {
            "P": PK,
            "r": RK,
            "mu0": MUK,
            "gamma": 0.5,
            "phi": PHI,
            "phi_pi": PHI_PI,
            "w0": WK,
            "lam0": LAMK,
            "update": _ac_teacher,
            "U": U,
            "n": n,
            "n_updates": 2,
        },
        arrays={
            "P": "fixed",
            "r": "fixed",
            "mu0": "fixed",
            "phi": "fixed",
            "phi_pi": "fixed",
            "w0": "fixed",
            "lam0": "fixed",
            "U": "fixed",
        },
        reals=("gamma",),
        ints={"n": 1, "n_updates": 1},
        bad=[("lam0", LAMK[:, :-1]), ("update", 0), ("update", lambda X, g, w, lam: (w, lam[0]))],
        float32=False,
    ),
    # --- constructions (numpy out) --------------------------------------------------------------
    Spec(
        "lsa_theory.constructions.sarsa",
        constructions.sarsa,
        {"d": d, "alpha": 0.2, "c": -3.0},
        reals=("alpha", "c"),
        ints={"d": 1},
        bad=[("c", 0.0), ("c", 1e-320), ("c", 1e-308), ("alpha", 0.0), ("alpha", -1.0)],
    ),
    Spec(
        "lsa_theory.constructions.actor_critic",
        constructions.actor_critic,
        {"d": d, "d_pi": d_pi, "alpha": 0.2, "beta": 0.1, "c": 2.0},
        reals=("alpha", "beta", "c"),
        ints={"d": 1, "d_pi": 1},
        bad=[("c", 0.0), ("c", -5e-324), ("beta", 0.0)],
    ),
    Spec(
        "lsa_theory.constructions.td",
        constructions.td,
        {"d": d, "alpha": 0.2},
        reals=("alpha",),
        ints={"d": 1},
        bad=[("alpha", 0.0)],
    ),
]

#: Public functions covered by the fuzz (every name of ``lsa_theory.__all__`` that is callable
#: and takes input; result containers are exercised through the functions that return them).
NOT_FUZZED = {"ATTENTIONS", "FEATURE_KINDS", "LoopResult", "OptimalSolution", "Trajectory"}


def test_every_public_function_is_fuzzed():
    fuzzed = {s.fn.__name__ for s in SPECS}
    missing = sorted(set(lt.__all__) - NOT_FUZZED - fuzzed)
    assert not missing, missing


# --------------------------------------------------------------------------------------------------
# bad inputs
# --------------------------------------------------------------------------------------------------


def _with(a: np.ndarray, index: int, value: float) -> np.ndarray:
    out = np.array(a, dtype=np.float64, copy=True)
    out.flat[index] = value
    return out


def _array_bads(spec: Spec, name: str) -> list[tuple[str, Any]]:
    a = np.asarray(spec.args[name], dtype=np.float64)
    out = [] if spec.objects_ok else [("object", a.astype(object))]
    if name not in spec.none_ok:
        out.append(("None", None))
    out += [
        ("complex", a + 0j),
        ("complex-imag", a + 1e-3j),
        ("complex-torch", torch.tensor(a + 1e-3j)),
        ("bool", a != 0),
        ("strings", np.full(a.shape, "x")),
        ("scalar", np.float64(0.5)),
        ("nan-first", _with(a, 0, NAN)),
        ("inf-last", _with(a, -1, INF)),
        ("-inf-torch", torch.tensor(_with(a, 0, -INF))),
        ("list-with-None", [None] * len(a)),
    ]
    if spec.arrays[name] == "fixed":
        out.append(("extra-axis", a[None]))
        if a.ndim > 1:
            out.append(("missing-axis", a[..., 0]))
    return out


def _real_bads() -> list[tuple[str, Any]]:
    return [
        ("nan", NAN),
        ("inf", INF),
        ("bool", True),
        ("None", None),
        ("string", "0.5"),
        ("complex", 0.5 + 0j),
        ("np-complex", np.complex128(0.5)),
        ("array", np.array([0.5])),
    ]


def _int_bads(minimum: int, none_ok: bool) -> list[tuple[str, Any]]:
    out = [("below-minimum", minimum - 1), ("float", 2.0), ("bool", True), ("string", "2")]
    return out if none_ok else [*out, ("None", None)]


def _bad_cases(specs: list | None = None) -> list:
    """``(spec, argument, bad value, argument to name, id)`` for every spec of ``specs`` (default
    :data:`SPECS`; :mod:`test_input_fuzz_api` passes its own)."""
    cases = []
    for spec in SPECS if specs is None else specs:
        for name in spec.arrays:
            cases += [
                (spec, name, v, name, f"{spec.name}-{name}-{tag}") for tag, v in _array_bads(spec, name)
            ]
        for name in spec.reals:
            cases += [(spec, name, v, name, f"{spec.name}-{name}-{tag}") for tag, v in _real_bads()]
        for name, minimum in spec.ints.items():
            bads = _int_bads(minimum, name in spec.none_ok)
            cases += [(spec, name, v, name, f"{spec.name}-{name}-{tag}") for tag, v in bads]
        for i, (name, v, *named) in enumerate(spec.bad):
            cases.append((spec, name, v, named[0] if named else name, f"{spec.name}-{name}-explicit{i}"))
    return cases


#: The generated bad-input cases, ids ``fuzz-<spec>-<argument>-<fault>``: a quoted test count leaves
#: them out with ``-k 'not fuzz-'`` and gives :data:`FUZZ_CASES` apart (docs/inputs.md).
BAD = [(s, a, v, m, f"fuzz-{i}") for s, a, v, m, i in _bad_cases()]
#: Number of generated bad-input cases of this module, written out (docs/inputs.md quotes it):
#: tests/test_docs.py checks it against the ``fuzz-*`` ids the parametrisation gives pytest, so a change
#: of the generator fails until this literal and the page are updated.
FUZZ_CASES = 2055


def _names(message: str, name: str) -> bool:
    """``name`` appears as a word in the message's prefix before the first ``": "``."""
    head = message.split(": ", 1)[0]
    return re.search(rf"(^|[^\w.]){re.escape(name)}($|[^\w])", head) is not None


@pytest.mark.parametrize(
    ("spec", "name", "value", "named"), [pytest.param(s, a, v, m, id=i) for s, a, v, m, i in BAD]
)
def test_bad_input_raises_value_error_naming_the_argument(spec, name, value, named):
    assert_refused(spec, name, value, named)


def assert_refused(spec: Spec, name: str, value: Any, named: str) -> None:
    """The call of ``spec`` with ``name = value`` raises ValueError naming ``named`` before ``": "``."""
    with pytest.raises(ValueError) as info:
        _call(spec, **{name: value})
    assert _names(str(info.value), named), f"{named!r} not named in: {info.value}"


def test_case_ids_unique():
    ids = [c[-1] for c in BAD]
    assert len(ids) == len(set(ids))


# --------------------------------------------------------------------------------------------------
# good variants
# --------------------------------------------------------------------------------------------------


def _leaves(out: Any) -> list:
    """Arrays (numpy or torch) of a result: tuples, dataclasses and MDPs are flattened."""
    if isinstance(out, lt.TabularMDP):
        return [out.P, out.r, out.mu0]
    if dataclasses.is_dataclass(out):
        return [x for f in dataclasses.fields(out) for x in _leaves(getattr(out, f.name))]
    if isinstance(out, tuple | list):
        return [x for v in out for x in _leaves(v)]
    if out is None:
        return []
    if isinstance(out, torch.Tensor):
        return [out]
    return [np.asarray(out)]


def _np(x: Any) -> np.ndarray:
    return x.detach().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _run_checked(spec: Spec, over: dict[str, Any]) -> Any:
    """Call with ``over``; the caller's numpy arrays must come back unchanged and writable."""
    copies = {key: np.array(v, copy=True) for key, v in over.items() if isinstance(v, np.ndarray)}
    out = _call(spec, **over)
    for key, c in copies.items():
        np.testing.assert_array_equal(over[key], c, err_msg=f"{spec.name} mutated {key}")
        assert over[key].flags.writeable, f"{spec.name} froze the caller's {key}"
    return out


def _same(out: Any, ref: Any, rtol: float, atol: float = 0.0) -> None:
    a, b = _leaves(out), _leaves(ref)
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert tuple(x.shape) == tuple(y.shape)
        np.testing.assert_allclose(_np(x).astype(np.float64), _np(y).astype(np.float64), rtol=rtol, atol=atol)


def _numpy_fresh(spec: Spec) -> dict[str, Any]:
    return {key: np.array(spec.args[key], copy=True) for key in spec.arrays}


SPEC_IDS = [s.name for s in SPECS]


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_numpy_call_returns_numpy_and_leaves_inputs_alone(spec):
    out = _run_checked(spec, _numpy_fresh(spec))
    for leaf in _leaves(out):
        assert isinstance(leaf, np.ndarray)
        if leaf.dtype.kind == "f":
            assert np.isfinite(leaf).all()


@pytest.mark.parametrize("spec", [s for s in SPECS if s.arrays and s.lists], ids=lambda s: s.name)
def test_nested_lists_work(spec):
    ref = _call(spec)
    out = _call(spec, **{key: np.asarray(spec.args[key]).tolist() for key in spec.arrays})
    _same(out, ref, rtol=1e-15, atol=1e-16)  # a list is C-ordered: einsum may round differently


@pytest.mark.parametrize("spec", [s for s in SPECS if s.arrays], ids=lambda s: s.name)
def test_float32_works(spec):
    ref = _call(spec)
    over = {key: np.asarray(spec.args[key], dtype=np.float32) for key in spec.arrays}
    out = _run_checked(spec, over)
    leaves = _leaves(out)
    assert all(isinstance(x, np.ndarray) for x in leaves)
    if spec.float32:
        _same(out, ref, rtol=1e-4, atol=1e-5)
    else:
        assert [x.shape for x in leaves] == [x.shape for x in _leaves(ref)]


def _torch_args(spec: Spec, keys, grad: bool) -> dict[str, Any]:
    return {
        key: torch.tensor(np.asarray(spec.args[key], dtype=np.float64), requires_grad=grad) for key in keys
    }


@pytest.mark.parametrize("grad", [False, True], ids=["no-grad", "grad"])
@pytest.mark.parametrize("spec", [s for s in SPECS if s.arrays], ids=lambda s: s.name)
def test_torch_all_arrays(spec, grad):
    ref = _call(spec)
    over = _torch_args(spec, spec.arrays, grad)
    out = _call(spec, **over)
    leaves = _leaves(out)
    _same(out, ref, rtol=1e-12, atol=1e-14)
    if spec.torch_out:
        assert all(isinstance(x, torch.Tensor) for x in leaves)
        if grad:
            assert all(x.requires_grad for x in leaves)
            sum(x.sum() for x in leaves).backward()
            assert any(t.grad is not None for t in over.values())
    else:
        assert all(isinstance(x, np.ndarray) for x in leaves)  # values read, numpy out
    for key, t in over.items():  # the tensors are not modified
        np.testing.assert_array_equal(t.detach().numpy(), np.asarray(spec.args[key], dtype=np.float64))


def _one_arg_cases() -> list:
    return [pytest.param(s, key, id=f"{s.name}-{key}") for s in SPECS for key in s.arrays]


@pytest.mark.parametrize("spec", [s for s in SPECS if s.arrays], ids=lambda s: s.name)
def test_torch_one_argument_at_a_time(spec):
    ref = _call(spec)
    first = next(iter(spec.arrays))
    for key in spec.arrays:
        over = _torch_args(spec, [key], grad=True)
        if spec.torch_out and key != first:
            # a torch argument next to a numpy prompt is refused, naming it
            with pytest.raises(ValueError) as info:
                _call(spec, **over)
            assert _names(str(info.value), key), str(info.value)
            continue
        out = _call(spec, **over)
        _same(out, ref, rtol=1e-12, atol=1e-14)
        want = torch.Tensor if spec.torch_out else np.ndarray
        assert all(isinstance(x, want) for x in _leaves(out))


# --------------------------------------------------------------------------------------------------
# gradients of the array functions are the true ones (not detached anywhere)
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", [s for s in SPECS if s.torch_out], ids=lambda s: s.name)
def test_torch_gradients_match_finite_differences(spec):
    over = _torch_args(spec, {k: v for k, v in spec.arrays.items() if k not in spec.no_grad}, grad=True)

    def f(*tensors):
        out = _call(spec, **dict(zip(over, tensors, strict=True)))
        return tuple(_leaves(out))

    assert torch.autograd.gradcheck(f, tuple(over.values()), eps=1e-6, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("spec", [s for s in SPECS if s.arrays], ids=lambda s: s.name)
def test_torch_float32(spec):
    """float32 tensors: array functions compute and return float32 torch; the others read the
    values (a float32 kernel with its float32 tolerance) and return numpy."""
    ref = _call(spec)
    over = {key: torch.tensor(np.asarray(spec.args[key]), dtype=torch.float32) for key in spec.arrays}
    out = _call(spec, **over)
    leaves = _leaves(out)
    if spec.torch_out:
        assert all(isinstance(x, torch.Tensor) and x.dtype == torch.float32 for x in leaves)
    else:
        assert all(isinstance(x, np.ndarray) for x in leaves)
    if spec.float32:
        _same(out, ref, rtol=1e-4, atol=1e-5)

r"""The block forms of the shipped all-sizes proofs, for
:func:`lsa_theory.constructions.proof_link.link_rows`.

Each ``*_forms()`` returns the :class:`~lsa_theory.constructions.proof_link.ProvedForm`\ s a registered
declaration lists in :meth:`~lsa_theory.constructions.registry.Algorithm.all_sizes_forms`: the proof, the
prompt, layer blocks and update it is about (the builders of :mod:`lsa_theory.constructions.symbolic_sizes`,
:mod:`lsa_theory.constructions.symbolic_sizes_w7`,
:mod:`lsa_theory.constructions.symbolic_sizes_regression`), and the
map ``values`` from one instance of the declaration to the value of every symbol. A subclass of a
shipped declaration inherits these forms, so its own prompt, construction and forward pass are
compared with them.
"""

from __future__ import annotations

import numpy as np
import sympy as sp
from sympy import MatrixSymbol, ZeroMatrix

from . import symbolic_sizes as ss
from . import symbolic_sizes_regression as reg
from .numeric import running_mean_mask
from .proof_link import ProvedForm
from .symbolic import SymbolicProof

__all__ = [
    "td_values",
    "sarsa_values",
    "regression_values",
    "sarsa_forms",
    "actor_critic_forms",
    "td_forms",
    "td_precond_forms",
    "td_lambda_forms",
    "residual_gradient_forms",
    "average_reward_forms",
    "regression_gd_forms",
    "preconditioned_gd_forms",
]


def _col(v) -> np.ndarray:
    return np.asarray(v, dtype=np.float64).reshape(-1, 1)


def td_values(alg, inst, hyper, sizes, c, layer) -> tuple[dict, dict]:
    """Symbol values of the TD family's instances (``phi``, ``phi_next`` (n, d), ``r``, ``q``)."""
    arrays = {"Phi": np.asarray(inst["phi"], float).T, "Phi_next": np.asarray(inst["phi_next"], float).T}
    arrays |= {"r": _col(inst["r"]), "q": _col(inst["q"])}
    scalars = {ss.alpha_s: hyper["alpha"]}
    if "gamma" in hyper:
        scalars[ss.gamma_s] = hyper["gamma"]
    return arrays, scalars


def sarsa_values(alg, inst, hyper, sizes, c, layer) -> tuple[dict, dict]:
    """Symbol values of an (H) instance (``phi``, ``phi_next``, ``r``, ``w``) and of an (A1) one
    (plus ``g`` (n, d_pi), ``lam``)."""
    arrays = {"Phi": np.asarray(inst["phi"], float).T, "Phi_next": np.asarray(inst["phi_next"], float).T}
    arrays |= {"r": _col(inst["r"]), "w": _col(inst["w"])}
    if "g" in inst:
        arrays |= {"G": np.asarray(inst["g"], float).T, "lambda": _col(inst["lam"])}
    scalars = {ss.alpha_s: hyper["alpha"], ss.gamma_s: hyper["gamma"], ss.c_s: c}
    if "beta" in hyper:
        scalars[ss.beta_s] = hyper["beta"]
    return arrays, scalars


def regression_values(alg, inst, hyper, sizes, c, layer) -> tuple[dict, dict]:
    """Symbol values of an (R1) instance (``X`` (N, d), ``y``, ``xq``); ``A`` the layer's ``A_l``."""
    arrays = {"X": np.asarray(inst["X"], float).T, "y": _col(inst["y"]), "x_q": _col(inst["xq"])}
    scalars = {}
    if "eta" in hyper:
        scalars[ss.eta_s] = hyper["eta"]
    if "A" in hyper:
        arrays["A"] = np.asarray(hyper["A"][layer], dtype=np.float64)
    return arrays, scalars


# ------------------------------------------------------------------ the shipped forms

ZERO = ZeroMatrix(ss.d_s, 1)


def td_precond_values(alg, inst, hyper, sizes, c, layer) -> tuple[dict, dict]:
    """:func:`td_values` with the proof's ``C`` = ``alpha C_l`` of the layer (``C_l = I`` if none)."""
    arrays, scalars = td_values(alg, inst, hyper, sizes, c, layer)
    C = hyper.get("C")
    C_l = np.eye(sizes["d"]) if C is None else np.asarray(C[layer], dtype=np.float64)
    return arrays | {"C": hyper["alpha"] * C_l}, scalars


def td_lambda_values(alg, inst, hyper, sizes, c, layer) -> tuple[dict, dict]:
    """:func:`td_values` with ``M_n`` the context block of the declaration's own mask."""
    arrays, scalars = td_values(alg, inst, hyper, sizes, c, layer)
    n = len(inst["r"])
    return arrays | {"M_n": np.asarray(alg.mask(sizes, hyper), dtype=np.float64)[:n, :n]}, scalars


def average_reward_values(alg, inst, hyper, sizes, c, layer) -> tuple[dict, dict]:
    """:func:`td_values` with ``N_n`` the context block of the shipped running-mean mask."""
    arrays, scalars = td_values(alg, inst, hyper, sizes, c, layer)
    n = len(inst["r"])
    return arrays | {"N_n": running_mean_mask(n)[:n, :n]}, scalars


def _heads(layer) -> tuple:
    (P_r, Q_r), (P_v, Q_v) = layer
    return P_r, P_v, Q_r, Q_v


def sarsa_forms() -> list[ProvedForm]:
    """(S4), (S5) (induction) and (S5) at L = 2: one (L1) layer of :func:`symbolic_sizes.sarsa_blocks`."""
    common = dict(
        kind="lsa",
        prompt=ss.sarsa_prompt_expr,
        start=ss.w_vec,
        blocks=ss.sarsa_blocks(),
        update=ss.sarsa_update_expr,
        values=sarsa_values,
    )
    return [
        ProvedForm(
            ss.prove_sarsa_all_sizes, "one layer = (S2), whole output, c symbolic", claim="(S4)", **common
        ),
        ProvedForm(
            ss.prove_sarsa_stack_all_sizes,
            "(S5), every L by induction: one layer maps H(z; w) to H(z; w_SARSA)",
            claim="(S5)",
            **common,
        ),
        ProvedForm(_sarsa_two_layers, "two layers composed explicitly, no induction", claim="(S5)", **common),
    ]


def _sarsa_two_layers() -> SymbolicProof:
    return ss.prove_sarsa_composition_all_sizes(2)


def _ac_prompt(p):
    return ss.actor_critic_prompt_expr(*p)


def _ac_update(p):
    return ss.actor_critic_update_expr(*p)


def actor_critic_forms() -> list[ProvedForm]:
    """(A4): one (L1) layer of :func:`symbolic_sizes.actor_critic_blocks` on the (A1) prompt."""
    return [
        ProvedForm(
            ss.prove_actor_critic_all_sizes,
            "actor-critic layer = (A2), whole output, any critic features",
            "lsa",
            _ac_prompt,
            (ss.w_vec, ss.lam_vec),
            ss.actor_critic_blocks(),
            _ac_update,
            sarsa_values,
            claim="(A4)",
        )
    ]


def _td_form(claim: str, prove, what: str, blocks, update, values=td_values, mask=None) -> ProvedForm:
    """A form of the (W3)-(W6) induction: the (W1) invariant ``td_prompt_expr`` from ``w_0 = 0``."""
    return ProvedForm(
        prove, what, "masked", ss.td_prompt_expr, ZERO, blocks, update, values, mask, claim=claim
    )


def td_forms() -> list[ProvedForm]:
    """(W3): the (W3) induction on :func:`symbolic_sizes.td_blocks` with ``C = alpha I``."""
    blocks = ss.td_blocks(ss.alpha_s * sp.Identity(ss.d_s))
    what = "every L by induction: base + step of the last-row invariant"
    return [_td_form("(W3)", ss.prove_td_all_sizes, what, blocks, ss.td_update_expr)]


def td_precond_forms() -> list[ProvedForm]:
    """(W4): generic ``C`` per layer (the proof's ``C`` is ``alpha C_l``)."""
    blocks = ss.td_blocks(MatrixSymbol("C", ss.d_s, ss.d_s))
    what = "generic C_l, every L by induction (THEORY's statement)"
    prove, update = ss.prove_td_preconditioned_all_sizes, ss.td_precond_update_expr
    return [_td_form("(W4)", prove, what, blocks, update, td_precond_values)]


def td_lambda_forms() -> list[ProvedForm]:
    """(W5): the (W3) pair with any context mask ``M_n`` (the declaration's trace mask)."""
    blocks = ss.td_blocks(ss.alpha_s * sp.Identity(ss.d_s))
    what = "any context mask M_n, every L by induction (THEORY's statement)"
    mask = MatrixSymbol("M_n", ss.n_s, ss.n_s)
    return [_td_form("(W5)", ss.prove_td_lambda_all_sizes, what, blocks, ss.td_lambda_update_expr,
                     td_lambda_values, mask)]  # fmt: skip


def residual_gradient_forms() -> list[ProvedForm]:
    """(W6): :func:`symbolic_sizes.residual_gradient_blocks`."""
    what = "every L by induction (THEORY's statement, this Q)"
    return [_td_form("(W6)", ss.prove_residual_gradient_all_sizes, what, ss.residual_gradient_blocks(),
                     ss.residual_gradient_update_expr)]  # fmt: skip


def average_reward_forms() -> list[ProvedForm]:
    """(W7): the two-head layer (any reward mask ``N_n``, here the running-mean mask) and the
    running-mean identity, both linked through the two-head block form."""
    from . import symbolic_sizes_w7 as w7

    P_r, P_v, Q = w7.average_reward_blocks()
    common = dict(
        kind="two_heads",
        prompt=w7.average_reward_prompt_expr,
        start=ZERO,
        blocks=(P_r, P_v, Q, Q),
        update=w7.average_reward_update_expr,
        values=average_reward_values,
        mask=w7.N_n,
        flatten=_heads,
    )
    return [
        ProvedForm(
            w7.prove_td_average_reward_all_sizes,
            "two heads, any reward mask N_n: one layer = one step "
            "with r_i - rbar_i -> (r^T N_n)_i, every L by induction",
            claim="(W7)",
            **common,
        ),
        ProvedForm(
            w7.prove_running_mean_mask_all_sizes,
            "running-mean mask entrywise, by a sympy Sum with "
            "symbolic n, i (not block algebra): (r^T N)_i = r_i - rbar_i",
            claim="(W7)",
            **common,
        ),
    ]


def _gd_update(w):
    return reg.preconditioned_gd_update_expr(w, -ss.eta_s * sp.Identity(ss.d_s))


def regression_gd_forms() -> list[ProvedForm]:
    """(R2): :func:`symbolic_sizes.regression_blocks` with ``A = -eta I``, one layer from 0."""
    blocks = ss.regression_blocks(-ss.eta_s * sp.Identity(ss.d_s))
    return [
        ProvedForm(
            reg.prove_regression_gd_all_sizes,
            "one GD step from 0 (THEORY's statement)",
            "masked",
            reg.regression_prompt_expr,
            ZERO,
            blocks,
            _gd_update,
            regression_values,
            claim="(R2)",
        )
    ]


def preconditioned_gd_forms() -> list[ProvedForm]:
    """(R3): :func:`symbolic_sizes.regression_blocks` with a generic ``A`` per layer (``A_l``)."""
    blocks = ss.regression_blocks(MatrixSymbol("A", ss.d_s, ss.d_s))
    return [
        ProvedForm(
            reg.prove_preconditioned_gd_all_sizes,
            "generic A_l, every L by induction (THEORY's statement)",
            "masked",
            reg.regression_prompt_expr,
            ZERO,
            blocks,
            reg.preconditioned_gd_update_expr,
            regression_values,
            claim="(R3)",
        )
    ]

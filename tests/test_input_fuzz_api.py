"""Input fuzz of the public functions added since the first fuzz (issue 24, done-when): the TD
family of ``constructions``, ``lsa_theory.dynamics.regression`` (with its data laws: ``law``,
``covariates``, ``gamma_shape``), the peers' parameterisations of
``lsa_theory.constructions.conventions``, the pretraining entry points of
``lsa_theory.experiments.pretrain`` and the entry points of ``dynamics`` (teacher data, objective,
flow, descent, manifold, rate fits).

Same rules as :mod:`test_input_fuzz` (its :class:`Spec` and bad-value generators are reused): each
array argument is fuzzed with complex, object, bool and string dtypes, ``None``, NaN, inf, a 0-d
scalar, complex and -inf torch tensors and one more or one fewer dimension; each real with
NaN/inf/bool/None/string/complex/1-element arrays; each int with a value below its minimum, a float,
a bool, a string and None; plus explicit bad values. A case passes only if it raises ``ValueError``
naming the argument before the first ``": "`` (never another exception, never a result).

:data:`FUZZ_CASES` counts the generated cases (all ids start with ``fuzz-``), so that a quoted
test count can leave them out (``-k 'not fuzz-'``)."""

from __future__ import annotations

import numpy as np
import pytest
from test_input_fuzz import Spec, _array_bads, _bad_cases, _call, _rng, assert_refused

import lsa_theory as lt
from lsa_theory import constructions
from lsa_theory import distill as ad
from lsa_theory import dynamics as dy
from lsa_theory import td_pretrain as tp
from lsa_theory.constructions import conventions as cv
from lsa_theory.dynamics import regression as rg
from lsa_theory.dynamics import td_pretrain as dtp
from lsa_theory.experiments import pretrain as ep

torch = pytest.importorskip("torch")

# --- data of the good calls -------------------------------------------------------------------------
_g = np.random.default_rng(7)
d, n = 2, 4
DS = dy.teacher_dataset(dy.TeacherSpec(k=2, frames=2), np.random.default_rng(0))
TH = dy.construction(DS, 1.0) + 0.01 * _g.standard_normal(dy.shapes(DS).size)
V = _g.standard_normal(TH.size)
TT = np.linspace(0.0, 10.0, 30)
LL = 1e-23 * np.exp(-TT)
LE = 1e-40 * np.ones(TT.size)
LAMBDA = rg.random_covariance(d, 10.0, np.random.default_rng(1))
MR = np.linalg.inv(rg.gamma_matrix(LAMBDA, 5))
SAMPLE = rg.sample_prompts(8, 5, LAMBDA, np.random.default_rng(2))
OBJ = rg.population_objective(LAMBDA, 5)
THR = rg.zfb_init(d, 0.1, np.random.default_rng(3))
PF, QF = rg.to_full(THR, d)
F, FN, RW = _g.uniform(-1, 1, (n, d)), _g.uniform(-1, 1, (n, d)), _g.uniform(-1, 1, n)
PQ = _g.uniform(-1, 1, d)
ZA = constructions.average_reward_prompt(F, FN, RW, PQ)
LAYERS_AR = [constructions.td_average_reward(d, 0.2)]
C2 = np.array([[2.0, 0.5], [0.1, 1.0]])
# (WP1)-(WP3): one task, d = 2, n = 3, 2 windows; layers L = 2
_TPT = tp.sample_tasks(2, 4, 2, np.random.default_rng(4))
ZW, RQ = tp.prompts(_TPT, tp.sample_trajectories(_TPT, 7, np.random.default_rng(5)), 0.9, 3, 2)
PSW, QSW = tp.xavier_start(2, 5, np.random.default_rng(6), gain=0.5, shared=False)
MW = _g.uniform(-1, 1, (5, 5))
FW, RFW = dtp.meta_features(_TPT, tp.sample_trajectories(_TPT, 7, np.random.default_rng(5)), 0.9, 3, 2)
AW, BW = np.array([[0.03, 0.001], [0.002, 0.016]]), np.array([0.04, 0.003])
# the regression laws: [Ahn]'s weight law w ~ N(0, Lambda^{-1}) and gamma-scaled covariates
W_SI = rg.weight_covariance(LAMBDA, "sigma_inverse")
M_SI = rg.one_layer_optimum(LAMBDA, 5, "sigma_inverse", "gamma", 0.5)
_LAW_GAMMA = {"law": "sigma_inverse", "covariates": "gamma", "gamma_shape": 0.5}
_LAW_BAD = [
    ("law", "gamma"),  # a covariate law, not a weight law
    ("law", "Isotropic"),
    ("law", ""),
    ("law", None),
    ("law", 1),
    ("covariates", "normal"),
    ("covariates", "isotropic"),  # a weight law, not a covariate law
    ("covariates", None),
    ("covariates", ("gamma",)),
    ("gamma_shape", 0.0),
    ("gamma_shape", -1.0),
    ("gamma_shape", -np.inf),
]
# conventions: an [Ahn] head (d = 2), a [vO] head (d + 1 = 3), a [W] layer (D = 2d+1 = 5) and
# [W]'s average-reward layer (D = 2d+2 = 6)
PA, QA = _g.uniform(-1, 1, (2, d, d))
PO, QO = cv.from_ahn(PA, QA)
VO = dict(zip(("W_K", "W_Q", "W_V", "P_vo"), _g.uniform(-1, 1, (4, d + 1, d + 1)), strict=True))
PW, QW = _g.uniform(-1, 1, (2, 2 * d + 1, 2 * d + 1))
P1W, P2W, QAW = _g.uniform(-1, 1, (3, 2 * d + 2, 2 * d + 2))
WAW = _g.uniform(-1, 1, (2 * d + 2, 4 * d + 4))
HEADS = cv.from_incontexttd_average_reward(P1W, P2W, WAW, QAW, 0.3)
E00 = np.zeros((0, 0))


def _heads_with(i: int, j: int, value) -> list:
    """``HEADS`` with matrix ``j`` of head ``i`` replaced by ``value``."""
    heads = [list(h) for h in HEADS]
    heads[i][j] = value
    return heads


#: every generated bad array in each of the four matrices of ``heads`` (the message names the matrix)
_HEADS_BAD = [
    ("heads", _heads_with(i, j, v), name)
    for name, i, j in (("P_r", 0, 0), ("Q_r", 0, 1), ("P_v", 1, 0), ("Q_v", 1, 1))
    for _, v in _array_bads(
        Spec(name, cv.to_incontexttd_average_reward, {name: HEADS[i][j]}, {name: "fixed"}), name
    )
]
PCFG = ep.PretrainConfig(S=2, A=2, n=4, T=2, k=4, steps=2, frames=2, heldout_k=2, teacher_k=2)


def _teacher_dataset(spec_, rng, vectorised=True):
    """:func:`lsa_theory.dynamics.teacher_dataset` (its first argument ``spec`` renamed: ``_call`` takes
    ``spec``)."""
    return dy.teacher_dataset(spec_, rng, vectorised=vectorised)


_flow_scalars = dict(reals=("t_max", "rtol", "atol", "grad_floor"), ints={"max_steps": 1})

# (AD0)-(AD5): a source history of K = 2 episodes of H = 3 steps, d = 2
_AD_MDP = lt.random_mdp(3, 2, 0.5, np.random.default_rng(3))
_AD_PHI = lt.random_features(3, 2, 2, np.random.default_rng(4))
_AD_W0 = np.array([0.3, -0.2])
_AD_H = ad.source_history(
    _AD_MDP, _AD_PHI, _AD_W0, H=3, K=2, alpha=0.2, epsilon=0.1, rng=np.random.default_rng(5)
)
_AD_Z = np.zeros((8, 7))
_AD_Z[:5, :6], _AD_Z[5, 6], _AD_Z[6:, 6] = _AD_H.X, 1.0, _AD_W0
_AD_LAYERS = [constructions.sarsa(2, 0.2)] * 2
_AD_MASKS = ad.episode_masks(2, 3)
_AD_LOOP = {"mdp": _AD_MDP, "phi": _AD_PHI, "w0": _AD_W0, "H": 3, "K": 2, "epsilon": 0.1}
_AD_LOOP_BAD = [("mdp", None), ("rng", 0), ("epsilon", 1.5), ("w0", _AD_W0[:-1]), ("phi", _AD_PHI[:, :1])]

API_SPECS = [
    # --- lsa_theory.distill (AD0)-(AD5) ----------------------------------------------------------
    Spec("episode_masks", ad.episode_masks, {"K": 2, "H": 3}, ints={"K": 1, "H": 1}),
    Spec(
        "masked_episode_stack",
        ad.masked_episode_stack,
        {"Z": _AD_Z, "layers": _AD_LAYERS, "masks": _AD_MASKS},
        arrays={"Z": "fixed", "masks": "fixed"},
        bad=[
            ("masks", 0 * _AD_MASKS),
            ("masks", 2 * _AD_MASKS),
            ("masks", _AD_MASKS[:1]),
            ("Z", _AD_Z[:, :-1], "masks"),
            ("layers", []),
            ("layers", None),
            ("layers", [_AD_LAYERS[0][:1]]),
            ("layers", [(_AD_Z, _AD_Z)]),
        ],
        objects_ok=True,  # an object Z is the exact path (sympy, ring elements)
    ),
    Spec("pooled_td", ad.pooled_td, {"X": _AD_H.X}, arrays={"X": "fixed"}, bad=[("X", _AD_H.X[:-1])]),
    Spec(
        "pooled_sarsa",
        ad.pooled_sarsa,
        {"X": _AD_H.X, "w0": _AD_W0, "alpha": 0.2, "L": 3},
        arrays={"X": "fixed", "w0": "fixed"},
        reals=("alpha",),
        ints={"L": 1},
        bad=[("w0", _AD_W0[:-1])],
    ),
    Spec(
        "pooled_rate",
        ad.pooled_rate,
        {"X": _AD_H.X, "alpha": 0.2, "rtol": 1e-10},
        arrays={"X": "fixed"},
        reals=("alpha", "rtol"),
        bad=[("rtol", -1.0)],
    ),
    Spec(
        "replay_source",
        ad.replay_source,
        {"X": _AD_H.X, "w0": _AD_W0, "alpha": 0.2, "H": 3, "order": [1, 0]},
        arrays={"X": "fixed", "w0": "fixed"},
        reals=("alpha",),
        ints={"H": 1},
        bad=[("order", [0, 0]), ("order", [0, 1, 2]), ("H", 4, "X"), ("w0", _AD_W0[:-1])],
    ),
    Spec(
        "source_history",
        ad.source_history,
        {**_AD_LOOP, "alpha": 0.2, "rng": _rng()},
        arrays={"phi": "fixed", "w0": "fixed"},
        reals=("alpha", "epsilon"),
        ints={"H": 1, "K": 1},
        bad=[*_AD_LOOP_BAD, ("alpha", 0.0)],
    ),
    Spec(
        "episodic_loop",
        ad.episodic_loop,
        {**_AD_LOOP, "update": lambda frames, w: w, "rng": _rng()},
        arrays={"phi": "fixed", "w0": "fixed"},
        reals=("epsilon",),
        ints={"H": 1, "K": 1},
        bad=[*_AD_LOOP_BAD, ("update", None), ("update", lambda frames, w: w[:-1], "update")],
    ),
    Spec(
        "naive_source",
        ad.naive_source,
        {
            "phi": _AD_H.X[:2].T,
            "phi_next": _AD_H.X[2:4].T / 0.5,
            "r": _AD_H.X[4],
            "w0": _AD_W0,
            "gamma": 0.5,
            "alpha": 0.2,
            "H": 3,
            "K": 2,
        },
        ints={"H": 1, "K": 1},
        bad=[("r", _AD_H.X[4][:-1]), ("gamma", 1.0), ("w0", [0.1, np.nan])],
        objects_ok=True,
    ),
    # --- dynamics: teacher data, objective, manifold ---------------------------------------------
    Spec(
        "teacher_dataset",
        _teacher_dataset,
        {"spec_": dy.TeacherSpec(k=2, frames=2), "rng": _rng()},
        bad=[("spec_", None, "spec"), ("spec_", {}, "spec"), ("rng", 0), ("rng", None), ("vectorised", 1)],
    ),
    *[
        Spec(
            f.__name__,
            f,
            {"dataset": DS, "theta": TH},
            arrays={"theta": "fixed"},
            bad=[("theta", TH[:-1]), ("dataset", None), ("dataset", {})],
            none_ok=("theta",) if f is dy.richness else (),
        )
        for f in (
            dy.loss,
            dy.loss_and_grad,
            dy.hessian,
            dy.hessian_blocks,
            dy.conserved,
            dy.relative_error,
            dy.loss_and_grad_error_bound,
            dy.distance_to_manifold,
            dy.nearest_manifold_point,
            dy.hessian_spectrum,
            dy.richness,
        )
    ],
    Spec(
        "predict_scale",
        dy.predict_scale,
        {"dataset": DS, "theta0": TH},
        arrays={"theta0": "fixed"},
        bad=[("theta0", TH[:-1]), ("dataset", None)],
    ),
    Spec(
        "hvp",
        dy.hvp,
        {"dataset": DS, "theta": TH, "v": V},
        arrays={"theta": "fixed", "v": "fixed"},
        bad=[("v", V[:-1])],
    ),
    Spec("construction", dy.construction, {"dataset": DS, "c": 1.0}, reals=("c",), bad=[("c", 0.0)]),
    # --- dynamics: flow and descent -----------------------------------------------------------------
    Spec(
        "gradient_flow",
        dy.gradient_flow,
        {"dataset": DS, "theta0": TH, "t_max": 1e-3},
        arrays={"theta0": "fixed"},
        **_flow_scalars,
        bad=[
            ("theta0", TH[:-1]),
            ("dataset", None),
            ("method", "Euler"),
            ("t_max", 0.0),
            ("max_steps", 0),
            ("stop_dist", -1.0),
            ("stop_dist", "x"),
            ("max_seconds", 0.0),
            ("dist_rtol", -1.0),
            ("error_bounds", "yes"),
        ],
    ),
    Spec(
        "gradient_descent",
        dy.gradient_descent,
        {"dataset": DS, "theta0": TH, "eta": 1e-3, "max_steps": 3},
        arrays={"theta0": "fixed"},
        reals=("eta", "grad_floor"),
        ints={"max_steps": 1, "record_every": 1},
        bad=[("theta0", TH[:-1]), ("eta", 0.0), ("stop_dist", -1.0), ("max_seconds", -1.0)],
    ),
    Spec(
        "adam",
        dy.adam,
        {"dataset": DS, "theta0": TH, "lr": 1e-3, "max_steps": 3},
        arrays={"theta0": "fixed"},
        reals=("lr", "eps", "grad_floor"),
        ints={"max_steps": 1, "record_every": 1},
        bad=[("theta0", TH[:-1]), ("lr", -1.0), ("betas", (0.9,)), ("betas", (1.0, 0.999)), ("betas", None)],
    ),
    # --- dynamics: rate fits --------------------------------------------------------------------------
    Spec(
        "fit_rate",
        dy.fit_rate,
        {"t": TT, "loss": LL, "window": (1e-40, 1e-20), "min_points": 5, "loss_err": LE},
        arrays={"t": "fixed", "loss": "fixed", "loss_err": "fixed"},
        ints={"min_points": 2},
        bad=[
            ("loss", LL[:-1]),
            ("loss_err", LE[:-1]),
            ("loss_err", -LE),
            ("window", (1.0,)),
            ("window", None),
        ],
        none_ok=("loss_err",),
    ),
    Spec(
        "fit_rate_roundoff",
        dy.fit_rate_roundoff,
        {"t": TT, "loss": LL, "loss_err": LE, "window": (1e-40, 1e-20)},
        arrays={"t": "fixed", "loss": "fixed", "loss_err": "fixed"},
        ints={"min_points": 2},
        bad=[("t", TT[:-1], "loss"), ("window", (1e-20, 1e-40))],
    ),
    # --- dynamics.regression ----------------------------------------------------------------------
    Spec(
        "random_covariance",
        rg.random_covariance,
        {"d": d, "kappa": 10.0, "rng": _rng()},
        reals=("kappa",),
        ints={"d": 1},
        bad=[("kappa", 0.5), ("rng", 0), ("rng", None)],
    ),
    *[
        Spec(
            f.__name__,
            f,
            {"Lambda": LAMBDA, "N": 5},
            arrays={"Lambda": "fixed"},
            ints={"N": 1},
            bad=[("Lambda", -LAMBDA), ("Lambda", LAMBDA + [[0, 1], [0, 0]]), ("Lambda", LAMBDA[:1])],
        )
        for f in (rg.gamma_matrix, rg.second_moment, rg.population_objective, rg.sigma_inverse_optimum)
    ],
    Spec(
        "population_loss",
        rg.population_loss,
        {"M": MR, "Lambda": LAMBDA, "N": 5},
        arrays={"M": "fixed", "Lambda": "fixed"},
        ints={"N": 1},
        bad=[("M", MR[:1])],
    ),
    Spec(
        "sample_prompts",
        rg.sample_prompts,
        {"F": 8, "N": 5, "Lambda": LAMBDA, "rng": _rng()},
        arrays={"Lambda": "fixed"},
        ints={"F": 1, "N": 1},
        bad=[("F", 7), ("rng", 0), ("rng", None), ("antithetic", 1), ("antithetic", None), ("law", "gamma")],
    ),
    *[
        Spec(f.__name__, f, {"sample": SAMPLE}, bad=[("sample", {}), ("sample", None), ("sample", SAMPLE.X)])
        for f in (rg.sampled_objective, rg.query_features)
    ],
    Spec(
        "sample_minimiser_test",
        rg.sample_minimiser_test,
        {"Lambda": LAMBDA, "N": 5, "M_ref": MR, "F": 200, "rng": _rng()},
        arrays={"Lambda": "fixed", "M_ref": "fixed"},
        ints={"N": 1, "F": 1, "chunk": 1},
        bad=[("M_ref", MR[:1]), ("F", 3), ("rng", 1), ("law", None)],
    ),
    *[
        Spec(
            f.__name__,
            f,
            {"theta": THR, "d": d},
            arrays={"theta": "fixed"},
            ints={"d": 1},
            bad=[("theta", THR[:-1]), ("d", d + 1, "theta")],
        )
        for f in (rg.effective_matrix, rg.unpack_theta, rg.to_full)
    ],
    Spec(
        "pack_theta",
        rg.pack_theta,
        {"u": 0.1, "U": MR},
        arrays={"U": "fixed"},
        reals=("u",),
        bad=[("U", MR[:1])],
    ),
    Spec(
        "from_full",
        rg.from_full,
        {"P": PF, "Q": QF},
        arrays={"P": "fixed", "Q": "fixed"},
        bad=[("P", PF[:-1]), ("Q", QF[:, :-1])],
    ),
    Spec(
        "zfb_init",
        rg.zfb_init,
        {"d": d, "sigma": 0.1, "rng": _rng()},
        reals=("sigma",),
        ints={"d": 1},
        bad=[("sigma", 0.0), ("rng", 0)],
    ),
    Spec(
        "predict_limit",
        rg.predict_limit,
        {"obj": OBJ, "theta0": THR},
        arrays={"theta0": "fixed"},
        bad=[("obj", None), ("obj", DS), ("theta0", THR[:-1])],
    ),
    Spec(
        "regression.richness",
        rg.richness,
        {"obj": OBJ, "theta": THR},
        arrays={"theta": "fixed"},
        reals=("rtol",),
        bad=[("obj", None), ("theta", THR[:-1]), ("rtol", -1.0)],
    ),
    # --- dynamics.regression: the data laws (weight law, covariate law, gamma shape) -----------------
    Spec(
        "radial_moments",
        rg.radial_moments,
        {"d": d, "covariates": "gamma", "gamma_shape": 0.5},
        reals=("gamma_shape",),
        ints={"d": 1},
        bad=[b for b in _LAW_BAD if b[0] != "law"],
    ),
    Spec(
        "weight_covariance",
        rg.weight_covariance,
        {"Lambda": LAMBDA, "law": "sigma_inverse"},
        arrays={"Lambda": "fixed"},
        bad=[
            ("Lambda", -LAMBDA),
            ("Lambda", LAMBDA + [[0, 1], [0, 0]]),
            ("Lambda", LAMBDA[:1]),
            ("Lambda", E00),
        ]
        + [b for b in _LAW_BAD if b[0] == "law"],
    ),
    Spec(
        "fourth_moment",
        rg.fourth_moment,
        {"Lambda": LAMBDA, "W": W_SI, "covariates": "gamma", "gamma_shape": 0.5},
        arrays={"Lambda": "fixed", "W": "fixed"},
        reals=("gamma_shape",),
        bad=[("W", W_SI[:1]), ("W", np.eye(3)), ("Lambda", -LAMBDA), ("Lambda", E00)]
        + [b for b in _LAW_BAD if b[0] != "law"],
    ),
    *[
        Spec(
            f.__name__,
            f,
            {"Lambda": LAMBDA, "N": 5, **_LAW_GAMMA},
            arrays={"Lambda": "fixed"},
            reals=("gamma_shape",),
            ints={"N": 1},
            bad=[
                ("Lambda", -LAMBDA),
                ("Lambda", LAMBDA + [[0, 1], [0, 0]]),
                ("Lambda", LAMBDA[:1]),
                *_LAW_BAD,
            ],
        )
        for f in (rg.law_second_moment, rg.one_layer_optimum, rg.one_layer_minimum)
    ],
    Spec(
        "population_objective-laws",
        rg.population_objective,
        {"Lambda": LAMBDA, "N": 5, **_LAW_GAMMA},
        arrays={"Lambda": "fixed"},
        reals=("gamma_shape",),
        ints={"N": 1},
        bad=[("Lambda", LAMBDA[:1]), *_LAW_BAD],
    ),
    Spec(
        "population_loss-laws",
        rg.population_loss,
        {"M": M_SI, "Lambda": LAMBDA, "N": 5, **_LAW_GAMMA},
        arrays={"M": "fixed", "Lambda": "fixed"},
        reals=("gamma_shape",),
        ints={"N": 1},
        bad=[("M", M_SI[:1]), *_LAW_BAD],
    ),
    Spec(
        "sample_prompts-laws",
        rg.sample_prompts,
        {"F": 8, "N": 5, "Lambda": LAMBDA, "rng": _rng(), **_LAW_GAMMA},
        arrays={"Lambda": "fixed"},
        reals=("gamma_shape",),
        ints={"F": 1, "N": 1},
        bad=[("F", 7), ("rng", 0), *_LAW_BAD],
    ),
    # --- pretraining entry points ------------------------------------------------------------------
    *[
        Spec(f.__name__, f, {"cfg": PCFG}, bad=[("cfg", None), ("cfg", {}), ("cfg", dy.TeacherSpec())])
        for f in (ep.init_start, ep.training_batch, ep.heldout_batch)
    ],
    Spec(
        "PretrainConfig",
        ep.PretrainConfig,
        {"steps": 10, "lr": 1e-3, "tau": 1.0},
        reals=("lr", "tau"),
        ints={"steps": 1, "warmup": 0, "heads": 1},
        bad=[
            ("warmup", 11),
            ("algo", "nope"),
            ("schedule", "x"),
            ("horizon", "x"),
            ("attention", "gelu"),
            ("attention", None),
            ("attention", "Linear"),
        ],  # fmt: skip
    ),
    # --- the TD family (constructions) ---------------------------------------------------------------
    Spec(
        "td_lambda",
        constructions.td_lambda,
        {"d": d, "alpha": 0.2, "lam": 0.5},
        reals=("alpha", "lam"),
        ints={"d": 1},
        bad=[("lam", 1.5), ("lam", -0.1), ("alpha", 0.0)],
    ),
    Spec(
        "td_precond",
        constructions.td_precond,
        {"d": d, "alpha": 0.2, "C": C2},
        arrays={"C": "batched"},  # a (d, d) preconditioner or a sequence of them (one per layer)
        reals=("alpha",),
        ints={"d": 1},
        bad=[("C", C2[:1]), ("C", C2[:, :1])],
    ),
    *[
        Spec(f.__name__, f, {"d": d, "alpha": 0.2}, reals=("alpha",), ints={"d": 1}, bad=[("alpha", 0.0)])
        for f in (constructions.residual_gradient, constructions.td_average_reward)
    ],
    Spec("running_mean_mask", constructions.running_mean_mask, {"n": n}, ints={"n": 1, "n_queries": 1}),
    Spec(
        "average_reward_prompt",
        constructions.average_reward_prompt,
        {"phi": F, "phi_next": FN, "r": RW, "phi_query": PQ},
        arrays={"phi": "fixed", "phi_next": "fixed", "r": "fixed", "phi_query": "fixed"},
        bad=[("phi_next", FN[:-1]), ("r", RW[:-1]), ("phi_query", PQ[:-1])],
    ),
    Spec(
        "average_reward_stack",
        constructions.average_reward_stack,
        {"Z": ZA, "layers": LAYERS_AR},
        arrays={"Z": "fixed"},
        bad=[("layers", []), ("layers", None), ("layers", [(C2,)]), ("Z", ZA[:, :1])],
    ),
    *[
        Spec(
            f.__name__,
            f,
            {"phi": F, "phi_next": FN, "r": RW, **extra},
            arrays={"phi": "fixed", "phi_next": "fixed", "r": "fixed"},
            reals=tuple(extra),
            ints={"n_iter": 1},
            bad=[("phi", F[:-1]), ("phi_next", FN[:, :-1]), ("r", [])] + bads,
            objects_ok=True,
        )
        for f, extra, bads in (
            (constructions.naive_average_reward_td, {"alpha": 0.2}, []),
            (
                constructions.naive_batch_td_lambda,
                {"gamma": 0.5, "alpha": 0.2, "lam": 0.5},
                [("lam", 1.5), ("gamma", 1.0)],
            ),
            (constructions.naive_residual_gradient, {"gamma": 0.5, "alpha": 0.2}, [("gamma", 1.0)]),
        )
    ],
    Spec(
        "naive_precond_td",
        constructions.naive_precond_td,
        {"phi": F, "phi_next": FN, "r": RW, "gamma": 0.5, "alpha": 0.2, "Cs": [C2]},
        arrays={"phi": "fixed", "phi_next": "fixed", "r": "fixed"},
        reals=("gamma", "alpha"),
        bad=[("Cs", []), ("Cs", None), ("Cs", [C2[:1]]), ("gamma", 1.0)],
        objects_ok=True,
    ),
    # --- lsa_theory.constructions.conventions: [Ahn], [vO] and [W] parameterisations ------------------
    Spec(
        "conventions.from_ahn",
        cv.from_ahn,
        {"P_ahn": PA, "Q_ahn": QA},
        arrays={"P_ahn": "fixed", "Q_ahn": "fixed"},
        bad=[("Q_ahn", QA[:1]), ("Q_ahn", PO), ("P_ahn", PA[:, :1]), ("P_ahn", E00), ("Q_ahn", E00)],
    ),
    Spec(
        "conventions.to_ahn",
        cv.to_ahn,
        {"P": PO, "Q": QO},
        arrays={"P": "fixed", "Q": "fixed"},
        bad=[
            ("P", PO[:, :-1]),
            ("Q", QO[:-1, :-1]),
            ("P", 2 * PO),  # P[d, d] = 2: not in [Ahn]'s family
            ("P", PO + np.eye(3)[:, ::-1]),  # nonzero last row/column of P
            ("Q", QO + np.eye(3)),  # nonzero Q[d, d]
            ("P", np.ones((1, 1))),
            ("P", E00),
        ],
    ),
    Spec(
        "conventions.from_von_oswald",
        cv.from_von_oswald,
        {**VO, "N": 4},
        arrays=dict.fromkeys(VO, "fixed"),
        ints={"N": 1},
        bad=[("W_Q", VO["W_Q"][:-1, :-1]), ("P_vo", VO["P_vo"][:, :-1]), ("W_K", E00), ("W_V", E00)],
    ),
    Spec(
        "conventions.to_von_oswald",
        cv.to_von_oswald,
        {"P": PO, "Q": QO, "N": 4},
        arrays={"P": "fixed", "Q": "fixed"},
        ints={"N": 1},
        bad=[("Q", QO[:-1, :-1]), ("P", PO[:, :-1]), ("P", E00)],
    ),
    Spec(
        "conventions.from_incontexttd",
        cv.from_incontexttd,
        {"P_w": PW, "Q_w": QW, "alpha": 0.3},
        arrays={"P_w": "fixed", "Q_w": "fixed"},
        reals=("alpha",),
        bad=[("Q_w", QW[:-1, :-1]), ("P_w", PW[:-1]), ("P_w", E00)],
    ),
    Spec(
        "conventions.to_incontexttd",
        cv.to_incontexttd,
        {"P": PW, "Q": QW},
        arrays={"P": "fixed", "Q": "fixed"},
        bad=[("Q", QW[:-1, :-1]), ("P", PW[:-1]), ("P", E00)],
    ),
    Spec(
        "conventions.flip_value_row",
        cv.flip_value_row,
        {"Z": ZA},
        arrays={"Z": "fixed"},
        bad=[("Z", np.zeros((0, 3))), ("Z", E00)],
    ),
    Spec(
        "conventions.from_incontexttd_average_reward",
        cv.from_incontexttd_average_reward,
        {"P1": P1W, "P2": P2W, "W": WAW, "Q_w": QAW, "alpha": 0.3},
        arrays={"P1": "fixed", "P2": "fixed", "W": "fixed", "Q_w": "fixed"},
        reals=("alpha",),
        bad=[
            ("W", WAW[:, :-1]),
            ("W", WAW.T),
            ("P2", P2W[:-1, :-1]),
            ("Q_w", QAW[:, :-1]),
            ("P1", P1W[:-1]),
            ("P1", E00),
            ("W", E00),
        ],
    ),
    Spec(
        "conventions.to_incontexttd_average_reward",
        cv.to_incontexttd_average_reward,
        {"heads": HEADS},
        bad=[
            ("heads", None),
            ("heads", ()),
            ("heads", HEADS[:1]),
            ("heads", (*HEADS, HEADS[0])),
            ("heads", "ab"),
            ("heads", (HEADS[0], (HEADS[1][0], 2 * HEADS[1][1]))),  # Q_r != Q_v: [W] share one Q
            ("heads", _heads_with(1, 0, HEADS[1][0][:-1, :-1]), "P_v"),
            ("heads", _heads_with(0, 0, HEADS[0][0][:, :-1]), "P_r"),
            ("heads", _heads_with(0, 1, HEADS[0][1][:-1]), "Q_r"),
            ("heads", (((E00, E00), (E00, E00))), "P_r"),
            *_HEADS_BAD,
        ],
    ),
    # --- [W]'s TD pretraining (WP1)-(WP3) ---------------------------------------------------------------
    Spec(
        "td_pretrain.values",
        tp.values,
        {"Z": ZW, "Ps": PSW, "Qs": QSW},
        arrays={"Z": "batched", "Ps": "fixed", "Qs": "fixed"},
        bad=[("Ps", PSW[:, :4]), ("Qs", QSW[:1]), ("Z", ZW[..., :4, :])],
    ),
    *[
        Spec(
            f"td_pretrain.{f.__name__}",
            f,
            {"Z": ZW, "rq": RQ, "Ps": PSW, "Qs": QSW, "gamma": 0.9},
            arrays={"Z": "fixed", "rq": "fixed", "Ps": "fixed", "Qs": "fixed"},
            reals=("gamma",),
            bad=[("rq", RQ[:, :1]), ("Qs", QSW[:1]), ("gamma", 1.0), ("mask", np.ones((4, 4)))],
        )
        for f in (tp.value_and_td_direction, tp.td_direction_error_bound)
    ],
    Spec(
        "td_pretrain.orbit_averaged_direction",
        tp.orbit_averaged_direction,
        {"Z": ZW, "rq": RQ, "Ps": PSW, "Qs": QSW, "gamma": 0.9, "group": tp.signed_permutations(2)},
        arrays={"Z": "fixed", "rq": "fixed", "Ps": "fixed", "Qs": "fixed", "group": "fixed"},
        reals=("gamma",),
        bad=[("group", 2 * tp.signed_permutations(2)), ("group", tp.signed_permutations(3))],
    ),
    Spec("td_pretrain.lift", tp.lift, {"g": C2}, arrays={"g": "batched"}, bad=[("g", C2[:1])]),
    Spec(
        "td_pretrain.fix_coordinates",
        tp.fix_coordinates,
        {"M": MW},
        arrays={"M": "batched"},
        bad=[("M", MW[:4, :4])],
    ),
    Spec(
        "td_pretrain.fix_from_coordinates",
        tp.fix_from_coordinates,
        {"c": np.arange(5.0), "d": 2},
        arrays={"c": "batched"},
        ints={"d": 1},
        bad=[("c", np.arange(4.0))],
    ),
    *[
        Spec(
            f"td_pretrain.{f.__name__}",
            f,
            {"M": MW, "group": "signed"},
            arrays={"M": "batched"},
            bad=[("M", MW[:4, :4]), ("group", "odd")],
        )
        for f in (tp.fix_project, tp.fix_outside)
    ],
    Spec(
        "td_pretrain.stationary_distribution",
        tp.stationary_distribution,
        {"P": _TPT.P},
        arrays={"P": "batched"},
        bad=[("P", 2 * _TPT.P), ("P", _TPT.P[..., :3])],
    ),
    Spec(
        "td_pretrain.stationary_point",
        dtp.stationary_point,
        {"f": FW, "rq": RFW, "gamma": 0.9},
        arrays={"f": "fixed", "rq": "fixed"},
        reals=("gamma",),
        bad=[("f", FW[:, :1]), ("rq", RFW[:, :1]), ("f", FW[..., :1])],
    ),
    Spec(
        "td_pretrain.fix_update",
        dtp.fix_update,
        {"coords": np.array([1.0, -0.3, 0.1]), "A": AW, "b": BW, "d": 2},
        arrays={"coords": "fixed", "A": "fixed", "b": "fixed"},
        ints={"d": 1},
        bad=[("coords", np.ones(2)), ("A", np.eye(3)), ("b", np.ones(3))],
    ),
    Spec(
        "td_pretrain.fix_flow",
        dtp.fix_flow,
        {"start": np.array([1.0, -0.3, 0.1]), "A": AW, "b": BW, "d": 2, "t_max": 1.0},
        arrays={"start": "fixed", "A": "fixed", "b": "fixed"},
        reals=("t_max", "rtol", "atol"),
        ints={"d": 1},
        bad=[("t_max", 0.0), ("start", np.ones(4))],
    ),
    Spec(
        "td_pretrain.distances",
        dtp.distances,
        {"Ps": PSW[:1], "Qs": QSW[:1], "c_star": np.array([1.5, 0.1])},
        arrays={"Ps": "fixed", "Qs": "fixed", "c_star": "fixed"},
        none_ok=("c_star",),
        bad=[("Ps", PSW[:1, :4, :4]), ("c_star", np.ones(3))],
    ),
    Spec(  # NaN and inf are kept (a non-finite output is a failing residual), so explicit bads only
        "relative_residual",
        constructions.relative_residual,
        {"out": RW, "ref": RW + 0.1},
        bad=[("ref", RW[:-1])]
        + [
            (name, v)
            for name in ("out", "ref")
            for v in (
                None,
                RW + 0j,
                RW + 1e-3j,
                RW > 0,
                RW.astype(object),
                np.full(n, "x"),
                torch.tensor(RW + 1j),
            )
        ],
    ),
]


BAD = [(s, a, v, m, f"fuzz-{i}") for s, a, v, m, i in _bad_cases(API_SPECS)]
#: Number of generated bad-input cases of this module (ids ``fuzz-...``), to exclude from quoted counts;
#: written out and checked against the parametrised ids by tests/test_docs.py (docs/inputs.md quotes it).
FUZZ_CASES = 2934


@pytest.mark.parametrize("spec", API_SPECS, ids=[f"good-{s.name}" for s in API_SPECS])
def test_good_call_works(spec):
    """The base call of every spec is valid (so each bad case changes one argument of a good call)."""
    _call(spec)


@pytest.mark.parametrize(
    ("spec", "name", "value", "named"), [pytest.param(s, a, v, m, id=i) for s, a, v, m, i in BAD]
)
def test_bad_input_raises_value_error_naming_the_argument(spec, name, value, named):
    assert_refused(spec, name, value, named)


def test_case_ids_unique():
    ids = [c[-1] for c in BAD]
    assert len(ids) == len(set(ids)) and FUZZ_CASES == len(ids) > 1000

r"""The configuration of (P2) pretraining against (P1) teacher mimicking (:class:`PretrainConfig`)
and the MDPs it trains and is scored on: the training batch (:func:`training_batch`), the held-out
batch (:func:`heldout_batch`, drawn as :func:`lsa_theory.experiments.control.deploy` draws) and the
start of training (:func:`init_start`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

import lsa_theory as lt
from lsa_theory import constructions
from lsa_theory.checks import check_int, check_real

from ..attention import init_heads
from ..control import ALGOS as _CLOSED_LOOP_ALGOS
from ..envs import heldout_rng
from ..io import to_jsonable
from ..training import TrainConfig, init_params
from . import expected_loop as el

__all__ = [
    "HORIZONS",
    "ALGOS",
    "INITS",
    "PretrainConfig",
    "training_batch",
    "heldout_batch",
    "init_start",
]


HORIZONS = ("final", "mean")

#: The algorithms (P2) runs on: every registered closed-loop declaration
#: (:class:`lsa_theory.constructions.ClosedLoopAlgorithm`; the CLI offers them as ``--algo``), the
#: deployment's :data:`lsa_theory.experiments.control.ALGOS`.
ALGOS = _CLOSED_LOOP_ALGOS

#: Defaults of the fields added with the actor-critic layout, for checkpoints written before them.
_LATER_FIELDS = {"algo": "sarsa", "beta": 0.1}
INITS = ("random", "constructed")


@dataclass(frozen=True)
class PretrainConfig:
    """One (P2)-vs-(P1) comparison. ``algo``: the registered closed-loop algorithm (:data:`ALGOS`;
    ``"sarsa"`` (S2)-(S6), ``"actor_critic"`` (A1)-(A5)) whose layout, teacher, construction and
    policies are used, all read off its declaration. Environment: S x A MDPs of the [LL] family
    (gamma 0.5), the declaration's default dims (SARSA d = S A; actor-critic d = S, d_pi = S A),
    context length ``n``; ``alpha`` (and ``beta`` with an actor), ``epsilon``: the teacher of
    (P1), the constructed block (S3)/(A3) and the sampled deployment (S6)/(A5) (``epsilon`` and
    ``tau`` unused with an actor, which acts with ``pi_lambda``). (P2): ``T`` expected-loop updates,
    softmax temperature ``tau``, ``horizon``, ``k`` training MDPs (``batch_mdps`` per step, ``None``
    all), Adam ``steps`` at ``lr`` -> ``lr_final`` (``schedule``, ``warmup``) from ``init``
    (:func:`init_start`). (P1): ``teacher_steps`` steps on ``min(k, teacher_k)`` MDPs x ``frames``
    teacher frames (:func:`lsa_theory.experiments.training.train`; the cap keeps its frames in memory).
    ``tau`` defaults to 0.3 at d = 36 and 0.1 in ``quick()`` at d = 4: about 0.05 sqrt(d), so that
    ``Q_{w_0} / tau`` (std ``sqrt(d) / 3 / tau``) has the same spread at both sizes. Comparison:
    ``heldout_k`` held-out MDPs with fresh features (seed ``seed``, scheme of
    :func:`lsa_theory.experiments.envs.heldout_rng`), sampled loops of ``eval_updates`` updates (default
    ``T``; the curves run to ``curve_updates``)."""

    S: int = 9
    A: int = 4
    n: int = 20
    gamma: float = 0.5
    alpha: float = 0.2
    epsilon: float = 0.1
    algo: str = "sarsa"
    beta: float = 0.1
    tau: float = 0.3
    T: int = 20
    horizon: str = "final"
    k: int = 16384
    batch_mdps: int | None = 256
    mode: str = "full"
    init: str = "random"
    steps: int = 1000
    lr: float = 3e-3
    lr_final: float = 1e-4
    schedule: str = "exp"
    warmup: int = 0
    adam_eps: float = 1e-12
    init_scale: float = 1e-2
    seed: int = 0
    log_every: int = 50
    checkpoint_every: int = 50
    frames: int = 10
    teacher_k: int = 1024
    teacher_steps: int = 3000
    teacher_batch: int | None = 1000
    teacher_lr: float = 1e-2
    teacher_lr_final: float = 1e-6
    heldout_k: int = 100
    eval_updates: int | None = None
    curve_updates: int = 100
    eval_every: int = 5
    heads: int = 1
    attention: str = "linear"

    def __post_init__(self) -> None:
        for name in ("S", "A", "n", "T", "k", "steps", "log_every", "checkpoint_every", "frames"):
            check_int(getattr(self, name), name)
        for name in ("teacher_k", "teacher_steps", "heldout_k", "curve_updates", "eval_every"):
            check_int(getattr(self, name), name)
        check_int(self.warmup, "warmup", minimum=0)
        if self.warmup > self.steps:  # the learning rate would never reach lr (issue 24, item 23)
            raise ValueError(f"warmup: must be <= steps = {self.steps}, got {self.warmup}")
        check_int(self.seed, "seed", minimum=0)
        if self.batch_mdps is not None:
            check_int(self.batch_mdps, "batch_mdps")
        if self.eval_updates is not None:
            check_int(self.eval_updates, "eval_updates")
        check_real(self.tau, "tau", low=0.0, low_open=True)
        for name in ("lr", "lr_final", "teacher_lr", "teacher_lr_final", "init_scale", "adam_eps"):
            check_real(getattr(self, name), name, low=0.0, low_open=True)
        constructions.closed_loop_algorithm(
            self.algo
        )  # ValueError naming ``algo`` unless a closed-loop declaration
        check_real(self.beta, "beta", low=0.0, low_open=True)
        if self.horizon not in HORIZONS:
            raise ValueError(f"horizon: expected one of {HORIZONS}, got {self.horizon!r}")
        if self.init not in INITS:
            raise ValueError(f"init: expected one of {INITS}, got {self.init!r}")
        if self.mode not in ("full", "effective"):
            raise ValueError(f"mode: expected 'full' or 'effective', got {self.mode!r}")
        if self.schedule not in ("constant", "exp", "cosine"):
            raise ValueError(f"schedule: expected 'constant', 'exp' or 'cosine', got {self.schedule!r}")
        check_int(self.heads, "heads")
        if not isinstance(self.attention, str) or self.attention not in lt.ATTENTIONS:
            raise ValueError(f"attention: expected one of {lt.ATTENTIONS}, got {self.attention!r}")
        if (self.heads, self.attention) != (1, "linear") and self.alg.has_actor:
            raise ValueError(
                f"attention, heads: the sampled route is SARSA's (d_pi = 0), got algo {self.algo!r}"
            )
        if self.heads > 1 and self.mode != "full":
            raise ValueError(
                f"mode: {self.heads} heads need mode 'full' (every entry of each head), got {self.mode!r}"
            )
        self.teacher_config()  # validates the shared fields

    @property
    def alg(self) -> constructions.ClosedLoopAlgorithm:
        """The declaration of ``algo``."""
        return constructions.ALGORITHMS[self.algo]

    @property
    def dims(self):
        """The declaration's default ``(d, d_pi)`` at ``(S, A)``."""
        return self.alg.dims(self.S, self.A)

    @property
    def layout(self) -> lt.Layout:
        return self.dims.layout

    @property
    def hyper(self) -> dict:
        """The teacher's hyperparameters ``gamma``, ``alpha``, ``beta`` (``beta`` only with an actor)."""
        return {"gamma": self.gamma, "alpha": self.alpha, "beta": self.beta}

    @property
    def T_eval(self) -> int:
        return self.T if self.eval_updates is None else self.eval_updates

    def teacher_config(self) -> TrainConfig:
        """The (P1) run: :class:`~lsa_theory.experiments.training.TrainConfig` on ``k`` MDPs x ``frames``
        frames with this environment, float64; its ``init_params`` is also the (P2) start."""
        return TrainConfig(
            algorithm=self.algo,
            beta=self.beta,
            S=self.S,
            A=self.A,
            n=self.n,
            gamma=self.gamma,
            alpha=self.alpha,
            epsilon=self.epsilon,
            k=min(self.k, self.teacher_k),
            frames=self.frames,
            heldout_k=min(self.heldout_k, 50),
            mode=self.mode,
            lr=self.teacher_lr,
            lr_final=self.teacher_lr_final,
            steps=self.teacher_steps,
            batch_size=self.teacher_batch,
            init_scale=self.init_scale,
            dtype="float64",
            seed=self.seed,
            log_every=max(1, self.teacher_steps // 10),
            checkpoint_every=max(1, self.teacher_steps // 4),
        )

    def replace(self, **changes) -> PretrainConfig:
        return replace(self, **changes)

    @property
    def linear_block(self) -> bool:
        """One linear head (the defaults): the (L1) block whose (L2) readout the expected-context
        loop uses."""
        return (self.heads, self.attention) == (1, "linear")

    @property
    def exact_loop(self) -> bool:
        """Linear heads (any ``heads``): the block whose readout is affine in ``Sigma`` (the sum of the
        heads' (L2) readouts), which the expected-context loop of :func:`lsa_theory.experiments.pretrain.
        train_rl` runs exactly; a nonlinear ``attention`` is trained on sampled loops only."""
        return self.attention == "linear"

    def as_dict(self) -> dict:
        """The fields as JSON; ``heads`` and ``attention`` only when not at their defaults (1,
        ``"linear"``), so the documents and checkpoints of the one-linear-head block stay as before."""
        doc = asdict(self)
        if self.linear_block:
            del doc["heads"], doc["attention"]
        return to_jsonable(doc)

    @classmethod
    def full(cls) -> PretrainConfig:
        """The full run: S x A = 9 x 4 (d = 36), the defaults above."""
        return cls()

    @classmethod
    def quick(cls) -> PretrainConfig:
        """S = A = 2 (d = 4, D = 14), tau = 0.1, T = 10, 1024 training MDPs in minibatches of 128,
        150 (P2) steps; (P1) on 256 MDPs x 10 frames, 1000 full-batch steps; 100 held-out MDPs,
        curves to 40 updates (the ``--quick`` run)."""
        return cls(
            S=2,
            A=2,
            tau=0.1,
            T=10,
            k=1024,
            batch_mdps=128,
            steps=150,
            lr=3e-2,
            lr_final=1e-3,
            log_every=25,
            checkpoint_every=50,
            teacher_k=256,
            teacher_steps=1000,
            teacher_batch=None,
            teacher_lr_final=1e-4,
            heldout_k=100,
            curve_updates=40,
        )


def _check_cfg(cfg) -> PretrainConfig:
    if not isinstance(cfg, PretrainConfig):
        raise ValueError(f"cfg: expected a PretrainConfig, got {type(cfg).__name__}")
    return cfg


def training_batch(cfg: PretrainConfig) -> tuple[el.MDPBatch, list[lt.TabularMDP]]:
    """The ``k`` (P2) training MDPs, features and starts:
    :func:`lsa_theory.experiments.pretrain.expected_loop.draw_batch` of ``cfg.algo`` with
    ``default_rng([seed, 5])`` (a stream the (P1) data and held-out MDPs never use)."""
    _check_cfg(cfg)
    return el.draw_batch(cfg.k, cfg.S, cfg.A, cfg.gamma, np.random.default_rng([cfg.seed, 5]), algo=cfg.algo)


def heldout_batch(cfg: PretrainConfig) -> tuple[el.MDPBatch, list[lt.TabularMDP]]:
    """Held-out MDP ``i``: ``random_mdp(S, A, gamma, heldout_rng(seed, i))``, then its task draws
    (:func:`lsa_theory.experiments.pretrain.expected_loop.draw_task`: critic table, ``w_0``, actor table) from
    ``heldout_rng(seed, i, 1)`` in the order :func:`lsa_theory.experiments.control.deploy` draws them, so the
    smooth and the sampled evaluations start from the same tables and parameters."""
    _check_cfg(cfg)
    mdps, draws = [], []
    for i in range(cfg.heldout_k):
        mdps.append(lt.random_mdp(cfg.S, cfg.A, cfg.gamma, heldout_rng(cfg.seed, i)))
        draws.append(el.draw_task(cfg.algo, cfg.S, cfg.A, heldout_rng(cfg.seed, i, 1)))
    return el.batch_of(mdps, draws, cfg.algo), mdps


def init_start(cfg: PretrainConfig) -> dict[str, torch.Tensor]:
    """The (P2) start: :func:`lsa_theory.experiments.training.init_params` of ``cfg.teacher_config()``
    (``init="random"``: the (P1) block's start, entries ``init_scale * N(0, 1)``), plus the
    construction of the declaration ((S3), or (A3) with ``beta``) for ``init="constructed"`` (a
    warm start on the teacher's block: does return maximisation keep, rescale or leave its
    structure?).

    With ``heads = H > 1`` (linear heads, mode ``"full"``): ``{"P", "V"}`` (H, D, D), the heads of
    :func:`lsa_theory.experiments.attention.init_heads` (``init_scale``, seed ``cfg.seed``), the start of
    (P1) of the same block (:func:`lsa_theory.experiments.pretrain.sampled.train_teacher_heads` with
    ``init_seed = seed``); ``init="constructed"`` adds ``(P*, V*/H)`` of the construction to every head,
    so that the heads' summed readout starts at the construction's."""
    _check_cfg(cfg)
    if cfg.heads > 1:
        heads = init_heads(cfg.layout.D, cfg.heads, cfg.init_scale, cfg.seed)
        P = torch.stack([p.detach() for p, _ in heads])
        V = torch.stack([v.detach() for _, v in heads])
        if cfg.init == "constructed":
            Pc, Vc = (torch.as_tensor(M) for M in cfg.alg.construction_blocks(cfg.dims, cfg.hyper))
            P, V = P + Pc, V + Vc / cfg.heads
        return {"P": P, "V": V}
    params = init_params(cfg.teacher_config())
    if cfg.init == "constructed":
        P, V = (torch.as_tensor(M) for M in cfg.alg.construction_blocks(cfg.dims, cfg.hyper))
        if "P" in params:
            params = {"P": params["P"] + P, "V": params["V"] + V}
        else:
            b = cfg.layout.blocks(P, V)
            params = {"A": params["A"] + b["Vbar21"], "B": params["B"] + b["P12"]}
    return params

"""The configuration :class:`TrainConfig` of a training run of :mod:`lsa_theory.experiments.training`
(Algorithm 1
of [LL] (S6) on the objective (M1)) and the choices it validates against.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

import lsa_theory as lt
from lsa_theory import constructions
from lsa_theory import dynamics as dy
from lsa_theory.checks import check_int, check_real

from ..io import to_jsonable

MODES = ("full", "effective")
INITS = ("random", "invariant")
CRITICS = ("action", "state")
OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "exp", "cosine")
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _check_critic(algorithm: str, critic: str | None) -> None:
    own = constructions.ALGORITHMS[algorithm].critic
    if critic is not None and critic != own:
        raise ValueError(
            f"critic: {algorithm!r} has the {own!r} critic, got {critic!r} (the action-value "
            "actor-critic is 'actor_critic_q', the state-value one 'actor_critic')"
        )


def _seed(seed: int, stream: int) -> int:
    """A 32-bit torch seed for stream ``stream`` of ``seed`` (numpy ``SeedSequence``)."""
    return int(np.random.SeedSequence([seed, stream]).generate_state(1)[0])


@dataclass(frozen=True)
class TrainConfig:
    """One training run. Data fields are those of :class:`lsa_theory.dynamics.TeacherSpec` ([LL] defaults:
    S = 9, A = 4, d = S A = 36, n = 20, gamma = 0.5, alpha = 0.2, epsilon = 0.1, features ``U(-1, 1)``
    resampled per MDP); ``heldout_k`` x ``heldout_frames`` fresh MDPs with fresh features score
    generalisation. Optimisation: ``optimizer`` (``"adam"``/``"sgd"``, ``momentum`` for SGD),
    ``lr`` decayed to ``lr_final`` by ``schedule`` (``"exp"`` geometric, ``"cosine"``,
    ``"constant"``) after a linear ``warmup`` of that many steps; ``batch_size`` frames per step
    (``None``: all); ``init_scale`` the std of the Gaussian initial entries (seeded
    ``torch.Generator``); ``dtype`` ``"float32"``/``"float64"``; ``polish_steps``: the last that many
    steps run in float64 (parameters and optimizer state promoted, data regenerated in float64),
    a trick for float32 runs. ``init``: ``"random"`` (every entry Gaussian) or ``"invariant"``
    (the same draw with ``P22 = 0`` and ``Vbar22 = 0``: a point of the invariant set of (M2), which
    full training must then never leave). ``critic``: ``None`` (the algorithm's own) or its
    name, checked against the declaration (``"state"`` for ``actor_critic``, whose critic is
    ``V_w(s) = w^T psi(s)`` of THEORY §3; ``"action"`` for ``sarsa`` and ``actor_critic_q``; see
    :func:`teacher_data`). Every seed derives from ``seed``."""

    algorithm: str = "sarsa"
    S: int = 9
    A: int = 4
    d: int | None = None
    d_pi: int | None = None
    n: int = 20
    gamma: float = 0.5
    alpha: float = 0.2
    beta: float = 0.1
    epsilon: float = 0.1
    k: int = 1000
    frames: int = 10
    features: str = "uniform"
    shared_features: bool = False
    reward: str = "sa"
    heldout_k: int = 100
    heldout_frames: int = 10
    mode: str = "full"
    optimizer: str = "adam"
    momentum: float = 0.0
    lr: float = 1e-2
    lr_final: float = 1e-6
    schedule: str = "exp"
    warmup: int = 0
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-12
    amsgrad: bool = False
    steps: int = 6000
    batch_size: int | None = 1000
    init_scale: float = 1e-2
    dtype: str = "float32"
    polish_steps: int = 0
    seed: int = 0
    log_every: int = 500
    checkpoint_every: int = 1000
    chunk_mdps: int = 100
    init: str = "random"
    critic: str | None = None

    def __post_init__(self) -> None:
        self.spec()  # validates the data fields (ValueError naming the field)
        self.heldout_spec()
        for name in ("steps", "log_every", "checkpoint_every", "chunk_mdps", "heldout_k", "heldout_frames"):
            check_int(getattr(self, name), name)
        check_int(self.warmup, "warmup", minimum=0)
        if self.warmup > self.steps:  # the learning rate would never reach lr (as PretrainConfig)
            raise ValueError(f"warmup: must be <= steps = {self.steps}, got {self.warmup}")
        check_int(self.polish_steps, "polish_steps", minimum=0)
        check_int(self.seed, "seed", minimum=0)
        if self.polish_steps > self.steps:
            raise ValueError(f"polish_steps: must be <= steps = {self.steps}, got {self.polish_steps}")
        if self.batch_size is not None:
            check_int(self.batch_size, "batch_size")
        if self.mode not in MODES:
            raise ValueError(f"mode: expected one of {MODES}, got {self.mode!r}")
        if self.init not in INITS:
            raise ValueError(f"init: expected one of {INITS}, got {self.init!r}")
        if self.critic is not None and self.critic not in CRITICS:
            raise ValueError(f"critic: expected one of {CRITICS} or None, got {self.critic!r}")
        _check_critic(self.algorithm, self.critic)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer: expected one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule: expected one of {SCHEDULES}, got {self.schedule!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype: expected one of {tuple(DTYPES)}, got {self.dtype!r}")
        check_real(self.lr, "lr", low=0.0, low_open=True)
        check_real(self.lr_final, "lr_final", low=0.0, low_open=True)
        check_real(self.momentum, "momentum", low=0.0, high=1.0, high_open=True)
        check_real(self.init_scale, "init_scale", low=0.0, low_open=True)
        check_real(self.adam_eps, "adam_eps", low=0.0, low_open=True)  # eps = 0 would give 0/0 = NaN
        if not isinstance(self.amsgrad, bool):
            raise ValueError(f"amsgrad: expected a bool, got {self.amsgrad!r}")
        if len(self.adam_betas) != 2:
            raise ValueError(f"adam_betas: expected two numbers, got {self.adam_betas!r}")
        for b in self.adam_betas:
            check_real(b, "adam_betas", low=0.0, high=1.0, high_open=True)

    def spec(self) -> dy.TeacherSpec:
        """The training data's :class:`lsa_theory.dynamics.TeacherSpec`."""
        return dy.TeacherSpec(
            algorithm=self.algorithm,
            S=self.S,
            A=self.A,
            d=self.d,
            d_pi=self.d_pi,
            n=self.n,
            gamma=self.gamma,
            alpha=self.alpha,
            beta=self.beta,
            epsilon=self.epsilon,
            k=self.k,
            frames=self.frames,
            features=self.features,
            shared_features=self.shared_features,
            reward=self.reward,
        )

    def heldout_spec(self) -> dy.TeacherSpec:
        """Held-out data: ``heldout_k`` fresh MDPs, fresh (resampled) features."""
        return self.spec().replace(k=self.heldout_k, frames=self.heldout_frames, shared_features=False)

    @property
    def layout(self) -> lt.Layout:
        return self.spec().layout

    def replace(self, **changes) -> TrainConfig:
        return replace(self, **changes)

    def as_dict(self) -> dict:
        return to_jsonable(asdict(self))

    @classmethod
    def quick(cls, algorithm: str = "sarsa") -> TrainConfig:
        """Small run (< 3 min on 2 cores): S = A = 3 (d = 9, D = 29), 200 MDPs x 10 frames,
        resampled features, Adam, float64."""
        return cls(
            algorithm=algorithm,
            S=3,
            A=3,
            k=200,
            frames=10,
            heldout_k=50,
            steps=6000,
            batch_size=500,
            lr=1e-2,
            lr_final=1e-4,
            dtype="float64",
            log_every=200,
            checkpoint_every=1000,
        )

    @classmethod
    def full(cls) -> TrainConfig:
        """The [LL] configuration: 9 x 4 MDPs, d = 36, 1000 MDPs x 10 frames, resampled features;
        Adam (eps 1e-12), lr 1e-2 decayed geometrically to 1e-6 over 6000 steps, batches of 1000
        frames, float32.

        Measured on this machine (2 cores, idle; seed 0): data 3.5 s, training 48 s; cos >= 0.99
        by step 500 and 1 - 6e-13 at the end, orbit distance 1.1e-6 relative, held-out error
        1.1e-5, loss 1.1e-12. That cosine is over ``(Vbar21, P12)`` only: over every entry of
        (P, V) it is 0.942 (the frozen blocks keep their random start, ``|Vbar22| = 1.05``), and
        with ``P22`` zeroed the held-out error is 1.3e-6 (seeds 0-2: ``docs/experiments.md``).
        The residual is the cubic (L2) term: ``Vbar22`` stays O(1) while
        ``sym(P22)`` decays only slowly (5e-4 at the end), since the optimal set in these blocks
        is the union ``{Vbar22 = 0} u {sym P22 = 0}``. float64 gives the same curve (float32 is not
        the limit); a slower decay (20000 steps to 1e-5) reaches 1e-14 but Adam spikes on the way
        (up to 1e-5 loss); AMSGrad avoids the spikes but ends higher; SGD with momentum 0.9, lr
        0.5 -> 0.05, reaches cos 1 - 2e-7 but held-out error 3e-3 in 6000 steps ((M6)).
        """
        return cls()

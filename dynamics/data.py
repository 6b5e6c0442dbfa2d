r"""Teacher data for teacher mimicking (M1): the loop (S6)/(A5) driven by the exact teacher.

For each of ``k`` MDPs (features resampled per MDP or one map shared by all) the teacher loop
runs ``frames`` updates from ``w_0 ~ U(-1, 1)^d`` (and ``lambda_0 ~ U(-1, 1)^{d_pi}``). Frame
``f`` contributes the sufficient statistics of (L2),

.. math:: \Sigma_f = \tfrac1n \sum_i x_i x_i^\top \in \mathbb R^{m\times m}, \qquad
          \tilde w_f = [1; w_f(; \lambda_f)] \in \mathbb R^{p},

and the target increment :math:`y_f = w_{\rm teacher} - w_f` (stacked with
:math:`\lambda' - \lambda` for actor-critic), so that on ``{P22 = 0, Vbar22 = 0}`` the residual
is :math:`e_f = A \Sigma_f B \tilde w_f - y_f` (M2). The law of the frames does not depend on the
transformer's parameters: the empirical objective freezes this sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import numpy as np

import lsa_theory as lt
from lsa_theory import constructions
from lsa_theory.checks import check_gamma, check_int, check_real
from lsa_theory.constructions import ClosedLoopAlgorithm
from lsa_theory.rollout import DIVERGENCE_BOUND

__all__ = ["TeacherSpec", "TeacherDataset", "teacher_dataset", "closed_loop_algorithms"]


def closed_loop_algorithms() -> tuple[str, ...]:
    """Registered algorithms with a teacher loop (S6)/(A5)
    (:class:`lsa_theory.constructions.ClosedLoopAlgorithm`)."""
    return constructions.ALGORITHMS.with_capability(ClosedLoopAlgorithm)


@dataclass(frozen=True)
class TeacherSpec:
    """What teacher data to generate (docs/theory.md §4). Validated on construction.

    ``algorithm``: a registered :class:`lsa_theory.constructions.ClosedLoopAlgorithm`'s name (default
    ``"sarsa"``) or a declaration instance (a user's, registered or not); the teacher's
    hyperparameters are the declaration's defaults with ``gamma``, ``alpha``, ``beta`` from here;
    ``d=None``/``d_pi=None`` mean the algorithm's defaults
    (:meth:`~lsa_theory.constructions.ClosedLoopAlgorithm.dims`:
    SARSA ``d = S*A``; the state-value actor-critic ``d = S``, ``d_pi = S*A``; the action-value
    variant ``d = S*A``, ``d_pi = d``).
    ``shared_features``: one feature map for all ``k`` MDPs instead of one per MDP.
    ``reward``: ``"sa"`` for ``r(s, a)``, ``"sas"`` for ``r(s, a, s')``.
    """

    algorithm: str | ClosedLoopAlgorithm = "sarsa"
    S: int = 2
    A: int = 2
    d: int | None = None
    n: int = 20
    gamma: float = 0.5
    alpha: float = 0.2
    beta: float = 0.1
    epsilon: float = 0.1
    k: int = 20
    frames: int = 10
    features: str = "uniform"
    shared_features: bool = False
    reward: str = "sa"
    d_pi: int | None = None

    def __post_init__(self) -> None:
        names = closed_loop_algorithms()
        if not isinstance(self.algorithm, ClosedLoopAlgorithm) and (
            not isinstance(self.algorithm, str) or self.algorithm not in names
        ):
            raise ValueError(
                f"algorithm: expected one of {names} or a ClosedLoopAlgorithm, got {self.algorithm!r}"
            )
        for name in ("S", "A", "n", "k", "frames"):
            check_int(getattr(self, name), name)
        if self.d is not None:
            check_int(self.d, "d")
        if self.d_pi is not None:
            check_int(self.d_pi, "d_pi")
        check_gamma(self.gamma)
        check_real(self.alpha, "alpha", low=0.0, low_open=True)
        check_real(self.beta, "beta", low=0.0, low_open=True)
        check_real(self.epsilon, "epsilon", low=0.0, high=1.0)
        if self.features not in lt.FEATURE_KINDS:
            raise ValueError(f"features: expected one of {lt.FEATURE_KINDS}, got {self.features!r}")
        dims = self.alg.dims(self.S, self.A, self.d, self.d_pi)
        if self.features == "onehot":
            need = self.S if self.alg.critic == "state" else self.S * self.A
            if dims.d != need:
                raise ValueError(f"d: one-hot {self.alg.critic} features need d = {need}, got {dims.d}")
            if dims.d_pi not in (0, self.S * self.A):
                raise ValueError(
                    f"d_pi: one-hot features need d_pi = S*A = {self.S * self.A}, got {dims.d_pi}"
                )
        if self.reward not in ("sa", "sas"):
            raise ValueError(f"reward: expected 'sa' or 'sas', got {self.reward!r}")
        if not isinstance(self.shared_features, bool):
            raise ValueError(f"shared_features: expected a bool, got {self.shared_features!r}")

    @property
    def alg(self) -> ClosedLoopAlgorithm:
        """The algorithm's declaration."""
        if isinstance(self.algorithm, ClosedLoopAlgorithm):
            return self.algorithm
        return constructions.ALGORITHMS[self.algorithm]

    @property
    def dims(self) -> constructions.Dims:
        return self.alg.dims(self.S, self.A, self.d, self.d_pi)

    @property
    def hyper(self) -> dict:
        """The teacher's hyperparameters: the declaration's defaults (e.g. a user's ``kappa``), then
        ``gamma``, ``alpha``, ``beta`` (``beta`` only matters with an actor)."""
        return {**self.alg.hyper, "gamma": self.gamma, "alpha": self.alpha, "beta": self.beta}

    @property
    def dim(self) -> int:
        """Critic feature dimension d."""
        return self.dims.d

    @property
    def dim_pi(self) -> int:
        """Actor feature dimension (0 without an actor)."""
        return self.dims.d_pi

    @property
    def layout(self) -> lt.Layout:
        return lt.Layout(self.dim, self.dim_pi)

    def as_dict(self) -> dict:
        """The fields, the algorithm as its name (JSON-able)."""
        return {f.name: getattr(self, f.name) for f in fields(self)} | {"algorithm": self.alg.name}

    def replace(self, **changes) -> TeacherSpec:
        return replace(self, **changes)


@dataclass(frozen=True, eq=False)
class TeacherDataset:
    """Frozen teacher sample: ``Sigma`` (F, m, m), ``wt`` (F, p), ``y`` (F, k_out) targets
    ``teacher - current``, ``mdp`` (F,) index of each frame's MDP, optional raw ``X`` (F, m, n)
    context columns (with scores for actor-critic), ``spec`` and ``layout``."""

    spec: TeacherSpec
    Sigma: np.ndarray
    wt: np.ndarray
    y: np.ndarray
    mdp: np.ndarray
    X: np.ndarray | None = field(default=None, repr=False)

    @property
    def layout(self) -> lt.Layout:
        return self.spec.layout

    @property
    def n_frames(self) -> int:
        return self.Sigma.shape[0]

    def prompts(self):
        """(F, D, n+1) raw prompts (H)/(A1) of every frame (needs ``keep_prompts=True``)."""
        if self.X is None:
            raise ValueError("prompts: the dataset was built with keep_prompts=False")
        d = self.layout.d
        X, g = self.X[:, : 2 * d + 1], self.X[:, 2 * d + 1 :]
        k = self.layout.d_pi
        return self.spec.alg.full_prompt(
            X, g if k else None, self.wt[:, 1 : 1 + d], self.wt[:, 1 + d :] if k else None
        )


def _draw_tables(spec: TeacherSpec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
    """``(phi, phi_pi)`` (S, A, d), (S, A, d_pi) or ``None`` without an actor."""
    return spec.alg.draw_tables(spec.S, spec.A, spec.dims, rng, kind=spec.features)


def _draw_mdp(spec: TeacherSpec, rng: np.random.Generator, shared) -> tuple:
    """One MDP's draws, in the generator order of both paths: ``(mdp, phi, phi_pi, w0, lam0)``."""
    mdp = lt.random_mdp(spec.S, spec.A, spec.gamma, rng, reward=spec.reward)
    phi, phi_pi = shared if shared else _draw_tables(spec, rng)
    w0, lam0 = spec.alg.draw_starts(spec.dims, rng)
    return mdp, phi, phi_pi, w0, lam0


def _frames(loop: lt.LoopResult) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X, wt, y)`` of a loop's frames: X (..., T, m, n), wt (..., T, p), y (..., T, d + d_pi)."""
    params = loop.ws if loop.lams is None else np.concatenate([loop.ws, loop.lams], axis=-1)
    X = loop.Xs if loop.gs is None else np.concatenate([loop.Xs, loop.gs], axis=-2)
    wt = np.concatenate([np.ones(params[..., :-1, :1].shape), params[..., :-1, :]], axis=-1)
    return X, wt, params[..., 1:, :] - params[..., :-1, :]


def _check_teacher(spec: TeacherSpec, loop: lt.LoopResult, first: int = 0) -> lt.LoopResult:
    """ValueError naming ``spec`` when a teacher loop diverged (:func:`lsa_theory.rollout.diverged`
    of its parameters: non-finite or 1-norm above ``DIVERGENCE_BOUND``): such frames are no data.
    ``loop`` holds one MDP (index ``first``) or, batched, MDPs ``first, first + 1, ...``."""
    params = loop.ws if loop.lams is None else np.concatenate([loop.ws, loop.lams], axis=-1)
    params = params.reshape((-1,) + params.shape[-2:])
    with np.errstate(over="ignore", invalid="ignore"):
        norm = np.abs(params).sum(axis=-1)  # (MDPs, T+1): diverged() of every parameter vector at once
    bad = ~np.isfinite(norm) | (norm > DIVERGENCE_BOUND)
    if bad.any():
        j, t = np.argwhere(bad)[0]
        raise ValueError(
            f"spec: the teacher loop of MDP {first + j} diverged at update {t} "
            f"(alpha = {spec.alpha:g}, frames = {spec.frames}); lower alpha or frames"
        )
    return loop


def _loop_one(spec: TeacherSpec, draws: tuple, rng: np.random.Generator) -> lt.LoopResult:
    """The per-MDP teacher loop (S6)/(A5) on one MDP's draws, consuming ``rng``."""
    mdp, phi, phi_pi, w0, lam0 = draws
    return spec.alg.loop(
        mdp,
        constructions.Draws(phi, phi_pi, w0, lam0),
        spec.alg.teacher(spec.hyper),
        n=spec.n,
        n_updates=spec.frames,
        epsilon=spec.epsilon,
        rng=rng,
    )


def _loop_batched(spec: TeacherSpec, runs: list, shared) -> lt.LoopResult:
    """The teacher loops of all MDPs at once from their draws and pre-drawn uniforms."""
    mdps, phis, phi_pis, w0s, lam0s, U = zip(*runs, strict=True)
    if any(m.reward_noise > 0 for m in mdps):  # noise would change the draw count; never drawn here
        raise ValueError("teacher_dataset: the vectorised loop needs noiseless rewards")
    phi, phi_pi = shared if shared else (np.stack(phis), None if phi_pis[0] is None else np.stack(phi_pis))
    lam0 = None if lam0s[0] is None else np.stack(lam0s)
    return spec.alg.loop_batched(
        np.stack([m.P for m in mdps]),
        np.stack([m.r for m in mdps]),
        np.stack([m.mu0 for m in mdps]),
        spec.gamma,
        phi,
        phi_pi,
        np.stack(w0s),
        lam0,
        spec.alg.teacher(spec.hyper),
        np.stack(U),
        n=spec.n,
        n_updates=spec.frames,
        epsilon=spec.epsilon,
    )


def teacher_dataset(
    spec: TeacherSpec, rng: np.random.Generator, keep_prompts: bool = False, vectorised: bool = True
) -> TeacherDataset:
    """Run the algorithm's teacher loop ((S6) or (A5)) over ``spec.k`` MDPs x
    ``spec.frames`` updates and return its sufficient statistics (L2) and targets.

    ``vectorised=True`` steps the ``k`` loops together (:func:`lsa_theory.sarsa_loop_batched`,
    :func:`lsa_theory.actor_critic_loop_batched`) from uniforms drawn, per MDP, where its loop
    would run; ``vectorised=False`` runs one MDP at a time. Both give the same dataset bit for bit.
    """
    if not isinstance(spec, TeacherSpec):
        raise ValueError(f"spec: expected a TeacherSpec, got {type(spec).__name__}")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected numpy.random.Generator, got {type(rng).__name__}")
    if not isinstance(vectorised, bool):
        raise ValueError(f"vectorised: expected a bool, got {vectorised!r}")
    shared = _draw_tables(spec, rng) if spec.shared_features else None
    n_draws = lt.loop_draws(spec.n, spec.frames)
    runs, parts = [], []
    for _ in range(spec.k):
        draws = _draw_mdp(spec, rng, shared)
        if vectorised:
            runs.append((*draws, rng.random(n_draws)))
        else:
            parts.append(_frames(_check_teacher(spec, _loop_one(spec, draws, rng), len(parts))))
    if vectorised:
        loop = _check_teacher(spec, _loop_batched(spec, runs, shared))
        X, wt, y = (a.reshape((-1,) + a.shape[2:]) for a in _frames(loop))
    else:
        X, wt, y = (np.concatenate(a) for a in zip(*parts, strict=True))
    return TeacherDataset(
        spec=spec,
        Sigma=lt.sufficient_statistics(X),
        wt=wt,
        y=y,
        mdp=np.repeat(np.arange(spec.k), spec.frames),
        X=X if keep_prompts else None,
    )

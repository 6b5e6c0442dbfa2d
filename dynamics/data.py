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

from dataclasses import asdict, dataclass, field, replace

import numpy as np

import lsa_theory as lt
from lsa_theory._checks import check_gamma, check_int, check_real

__all__ = ["TeacherSpec", "TeacherDataset", "teacher_dataset"]

ALGORITHMS = ("sarsa", "actor_critic")


@dataclass(frozen=True)
class TeacherSpec:
    """What teacher data to generate (THEORY.md §4). Validated on construction.

    ``d=None`` means ``S*A`` (required for one-hot features); ``d_pi=None`` means ``d``.
    ``shared_features``: one feature map for all ``k`` MDPs instead of one per MDP.
    ``reward``: ``"sa"`` for ``r(s, a)``, ``"sas"`` for ``r(s, a, s')``.
    """

    algorithm: str = "sarsa"
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
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm: expected one of {ALGORITHMS}, got {self.algorithm!r}")
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
        if self.features == "onehot" and self.d not in (None, self.S * self.A):
            raise ValueError(f"d: one-hot features need d = S*A = {self.S * self.A}, got {self.d}")
        if self.features == "onehot" and self.d_pi not in (None, self.S * self.A):
            raise ValueError(f"d_pi: one-hot features need d_pi = S*A = {self.S * self.A}, got {self.d_pi}")
        if self.reward not in ("sa", "sas"):
            raise ValueError(f"reward: expected 'sa' or 'sas', got {self.reward!r}")
        if not isinstance(self.shared_features, bool):
            raise ValueError(f"shared_features: expected a bool, got {self.shared_features!r}")

    @property
    def dim(self) -> int:
        """Feature dimension d."""
        return self.S * self.A if self.d is None else self.d

    @property
    def dim_pi(self) -> int:
        """Actor feature dimension (0 for SARSA)."""
        if self.algorithm == "sarsa":
            return 0
        return self.dim if self.d_pi is None else self.d_pi

    @property
    def layout(self) -> lt.Layout:
        return lt.Layout(self.dim, self.dim_pi)

    def as_dict(self) -> dict:
        return asdict(self)

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
        lay = self.layout
        d = lay.d
        X, g = self.X[:, : 2 * d + 1], self.X[:, 2 * d + 1 :]
        if lay.d_pi == 0:
            return lt.sarsa_prompt(X, self.wt[:, 1:])
        return lt.actor_critic_prompt(X, g, self.wt[:, 1 : 1 + d], self.wt[:, 1 + d :])


def teacher_dataset(
    spec: TeacherSpec, rng: np.random.Generator, keep_prompts: bool = False
) -> TeacherDataset:
    """Run the teacher loop (S6) (SARSA) or (A5) (actor-critic) over ``spec.k`` MDPs x
    ``spec.frames`` updates and return its sufficient statistics (L2) and targets."""
    if not isinstance(spec, TeacherSpec):
        raise ValueError(f"spec: expected a TeacherSpec, got {type(spec).__name__}")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected numpy.random.Generator, got {type(rng).__name__}")
    S, A, d, d_pi = spec.S, spec.A, spec.dim, spec.dim_pi

    def features(dim: int) -> np.ndarray:
        return lt.random_features(S, A, dim, rng, kind=spec.features)

    shared = (features(d), features(d_pi) if d_pi else None) if spec.shared_features else None
    Xs, wts, ys, idx = [], [], [], []
    for j in range(spec.k):
        mdp = lt.random_mdp(S, A, spec.gamma, rng, reward=spec.reward)
        phi, phi_pi = shared if shared else (features(d), features(d_pi) if d_pi else None)
        w0 = rng.uniform(-1.0, 1.0, d)
        if spec.algorithm == "sarsa":
            loop = lt.sarsa_loop(
                mdp,
                phi,
                w0,
                lambda X, w: lt.sarsa_update(X, w, spec.alpha),
                n=spec.n,
                n_updates=spec.frames,
                epsilon=spec.epsilon,
                rng=rng,
            )
            X = loop.Xs
            wt = np.concatenate([np.ones((spec.frames, 1)), loop.ws[:-1]], axis=1)
            y = loop.ws[1:] - loop.ws[:-1]
        else:
            lam0 = rng.uniform(-1.0, 1.0, d_pi)
            loop = lt.actor_critic_loop(
                mdp,
                phi,
                phi_pi,
                w0,
                lam0,
                lambda X, g, w, lam: lt.actor_critic_update(X, g, w, lam, spec.alpha, spec.beta),
                n=spec.n,
                n_updates=spec.frames,
                rng=rng,
            )
            X = np.concatenate([loop.Xs, loop.gs], axis=1)
            wt = np.concatenate([np.ones((spec.frames, 1)), loop.ws[:-1], loop.lams[:-1]], axis=1)
            y = np.concatenate([loop.ws[1:] - loop.ws[:-1], loop.lams[1:] - loop.lams[:-1]], axis=1)
        Xs.append(X)
        wts.append(wt)
        ys.append(y)
        idx.append(np.full(spec.frames, j))
    X = np.concatenate(Xs)
    return TeacherDataset(
        spec=spec,
        Sigma=lt.sufficient_statistics(X),
        wt=np.concatenate(wts),
        y=np.concatenate(ys),
        mdp=np.concatenate(idx),
        X=X if keep_prompts else None,
    )

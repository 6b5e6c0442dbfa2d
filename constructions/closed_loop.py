r"""Closed-loop algorithms: declarations with a teacher loop (S6)/(A5), for dynamics and deployment.

A :class:`ClosedLoopAlgorithm` is an (L1) :class:`~constructions.registry.Algorithm` that also
declares how it runs in an MDP: its feature tables and starting parameters, the behaviour and
greedy policies, and the closed loop driven by an ``update``. Every update has one signature,

.. math:: (X, g, w, \lambda) \mapsto (w', \lambda'),

with ``g``/``lambda`` ``None`` for algorithms without an actor, so the teacher (training) and a
frozen block (deployment) plug into the same loop. Its readout is bilinear in the (L2) blocks,
``TF = w + Vbar21 Sigma P12 wt (+ (1/n) Vbar22 wt wt^T P22 wt)``, with ``Sigma`` the second
moment of the context rows ``x_i = [context; extra rows]`` and ``wt = [1; w; lambda]``: that is
what :mod:`dynamics` needs for the (M2) objective.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

import lsa_theory as lt

from .registry import Algorithm

__all__ = ["ClosedLoopAlgorithm", "Dims", "Draws", "load_closed_loop_module"]


@dataclass(frozen=True)
class Dims:
    """Resolved sizes: critic features ``d`` and actor features ``d_pi`` (0 without an actor)."""

    d: int
    d_pi: int = 0

    @property
    def layout(self) -> lt.Layout:
        return lt.Layout(self.d, self.d_pi)


@dataclass(frozen=True, eq=False)
class Draws:
    """One task's draws: critic table ``phi`` (S, A, d) (state features are constant over
    actions), actor table ``phi_pi`` (S, A, d_pi) or ``None``, starts ``w0`` (d,), ``lam0``."""

    phi: np.ndarray
    phi_pi: np.ndarray | None
    w0: np.ndarray
    lam0: np.ndarray | None


class ClosedLoopAlgorithm(Algorithm):
    """An (L1) declaration that also runs in an MDP (see the module docstring).

    Class attributes: ``critic`` (``"action"`` or ``"state"`` features), ``has_actor``."""

    block: ClassVar[str] = "lsa"
    critic: ClassVar[str] = "action"
    has_actor: ClassVar[bool] = False

    # --------------------------------------------------------------------- sizes and draws
    def dims(self, S: int, A: int, d: int | None = None, d_pi: int | None = None) -> Dims:
        """Resolved ``(d, d_pi)`` for an ``S x A`` MDP; ``None`` means the algorithm's default."""
        raise NotImplementedError

    def critic_table(
        self, S: int, A: int, d: int, rng: np.random.Generator, kind: str = "uniform"
    ) -> np.ndarray:
        """The critic's (S, A, d) table: ``phi(s, a)``, or ``psi(s)`` repeated over actions."""
        if self.critic == "state":
            if kind == "onehot":
                if d != S:
                    raise ValueError(f"d: one-hot state features need d = S = {S}, got {d}")
                psi = np.eye(S)
            else:
                psi = lt.random_state_features(S, d, rng)
            return np.repeat(psi[:, None, :], A, axis=1)
        return lt.random_features(S, A, d, rng, kind=kind)

    def draw_tables(
        self, S: int, A: int, dims: Dims, rng: np.random.Generator, kind: str = "uniform"
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``(phi, phi_pi)`` feature tables of one task (``phi_pi`` ``None`` without an actor)."""
        phi = self.critic_table(S, A, dims.d, rng, kind)
        if not self.has_actor:
            return phi, None
        return phi, lt.random_features(S, A, dims.d_pi, rng, kind=kind)

    def draw_starts(self, dims: Dims, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
        """``w_0 ~ U(-1, 1)^d`` (and ``lambda_0 ~ U(-1, 1)^{d_pi}``)."""
        w0 = rng.uniform(-1.0, 1.0, dims.d)
        return w0, (rng.uniform(-1.0, 1.0, dims.d_pi) if self.has_actor else None)

    # --------------------------------------------------------------------------- updates
    def teacher(self, hyper: Mapping[str, Any]) -> Callable:
        """The exact teacher as a loop update ``(X, g, w, lam) -> (w', lam')`` (stacks allowed)."""
        raise NotImplementedError

    def block_update(self, readout: Callable[[np.ndarray, np.ndarray], np.ndarray], d: int) -> Callable:
        """A loop update from a frozen block's readout ``f(x_rows (m, n), wt (p,)) -> [w'; lam']``."""
        if not self.has_actor:
            return lambda X, g, w, lam: (readout(X, np.concatenate([[1.0], w])), None)

        def update(X, g, w, lam):
            out = readout(np.concatenate([X, g], axis=-2), np.concatenate([[1.0], w, lam]))
            return out[:d], out[d:]

        return update

    def full_prompt(self, X: Any, g: Any, w: Any, lam: Any) -> Any:
        """The (L1) prompt of one frame from the loop's ``X``, ``g``, ``w``, ``lam`` (stacks allowed)."""
        if not self.has_actor:
            return lt.sarsa_prompt(X, w)
        return lt.actor_critic_prompt(X, g, w, lam)

    # ----------------------------------------------------------------------------- loops
    def behaviour(self, draws: Draws, w: np.ndarray, lam: np.ndarray | None, epsilon: float) -> np.ndarray:
        """The (S, A) behaviour policy of the loop at the current parameters."""
        if self.has_actor:
            return lt.softmax_policy(draws.phi_pi, lam)
        return lt.epsilon_greedy(lt.q_values(draws.phi, w), epsilon)

    def greedy(self, draws: Draws, w: np.ndarray, lam: np.ndarray | None) -> np.ndarray:
        """The (S, A) greedy policy that deployment scores: argmax of ``lambda^T phi_pi`` with an
        actor, of ``Q_w`` without."""
        if self.has_actor:
            return lt.greedy(np.einsum("sak,k->sa", draws.phi_pi, lam))
        return lt.greedy(lt.q_values(draws.phi, w))

    def context(
        self,
        mdp: lt.TabularMDP,
        draws: Draws,
        w: np.ndarray,
        lam: np.ndarray | None,
        *,
        n: int,
        epsilon: float,
        rng: np.random.Generator,
        s0: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None, lt.Trajectory]:
        """One context of the loop from ``s0``: ``(X, g, traj)`` (``g`` ``None`` without an actor)."""
        if self.has_actor:
            return lt.actor_critic_context(mdp, draws.phi, draws.phi_pi, lam, n, rng, s0)
        X, traj = lt.sarsa_context(mdp, draws.phi, w, n, epsilon, rng, s0)
        return X, None, traj

    def loop(
        self,
        mdp: lt.TabularMDP,
        draws: Draws,
        update: Callable,
        *,
        n: int,
        n_updates: int,
        epsilon: float,
        rng: np.random.Generator,
    ) -> lt.LoopResult:
        """The closed loop (S6)/(A5) of one MDP driven by ``update``."""
        if self.has_actor:
            return lt.actor_critic_loop(
                mdp, draws.phi, draws.phi_pi, draws.w0, draws.lam0, update, n=n, n_updates=n_updates, rng=rng
            )
        return lt.sarsa_loop(
            mdp,
            draws.phi,
            draws.w0,
            lambda X, w: update(X, None, w, None)[0],
            n=n,
            n_updates=n_updates,
            epsilon=epsilon,
            rng=rng,
        )

    def loop_batched(
        self,
        P,
        r,
        mu0,
        gamma: float,
        phi,
        phi_pi,
        w0,
        lam0,
        update: Callable,
        U,
        *,
        n: int,
        n_updates: int,
        epsilon: float,
    ) -> lt.LoopResult:
        """The closed loops of k MDPs at once from pre-drawn uniforms ``U`` (bit-identical rows)."""
        if self.has_actor:
            return lt.actor_critic_loop_batched(
                P, r, mu0, gamma, phi, phi_pi, w0, lam0, update, U, n=n, n_updates=n_updates
            )
        return lt.sarsa_loop_batched(
            P,
            r,
            mu0,
            gamma,
            phi,
            w0,
            lambda X, w: update(X, None, w, None)[0],
            U,
            n=n,
            n_updates=n_updates,
            epsilon=epsilon,
        )

    # ------------------------------------------------------- smooth loop of (P2), torch
    def start_actor(self, dims: Dims) -> np.ndarray | None:
        """The deployment's starting actor ``lambda_0 = 0`` (d_pi,) (the uniform ``pi_lambda``), the
        draw :func:`experiments.control.deploy` makes; ``None`` without an actor."""
        return np.zeros(dims.d_pi) if self.has_actor else None

    def smooth_policy(self, phi: Any, phi_pi: Any, v: Any, tau: float) -> Any:
        """(P2) smooth behaviour (K, S, A), a torch tensor differentiable in ``v = [w; lambda]``
        (K, d + d_pi): without an actor the softmax ``softmax_a(Q_w(s, a) / tau)`` on the critic's
        table ``phi`` (K, S, A, d) (epsilon-greedy (S6) has zero gradient almost everywhere);
        with one the loop's own (A5) actor ``pi_lambda = softmax_a(lambda^T phi_pi(s, a))`` on
        ``phi_pi`` (K, S, A, d_pi), ``tau`` unused (the smooth and the deployed behaviour agree)."""
        import torch

        d = phi.shape[-1]
        if self.has_actor:
            return torch.softmax(torch.einsum("ksaj,kj->ksa", phi_pi, v[:, d:]), dim=-1)
        return torch.softmax(torch.einsum("ksaj,kj->ksa", phi, v[:, :d]) / tau, dim=-1)

    def smooth_extra_rows(self, phi_pi: Any, pi: Any) -> Any:
        """The context rows beyond ``[phi_i; gamma phi_i^+; r_{i+1}]`` as a function of ``(s_i,
        a_i)``, a (K, S, A, d_pi) torch table: the (A1) score ``g(s, a) = phi_pi(s, a) - sum_b
        pi(b|s) phi_pi(s, b)`` at the current actor ``pi`` (K, S, A); ``None`` without an actor."""
        if not self.has_actor:
            return None
        import torch

        return phi_pi - torch.einsum("ksb,ksbj->ksj", pi, phi_pi)[:, :, None, :]

    # ---------------------------------------------------------------------- (L2) blocks
    def construction_blocks(
        self, dims: Dims, hyper: Mapping[str, Any], c: float = 1.0, *, sparse: bool = False
    ) -> tuple:
        """``(P, V)`` (D, D) of the declaration's construction at ``dims`` (one layer): the first
        pair of :meth:`construction`. With ``sparse``: CSR ``scipy.sparse`` arrays, from
        :meth:`sparse_construction` when the declaration's sparse form is current (declared in the
        class that declares :meth:`construction`, or below it: a subclass that changes
        :meth:`construction` without its sparse form gets the dense one, converted), else the dense
        pair converted (memory ``O(D^2)``)."""
        if sparse and self.sparse_form_is_current():
            pair = self.sparse_construction(dims, hyper, c)
            if pair is not NotImplemented:
                return pair
        P, V = self.construction(self.dims_sizes(dims), hyper, c, 1)[0]
        if not sparse:
            return P, V
        import scipy.sparse as sps

        return sps.csr_array(np.asarray(P, dtype=np.float64)), sps.csr_array(np.asarray(V, dtype=np.float64))

    def sparse_construction(self, dims: Dims, hyper: Mapping[str, Any], c: float = 1.0) -> tuple:
        """Hook: the same ``(P, V)`` as :meth:`construction` at ``dims`` as CSR ``scipy.sparse``
        arrays, assembled without a dense ``D x D`` array (deployment at sizes like Taxi's,
        ``D = 9002``). Default ``NotImplemented``: the dense pair is converted."""
        return NotImplemented

    def hook_is_current(self, hook: str, of: str) -> bool:
        """Whether the hook ``hook`` belongs to this declaration's ``of``: it is declared in the
        class that declares ``of``, or in a subclass of it. A subclass that overrides ``of`` and
        inherits ``hook`` (a changed construction with its parent's sparse form, a changed teacher
        with its parent's round-off model) has a stale hook, which the package does not use."""
        mro = type(self).__mro__

        def owner(attr: str) -> int:
            return next(i for i, k in enumerate(mro) if attr in vars(k))

        return owner(hook) <= owner(of)

    def sparse_form_is_current(self) -> bool:
        """:meth:`sparse_construction` belongs to :meth:`construction` (:meth:`hook_is_current`)."""
        return self.hook_is_current("sparse_construction", "construction")

    def teacher_error_bound(
        self, X: np.ndarray, g: np.ndarray | None, w: np.ndarray, lam: np.ndarray | None, hyper: Mapping
    ) -> np.ndarray:
        """Hook: entrywise bound (k,) on ``|fl(teacher) - teacher|`` for one update of
        :meth:`teacher` as computed from exact inputs (``X`` (m, n), ``g`` (d_pi, n) or ``None``,
        ``w`` (d,), ``lam`` (d_pi,) or ``None``), valid for every summation order. With it (and a
        loop of the (S6)/(A5) form), deployment checks "block = teacher" against the propagated
        round-off bounds (:mod:`experiments.control_roundoff`); without it (default
        ``NotImplemented``) the check is a stated relative tolerance."""
        return NotImplemented

    def error_model_is_current(self) -> bool:
        """The declaration has a round-off model of its own teacher: :meth:`teacher_error_bound` is
        declared, and it belongs to :meth:`teacher` and :meth:`construction`
        (:meth:`hook_is_current`)."""
        owner = next(k for k in type(self).__mro__ if "teacher_error_bound" in vars(k))
        declared = owner is not ClosedLoopAlgorithm
        return (
            declared
            and self.hook_is_current("teacher_error_bound", "teacher")
            and self.hook_is_current("teacher_error_bound", "construction")
        )

    def dims_sizes(self, dims: Dims) -> dict[str, int]:
        """The declaration's ``sizes`` dict for given resolved dims."""
        return {"d": dims.d, "d_pi": dims.d_pi}


def load_closed_loop_module(path: str) -> dict[str, ClosedLoopAlgorithm]:
    """The closed-loop declarations (:class:`ClosedLoopAlgorithm`) of a user's file ``path`` by name:
    :func:`constructions.load_module` (whose ValueErrors, starting ``module:``, name the file and
    the failure; nothing is registered), and a ValueError if the file declares no closed-loop
    algorithm."""
    from .registry import load_module

    if not isinstance(path, str):
        raise ValueError(f"module: expected a path to a .py file, got {path!r}")
    loops = {a.name: a for a in load_module(path) if isinstance(a, ClosedLoopAlgorithm)}
    if not loops:
        raise ValueError(f"module: {path} declares no closed-loop algorithm (ClosedLoopAlgorithm)")
    return loops

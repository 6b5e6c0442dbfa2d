r"""Closed-loop algorithms: declarations with a teacher loop (S6)/(A5), for dynamics and deployment.

A :class:`ClosedLoopAlgorithm` is an (L1) :class:`~lsa_theory.constructions.registry.Algorithm` that also
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
from lsa_theory.checks import check_gamma, check_int, check_real
from lsa_theory.loop_driver import LoopAgent, closed_loop, closed_loop_batched, critic_columns, linear
from lsa_theory.policies import epsilon_greedy_rows, softmax_rows

from .registry import ALGORITHMS, Algorithm, load_module

__all__ = ["ClosedLoopAlgorithm", "Dims", "Draws", "closed_loop_algorithm", "load_closed_loop_module"]


def _torch_linear(table: Any, v: Any) -> Any:
    """``table @ v`` in torch: (S, A) for one MDP (``table`` (S, A, d), ``v`` (d,)), (K, S, A) for
    stacks (K, S, A, d) and (K, d) (einsum), the kernels the (P2) code has always used."""
    import torch

    return table @ v if v.dim() == 1 else torch.einsum("ksaj,kj->ksa", table, v)


@dataclass(frozen=True, eq=False)
class _HookAgent:
    """:class:`lsa_theory.loop_driver.LoopAgent` from a declaration's :meth:`ClosedLoopAlgorithm.behaviour`
    (or :meth:`~ClosedLoopAlgorithm.smooth_behaviour` at ``tau``) and :meth:`~ClosedLoopAlgorithm.frame`."""

    alg: ClosedLoopAlgorithm
    draws: Draws
    gamma: float
    epsilon: float
    tau: float | None

    def behaviour(self, w, lam):
        if self.tau is None:
            return self.alg.behaviour(self.draws, w, lam, self.epsilon)
        return self.alg.smooth_behaviour(self.draws, w, lam, self.tau)

    def frame(self, states, actions, rewards, w, lam, pi):
        return self.alg.frame(self.draws, self.gamma, states, actions, rewards, w, lam, pi)


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

    **Hooks** of the closed loop, driven by the ONE driver of :mod:`lsa_theory.loop_driver`
    (:meth:`loop`, :meth:`loop_batched`, and :func:`lsa_theory.experiments.control.deploy` through
    :meth:`agent`): :meth:`dims`, the tables :meth:`critic_table` / :meth:`actor_table` and
    starts :meth:`draw_starts` / :meth:`start_actor`, :meth:`behaviour`, :meth:`frame` (the
    context of one frame: (H) columns and extra rows), :meth:`greedy`, :meth:`split` (a readout
    into the next parameters), :meth:`full_prompt`, and for (P2) :meth:`smooth_policy`,
    :meth:`smooth_behaviour`, :meth:`smooth_extra_rows`. The defaults are those of a critic
    without an actor acting epsilon-greedy on ``Q_w`` ((S6),
    :mod:`lsa_theory.constructions.algorithms.sarsa`);
    a declaration with an actor says so through ``dims(...).d_pi > 0`` and overrides the policy,
    frame and split hooks (:mod:`lsa_theory.constructions.algorithms.actor_critic`). The loops never test
    which algorithm runs.

    Class attribute ``critic``: ``"action"`` or ``"state"`` features."""

    block: ClassVar[str] = "lsa"
    critic: ClassVar[str] = "action"
    #: Whether :meth:`smooth_behaviour` is the deployed :meth:`behaviour` (then the sampled (P2)
    #: loop is the deployment itself and is not run twice).
    smooth_is_behaviour: ClassVar[bool] = False

    @property
    def has_actor(self) -> bool:
        """Whether the declaration has actor features (``dims(1, 1).d_pi > 0``), derived."""
        return self.dims(1, 1).d_pi > 0

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

    def actor_table(
        self, S: int, A: int, dims: Dims, rng: np.random.Generator, kind: str = "uniform"
    ) -> np.ndarray | None:
        """The actor's (S, A, d_pi) table ``phi_pi ~ U(-1, 1)`` (or one-hot); ``None`` (nothing
        drawn) when ``dims.d_pi = 0``."""
        return lt.random_features(S, A, dims.d_pi, rng, kind=kind) if dims.d_pi else None

    def draw_tables(
        self, S: int, A: int, dims: Dims, rng: np.random.Generator, kind: str = "uniform"
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``(phi, phi_pi)`` feature tables of one task (``phi_pi`` ``None`` without an actor)."""
        phi = self.critic_table(S, A, dims.d, rng, kind)
        return phi, self.actor_table(S, A, dims, rng, kind)

    def draw_starts(self, dims: Dims, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
        """``w_0 ~ U(-1, 1)^d`` (and ``lambda_0 ~ U(-1, 1)^{d_pi}`` when ``d_pi > 0``)."""
        w0 = rng.uniform(-1.0, 1.0, dims.d)
        return w0, (rng.uniform(-1.0, 1.0, dims.d_pi) if dims.d_pi else None)

    def deployment_draws(self, S: int, A: int, dims: Dims, rng: np.random.Generator) -> Draws:
        """One deployment's draws from ``rng``, in this order: the critic's table ``phi`` (S, A, d)
        (:meth:`critic_table`), ``w_0 ~ U(-1, 1)^d``, then with an actor ``lambda_0``
        (:meth:`start_actor`, nothing drawn) and ``phi_pi`` (S, A, d_pi) (:meth:`actor_table`). The
        one order of :func:`lsa_theory.experiments.control.deploy`, the smooth deployment and
        pretraining's tasks, so equal ``rng`` states give them equal tables and starts."""
        phi = self.critic_table(S, A, dims.d, rng)
        w0 = rng.uniform(-1.0, 1.0, dims.d)
        lam0 = self.start_actor(dims)
        return Draws(phi, self.actor_table(S, A, dims, rng), w0, lam0)

    def start_actor(self, dims: Dims) -> np.ndarray | None:
        """The deployment's starting actor ``lambda_0 = 0`` (d_pi,) (the uniform ``pi_lambda``), the
        draw :func:`lsa_theory.experiments.control.deploy` makes; ``None`` when ``dims.d_pi = 0``."""
        return np.zeros(dims.d_pi) if dims.d_pi else None

    # --------------------------------------------------------------------------- updates
    def teacher(self, hyper: Mapping[str, Any]) -> Callable:
        """The exact teacher as a loop update ``(X, g, w, lam) -> (w', lam')`` (stacks allowed)."""
        raise NotImplementedError

    def split(self, out: Any, d: int) -> tuple:
        """Hook: the next parameters ``(w', lam')`` from a readout ``out`` (..., d + d_pi)
        (default, no actor: ``(out, None)``)."""
        return out, None

    def block_update(self, readout: Callable[[np.ndarray, np.ndarray], np.ndarray], d: int) -> Callable:
        """A loop update from a frozen block's readout ``f(x_rows (m, n), wt (p,)) -> [w'; lam']``:
        the rows are the frame ``X`` and its extra rows ``g`` (if any), ``wt = [1; w; lam]``, and
        :meth:`split` cuts the readout."""

        def update(X, g, w, lam):
            return self.split(readout(*self.readout_inputs(X, g, w, lam)), d)

        return update

    def readout_inputs(
        self, X: np.ndarray, g: np.ndarray | None, w: np.ndarray, lam: np.ndarray | None
    ) -> tuple:
        """The inputs of the (L2) readout for one frame: the context rows ``[X; g]`` (``X`` alone
        without extra rows) and the parameter column ``wt = [1; w; lam]`` (``[1; w]`` without an
        actor)."""
        rows = X if g is None else np.concatenate([X, g], axis=-2)
        return rows, np.concatenate([[1.0], w] if lam is None else [[1.0], w, lam])

    def full_prompt(self, X: Any, g: Any, w: Any, lam: Any) -> Any:
        """Hook: the (L1) prompt of one frame from the loop's ``X``, ``g``, ``w``, ``lam`` (stacks
        allowed); default the (H) prompt."""
        return lt.sarsa_prompt(X, w)

    # ------------------------------------------------------------------ hooks of the loop
    def behaviour(self, draws: Draws, w: np.ndarray, lam: np.ndarray | None, epsilon: float) -> np.ndarray:
        """Hook: the (S, A) behaviour policy at the current parameters (a (k, S, A) stack for
        (k, d) parameters); default epsilon-greedy on ``Q_w = phi w`` (S6)."""
        return epsilon_greedy_rows(linear(draws.phi, w), epsilon)

    def greedy(self, draws: Draws, w: np.ndarray, lam: np.ndarray | None) -> np.ndarray:
        """Hook: the (S, A) greedy policy that deployment scores; default argmax of ``Q_w``."""
        return lt.greedy(lt.q_values(draws.phi, w))

    def frame(
        self, draws: Draws, gamma: float, states, actions, rewards, w, lam, pi
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Hook: the frame ``(X, g)`` of one context: ``X`` (2d+1, n) the (H) columns and ``g`` the
        extra rows (``None`` by default), from the trajectory (``states``, ``actions`` (n+1,),
        ``rewards`` (n,); or stacks with a leading (k,) axis) drawn under ``pi``."""
        return critic_columns(draws.phi, states, actions, rewards, gamma), None

    def smooth_behaviour(self, draws: Draws, w: np.ndarray, lam: np.ndarray | None, tau: float) -> np.ndarray:
        """Hook: the (P2) smooth behaviour (S, A) in numpy, for the sampled softmax loop
        (:func:`lsa_theory.experiments.pretrain.softmax_deploy`); default
        ``softmax_a(Q_w(s, a) / tau)`` (the numpy form of :meth:`smooth_policy`)."""
        return softmax_rows(linear(draws.phi, w) / tau)

    def agent(self, draws: Draws, gamma: float, epsilon: float = 0.0, tau: float | None = None) -> LoopAgent:
        """The :class:`lsa_theory.loop_driver.LoopAgent` of this declaration on ``draws`` (tables of one MDP,
        or stacks for the batched loop): :meth:`behaviour` at ``epsilon`` (:meth:`smooth_behaviour`
        at ``tau`` when given) and :meth:`frame`."""
        return _HookAgent(self, draws, gamma, epsilon, tau)

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
        """The closed loop (S6)/(A5) of one MDP driven by ``update``
        (:func:`lsa_theory.loop_driver.closed_loop`)."""
        agent = self.agent(draws, check_gamma(mdp.gamma), check_real(epsilon, "epsilon", low=0.0, high=1.0))
        return closed_loop(
            mdp, agent, draws.w0, draws.lam0, update, n=check_int(n, "n"), n_updates=n_updates, rng=rng
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
        """The closed loops of k MDPs at once from pre-drawn uniforms ``U`` (bit-identical rows;
        :func:`lsa_theory.loop_driver.closed_loop_batched`)."""
        draws = Draws(phi, phi_pi, w0, lam0)
        agent = self.agent(draws, check_gamma(gamma), check_real(epsilon, "epsilon", low=0.0, high=1.0))
        return closed_loop_batched(P, r, mu0, agent, w0, lam0, update, U, n=n, n_updates=n_updates)

    # ------------------------------------------------------- smooth loop of (P2), torch
    def smooth_policy(self, phi: Any, phi_pi: Any, v: Any, tau: float) -> Any:
        """Hook: (P2) smooth behaviour (K, S, A), a torch tensor differentiable in ``v = [w;
        lambda]`` (K, d + d_pi); default (no actor) the softmax ``softmax_a(Q_w(s, a) / tau)`` on
        the critic's table ``phi`` (K, S, A, d) (epsilon-greedy (S6) has zero gradient almost
        everywhere). One MDP: ``phi`` (S, A, d) and ``v`` (d + d_pi,) give (S, A)."""
        import torch

        return torch.softmax(_torch_linear(phi, v[..., : phi.shape[-1]]) / tau, dim=-1)

    def smooth_extra_rows(self, phi_pi: Any, pi: Any) -> Any:
        """Hook: the context rows beyond ``[phi_i; gamma phi_i^+; r_{i+1}]`` as a function of
        ``(s_i, a_i)``, a (K, S, A, d_pi) torch table at the current smooth policy ``pi`` (K, S,
        A); default ``None`` (no extra rows)."""
        return None

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
        round-off bounds (:mod:`lsa_theory.experiments.control.roundoff`); without it (default
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
    :func:`lsa_theory.constructions.load_module` (whose ValueErrors, starting ``module:``, name the file and
    the failure; nothing is registered), and a ValueError if the file declares no closed-loop
    algorithm."""
    if not isinstance(path, str):
        raise ValueError(f"module: expected a path to a .py file, got {path!r}")
    loops = {a.name: a for a in load_module(path) if isinstance(a, ClosedLoopAlgorithm)}
    if not loops:
        raise ValueError(f"module: {path} declares no closed-loop algorithm (ClosedLoopAlgorithm)")
    return loops


def closed_loop_algorithm(algo: Any) -> ClosedLoopAlgorithm:
    """The declaration ``algo``: a :class:`ClosedLoopAlgorithm` instance (a user's, registered or
    not) as it is, or the name of a registered one (including ones registered later); a ValueError
    naming the registered closed-loop algorithms otherwise."""
    if isinstance(algo, ClosedLoopAlgorithm):
        return algo
    names = ALGORITHMS.with_capability(ClosedLoopAlgorithm)
    if not isinstance(algo, str) or algo not in names:
        raise ValueError(f"algo: expected one of {names}, got {algo!r}")
    return ALGORITHMS[algo]

r"""The expected-context loop: a smooth, exact-for-tabular form of the closed loop (S6)/(A5) for (P2).

**Layouts.** Every function works on the loop parameter ``v = [w; lambda]`` (K, d + d_pi) of the
batch's registered closed-loop algorithm (:attr:`MDPBatch.algo`, ``d_pi = 0`` without an actor);
what differs between algorithms comes from the declaration
(:meth:`lsa_theory.constructions.ClosedLoopAlgorithm.smooth_policy`, ``smooth_extra_rows``, ``critic_table``,
``start_actor``), never from its name.

**Behaviour.** Without an actor (SARSA layout (H)) a softmax policy on ``Q_w``, ``pi_w(a|s) =
softmax_a(w^T phi(s, a) / tau)`` (smooth in ``w``, unlike the epsilon-greedy policy of (S6)). With
one (actor-critic layout (A1)) the loop's own actor ``pi_lambda(a|s) ∝ exp(lambda^T phi_pi(s, a))``
of (A5): the smooth and the deployed behaviour are then the same policy. The context rows gain the
(A1) score ``g(s_i, a_i)`` at the current ``lambda`` (a function of ``(s_i, a_i)``), and for the
state-value critic the critic's table is ``psi(s)`` repeated over actions.

**One expected context.** Given the parameter ``w_t`` and the law ``rho_t`` (S,) of the first state
``s_0`` of the context, the n on-policy transitions ``(s_i, a_i, r_{i+1}, s_{i+1}, a_{i+1})``,
``i = 0..n-1``, have state laws ``rho_{t,i} = rho_t (P^pi)^i`` with ``P^pi[s, s'] = sum_a pi(a|s)
P[s, a, s']``, and state-action laws ``q_i(s, a) = rho_{t,i}(s) pi(a|s)``. With the context averages
``qbar = (1/n) sum_{i<n} q_i`` (of ``(s_i, a_i)``) and ``qplus = (1/n) sum_{i=1..n} q_i`` (of
``(s_{i+1}, a_{i+1})``) the expected statistic of (L2) is exact:

.. math:: E[\Sigma] = \sum_{s,a,s',a'} \bar q(s,a) P(s'|s,a) \pi(a'|s')\, x x^\top
          + \sigma_r^2 e_r e_r^\top, \qquad x = [\phi(s,a); \gamma\phi(s',a'); r(s,a)\,(; g(s, a))],

(``sigma_r`` the reward noise). The (L2) readout is affine in ``Sigma`` at fixed ``w``, so
``E[TF(H) | w_t, s_0 ~ rho_t] = TF(E[Sigma], w_t)`` exactly. **The expected-context loop** iterates

.. math:: v_{t+1} = TF_\theta(E_{v_t, \rho_t}[\Sigma], v_t), \qquad \rho_{t+1} = \rho_t (P^{\pi_{v_t}})^n,

from ``rho_0 = mu0`` and ``v_0 = [w_0; lambda_0]`` (``lambda_0 = 0``, the deployment's start);
``rho_{t+1}`` is the exact law of the context's last state
``s_n``, which (S6) carries over as the next ``s_0``.

**Relation to the sampled loop (S6).** One step is exact: the sampled update's conditional mean
given ``(w_t, s_0 ~ rho_t)`` is the expected update (checked by Monte Carlo in the tests). Over
``T`` steps the expected loop is the mean-field path: it replaces the random ``w_t`` by a
deterministic one, so it differs from ``E[w_T]`` of the sampled loop by the effect of the
fluctuations of ``Sigma_t`` (covariance ``O(1/n)`` for a mixing chain) fed through the
nonlinear policy; it is also a loop with softmax, not epsilon-greedy, behaviour. Blocks are
therefore always scored on the sampled loop as well (:mod:`lsa_theory.experiments.pretrain`).

``Sigma`` is never formed in the loop: ``Sigma u`` for ``u = P12 wt`` costs ``O(S A (S + d))``
per MDP (:func:`expected_sigma_matvec`); :func:`expected_sigma_reference` is the brute-force
enumeration over ``(s, a, s', a')`` (numpy) that the tests check it against. The return of the
softmax policy is exact, ``J(pi) = mu0^T (I - gamma P^pi)^{-1} r^pi`` (docs/theory.md §0), and its
normalised form uses ``J(pi*)`` and ``J(uniform)`` from :mod:`lsa_theory.mdp`. Everything is torch
and differentiable in ``(P, V)``; rewards ``r[s, a]`` only (``r[s, a, s']`` would correlate the
reward row with ``s'``: ValueError).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

import lsa_theory as lt
from lsa_theory import constructions
from lsa_theory.checks import check_int, check_real
from lsa_theory.loop_driver import closed_loop

__all__ = [
    "MDPBatch",
    "make_batch",
    "draw_task",
    "draw_batch",
    "batch_of",
    "behaviour_policy",
    "context_laws",
    "expected_sigma_matvec",
    "expected_sigma_reference",
    "expected_step",
    "expected_loop",
    "softmax_return",
    "rl_objective",
    "score_function_gradient",
]


@dataclass(frozen=True, eq=False)
class MDPBatch:
    """K tabular MDPs with their features and starting parameters, as torch tensors.

    ``P`` (K, S, A, S), ``r`` (K, S, A) rewards ``r[s, a]``, ``noise2`` (K,) reward-noise
    variance, ``gamma`` (K,), ``mu0`` (K, S), ``phi`` (K, S, A, d) the critic's table (``psi(s)``
    repeated over actions for a state-value critic), ``w0`` (K, d); ``j_unif`` (K,)
    ``J(uniform)`` and ``j_gap`` (K,) ``J(pi*) - J(uniform)`` (the normalisation of §0); with an
    actor ``phi_pi`` (K, S, A, d_pi) and ``lam0`` (K, d_pi) (``None`` without); ``algo`` the
    registered closed-loop algorithm whose loop the batch runs."""

    P: torch.Tensor
    r: torch.Tensor
    noise2: torch.Tensor
    gamma: torch.Tensor
    mu0: torch.Tensor
    phi: torch.Tensor
    w0: torch.Tensor
    j_unif: torch.Tensor
    j_gap: torch.Tensor
    phi_pi: torch.Tensor | None = None
    lam0: torch.Tensor | None = None
    algo: str = "sarsa"

    @property
    def K(self) -> int:
        return self.P.shape[0]

    @property
    def d(self) -> int:
        return self.phi.shape[-1]

    @property
    def d_pi(self) -> int:
        return 0 if self.phi_pi is None else self.phi_pi.shape[-1]

    @property
    def alg(self):
        """The batch's :class:`lsa_theory.constructions.ClosedLoopAlgorithm` declaration."""
        return constructions.closed_loop_algorithm(self.algo)

    @property
    def v0(self) -> torch.Tensor:
        """(K, d + d_pi) starting loop parameter ``[w_0; lambda_0]``."""
        return self.w0 if self.lam0 is None else torch.cat([self.w0, self.lam0], dim=1)

    def take(self, idx) -> MDPBatch:
        """The sub-batch ``idx`` (a slice or index tensor) of every field."""
        vals = [getattr(self, f) for f in self.__dataclass_fields__]
        return MDPBatch(*(v if v is None or isinstance(v, str) else v[idx] for v in vals))


def make_batch(
    mdps: list[lt.TabularMDP],
    phis: list[np.ndarray],
    w0s: list[np.ndarray],
    dtype=torch.float64,
    *,
    phi_pis: list[np.ndarray] | None = None,
    lam0s: list[np.ndarray] | None = None,
    algo: str = "sarsa",
) -> MDPBatch:
    """:class:`MDPBatch` of equal-size MDPs ``mdps`` with critic tables ``phis`` (S, A, d) and
    ``w0s`` (d,), for an algorithm with an actor also ``phi_pis`` (S, A, d_pi) and ``lam0s``
    (d_pi,); ``J(pi*)`` by :func:`lsa_theory.optimal`. ValueError on ``r[s, a, s']`` rewards,
    mismatched sizes, actor tables given (or missing) against the declaration of ``algo``, or an
    MDP whose ``J(pi*) - J(uniform)`` vanishes (see :func:`lsa_theory.normalized_return`)."""
    alg = constructions.closed_loop_algorithm(algo)
    if not mdps or len(mdps) != len(phis) or len(mdps) != len(w0s):
        raise ValueError(
            f"mdps, phis, w0s: need equal non-zero lengths, got {len(mdps)}, {len(phis)}, {len(w0s)}"
        )
    if alg.has_actor != (phi_pis is not None) or (phi_pis is None) != (lam0s is None):
        raise ValueError(f"phi_pis, lam0s: {algo!r} needs {'both' if alg.has_actor else 'neither'}")
    if phi_pis is not None and not (len(phi_pis) == len(lam0s) == len(mdps)):
        raise ValueError(f"phi_pis, lam0s: need {len(mdps)} each, got {len(phi_pis)}, {len(lam0s)}")
    S, A = mdps[0].n_states, mdps[0].n_actions
    j_unif, j_gap = [], []
    for i, (m, phi, w0) in enumerate(zip(mdps, phis, w0s, strict=True)):
        if not isinstance(m, lt.TabularMDP) or (m.n_states, m.n_actions) != (S, A):
            raise ValueError(f"mdps[{i}]: expected a TabularMDP with S = {S}, A = {A}")
        if m.r.ndim != 2:
            raise ValueError(f"mdps[{i}]: the expected-context loop needs rewards r[s, a], got r[s, a, s']")
        if np.shape(phi)[:2] != (S, A) or np.shape(w0) != (np.shape(phi)[2],):
            raise ValueError(f"phis[{i}], w0s[{i}]: expected shapes (S, A, d) and (d,)")
        if phi_pis is not None and (
            np.shape(phi_pis[i])[:2] != (S, A) or np.shape(lam0s[i]) != (np.shape(phi_pis[i])[2],)
        ):
            raise ValueError(f"phi_pis[{i}], lam0s[{i}]: expected shapes (S, A, d_pi) and (d_pi,)")
        ju = lt.expected_return(m, lt.uniform_policy(m))
        gap = float(m.mu0 @ lt.optimal(m).V) - ju
        if gap <= 1e-12 * (1.0 + abs(ju)):
            raise ValueError(f"mdps[{i}]: J(pi*) - J(uniform) = {gap:.3g}; the MDP is degenerate")
        j_unif.append(ju)
        j_gap.append(gap)

    def t(x):
        return torch.as_tensor(np.asarray(x, dtype=np.float64), dtype=dtype)

    return MDPBatch(
        P=t([m.P for m in mdps]),
        r=t([m.r for m in mdps]),
        noise2=t([m.reward_noise**2 for m in mdps]),
        gamma=t([m.gamma for m in mdps]),
        mu0=t([m.mu0 for m in mdps]),
        phi=t(phis),
        w0=t(w0s),
        j_unif=t(j_unif),
        j_gap=t(j_gap),
        phi_pi=None if phi_pis is None else t(phi_pis),
        lam0=None if lam0s is None else t(lam0s),
        algo=algo,
    )


def draw_task(
    algo: str, S: int, A: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray | None]:
    """One task's draws ``(phi, phi_pi, w_0, lambda_0)`` at the declaration's default dims, in the
    order :func:`lsa_theory.experiments.control.deploy` draws them from ``rng``: the critic's table ``phi``
    (S, A, d) ``~ U(-1, 1)`` (:meth:`lsa_theory.constructions.ClosedLoopAlgorithm.critic_table`), ``w_0 ~
    U(-1, 1)^d``, with an actor ``phi_pi ~ U(-1, 1)^{S x A x d_pi}`` and ``lambda_0 = 0``
    (:meth:`~lsa_theory.constructions.ClosedLoopAlgorithm.start_actor`); ``None`` for the actor's parts
    without one."""
    alg = constructions.closed_loop_algorithm(algo)
    draws = alg.deployment_draws(S, A, alg.dims(S, A), rng)
    return draws.phi, draws.phi_pi, draws.w0, draws.lam0


def draw_batch(
    K: int, S: int, A: int, gamma: float, rng: np.random.Generator, dtype=torch.float64, algo: str = "sarsa"
) -> tuple[MDPBatch, list[lt.TabularMDP]]:
    """K MDPs of the [LL] family of §0 at size (S, A), each followed by its task draws
    (:func:`draw_task`; SARSA: ``phi ~ U(-1, 1)^{S x A x SA}``, ``w_0 ~ U(-1, 1)^{SA}``), all from
    ``rng`` in that order; returns the batch and the MDPs."""
    K = check_int(K, "K")
    mdps, draws = [], []
    for _ in range(K):
        mdps.append(lt.random_mdp(S, A, gamma, rng))
        draws.append(draw_task(algo, S, A, rng))
    return batch_of(mdps, draws, algo, dtype), mdps


def batch_of(mdps: list[lt.TabularMDP], draws: list[tuple], algo: str, dtype=torch.float64) -> MDPBatch:
    """:func:`make_batch` of ``mdps`` with their :func:`draw_task` tuples ``draws``."""
    phis, phi_pis, w0s, lam0s = (list(x) for x in zip(*draws, strict=True))
    actor = phi_pis[0] is not None
    return make_batch(
        mdps,
        phis,
        w0s,
        dtype,
        phi_pis=phi_pis if actor else None,
        lam0s=lam0s if actor else None,
        algo=algo,
    )


def behaviour_policy(batch: MDPBatch, w: torch.Tensor, tau: float) -> torch.Tensor:
    """(K, S, A) smooth behaviour at the loop parameter ``w`` = ``v = [w; lambda]`` (K, d + d_pi):
    SARSA ``pi_w(a|s) = softmax_a(w^T phi(s, a) / tau)``, with an actor ``pi_lambda`` (module
    docstring; :meth:`lsa_theory.constructions.ClosedLoopAlgorithm.smooth_policy`)."""
    return batch.alg.smooth_policy(batch.phi, batch.phi_pi, w, tau)


def context_laws(
    batch: MDPBatch, pi: torch.Tensor, rho: torch.Tensor, n: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(rhobar, rhoplus, rho_n)`` (K, S) each: the mean law of ``s_i`` over ``i = 0..n-1``, of
    ``s_{i+1}`` over ``i = 0..n-1``, and the law of ``s_n``, from ``s_0 ~ rho`` under ``pi`` (K, S, A)."""
    M = torch.einsum("ksa,ksat->kst", pi, batch.P)
    laws = rho[:, None, :]  # rows rho_0 .. rho_{2^j - 1}, doubled with M^(2^j): O(log n) products
    while laws.shape[1] <= n:
        laws = torch.cat([laws, laws @ M], dim=1)
        if laws.shape[1] <= n:
            M = M @ M
    rhobar = laws[:, :n].mean(dim=1)
    return rhobar, laws[:, 1 : n + 1].mean(dim=1), laws[:, n]


def expected_sigma_matvec(
    batch: MDPBatch,
    pi: torch.Tensor,
    rhobar: torch.Tensor,
    rhoplus: torch.Tensor,
    u: torch.Tensor,
    G: torch.Tensor | None = None,
) -> torch.Tensor:
    """``E[Sigma] u`` (K, m) for ``u = [u1; u2; u3(; u4)]`` (K, m), ``m = 2d+1(+d_pi)``, without
    forming ``E[Sigma]`` (module docstring): with ``f = Phi u1``, ``g = Phi u2``, the extra rows'
    part ``e = G u4`` (``G`` (K, S, A, d_pi) the (A1) score table, or ``None``) and ``z(s, a) =
    E[x^T u | s, a]``, the phi block is ``sum qbar phi z``, the gamma phi^+ block ``gamma
    sum_{s'a'} phi(s', a') [nu(s') pi(a'|s') + gamma qplus g]`` with ``nu(s') = sum_{s,a} qbar (f + r
    u3 + e) P(s'|s,a)``, the reward entry ``sum qbar r z + sigma_r^2 u3`` and the extra block ``sum
    qbar G z``."""
    d = batch.d
    u1, u2, u3 = u[:, :d], u[:, d : 2 * d], u[:, 2 * d]
    gam = batch.gamma
    f = torch.einsum("ksad,kd->ksa", batch.phi, u1)
    g = torch.einsum("ksad,kd->ksa", batch.phi, u2)
    qbar = rhobar[:, :, None] * pi
    qplus = rhoplus[:, :, None] * pi
    gbar = (pi * g).sum(-1)  # E[g(s', a') | s'], (K, S)
    h = torch.einsum("ksat,kt->ksa", batch.P, gbar)  # E[g(s', a') | s, a]
    base = f + batch.r * u3[:, None, None]
    if G is not None:
        base = base + torch.einsum("ksaj,kj->ksa", G, u[:, 2 * d + 1 :])
    z = base + gam[:, None, None] * h
    top = torch.einsum("ksa,ksad->kd", qbar * z, batch.phi)
    nu = torch.einsum("ksa,ksat->kt", qbar * base, batch.P)
    wplus = nu[:, :, None] * pi + gam[:, None, None] * qplus * g
    mid = gam[:, None] * torch.einsum("ksa,ksad->kd", wplus, batch.phi)
    last = (qbar * batch.r * z).sum(dim=(1, 2)) + batch.noise2 * u3
    parts = [top, mid, last[:, None]]
    if G is not None:
        parts.append(torch.einsum("ksa,ksaj->kj", qbar * z, G))
    return torch.cat(parts, dim=1)


def expected_sigma_reference(
    mdp: lt.TabularMDP,
    phi: np.ndarray,
    w: np.ndarray,
    rho: np.ndarray,
    n: int,
    tau: float,
    phi_pi: np.ndarray | None = None,
    lam: np.ndarray | None = None,
) -> np.ndarray:
    """(m, m) ``E[Sigma]`` of one context (module docstring) by brute-force enumeration of the
    tuples ``(s, a, s', a')`` and their probabilities, in numpy float64 (reference for tests).
    Without ``phi_pi`` the behaviour is ``softmax(phi w / tau)`` and ``x = [phi; gamma phi^+;
    r]``; with ``phi_pi`` (S, A, d_pi) and ``lam`` (d_pi,) it is :func:`lsa_theory.softmax_policy`
    and ``x`` gains the score :func:`lsa_theory.score` at ``(s, a)`` ((A1); ``tau`` unused)."""
    n = check_int(n, "n")
    tau = check_real(tau, "tau", low=0.0, low_open=True)
    S, A, d = phi.shape
    if phi_pi is None:
        pi, G = lt.policies.softmax_rows(phi @ w / tau), np.zeros((S, A, 0))
    else:
        pi, G = lt.softmax_policy(phi_pi, lam), lt.score(phi_pi, lam)
    P_pi = np.einsum("sa,sat->st", pi, mdp.P)
    laws = [np.asarray(rho, dtype=np.float64)]
    for _ in range(n - 1):
        laws.append(laws[-1] @ P_pi)
    qbar = np.mean(laws, axis=0)[:, None] * pi
    m = 2 * d + 1 + G.shape[-1]
    Sigma = np.zeros((m, m))
    for s in range(S):
        for a in range(A):
            for s2 in range(S):
                for a2 in range(A):
                    p = qbar[s, a] * mdp.P[s, a, s2] * pi[s2, a2]
                    x = np.concatenate([phi[s, a], mdp.gamma * phi[s2, a2], [mdp.r[s, a]], G[s, a]])
                    Sigma += p * np.outer(x, x)
    Sigma[2 * d, 2 * d] += mdp.reward_noise**2
    return Sigma


def _blocks(batch: MDPBatch, P: torch.Tensor, V: torch.Tensor, layout: lt.Layout) -> dict[str, torch.Tensor]:
    """The (L2) blocks of ``P``, ``V``: one head (D, D), or ``H`` linear heads stacked (H, D, D) (each
    block then with a leading head axis); ValueError on other shapes or a layout that does not match
    the batch."""
    if (layout.d, layout.d_pi) != (batch.d, batch.d_pi):
        raise ValueError(
            f"layout: (d, d_pi) = ({layout.d}, {layout.d_pi}) does not match the batch's critic and "
            f"actor features ({batch.d}, {batch.d_pi})"
        )
    D = layout.D
    if (
        P.ndim not in (2, 3)
        or tuple(P.shape) != tuple(V.shape)
        or tuple(P.shape[-2:]) != (D, D)
        or P.shape[0] < 1
    ):
        raise ValueError(
            f"P, V: expected (D, D) or equal (H, D, D) stacks of linear heads with D = {D}, H >= 1, got "
            f"{tuple(P.shape)} and {tuple(V.shape)}"
        )
    return layout.blocks(P, V)


def expected_step(
    batch: MDPBatch,
    P: torch.Tensor,
    V: torch.Tensor,
    layout: lt.Layout,
    w: torch.Tensor,
    rho: torch.Tensor,
    n: int,
    tau: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of the expected-context loop: ``(v_{t+1}, rho_{t+1})`` (K, d + d_pi), (K, S) with
    ``v_{t+1} = v + Vbar21 E[Sigma] P12 wt + (1/n) Vbar22 wt (wt^T P22 wt)`` ((L2), ``wt = [1; v]``,
    ``v = w`` the loop parameter ``[w; lambda]``) and ``rho_{t+1}`` the law of ``s_n``; full
    ``P``, ``V`` (D, D).

    **Linear heads.** ``P``, ``V`` (H, D, D) stack ``H`` linear heads ``(P_h, V_h)`` of (L1) (mask
    ``I_{n+1}``, [LL]'s letters); the block's readout is the sum over heads of each head's (L2)
    increment, ``v_{t+1} = v + sum_h [Vbar21_h E[Sigma] P12_h wt + (1/n) Vbar22_h wt (wt^T P22_h
    wt)]``, still affine in ``Sigma``, so the step stays exact. ``H = 1`` (or a (D, D) pair) is the
    one-head step above, the same floating-point operations in the same order."""
    return _step(batch, _blocks(batch, P, V, layout), w, rho, n, tau)


def _step(
    batch: MDPBatch, b: dict[str, torch.Tensor], w: torch.Tensor, rho: torch.Tensor, n: int, tau: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`expected_step` on the (L2) blocks ``b`` of :func:`_blocks` (cut once per loop); blocks
    with a leading head axis are summed head by head."""
    pi = behaviour_policy(batch, w, tau)
    G = batch.alg.smooth_extra_rows(batch.phi_pi, pi)
    rhobar, rhoplus, rho_n = context_laws(batch, pi, rho, n)
    wt = torch.cat([torch.ones_like(w[:, :1]), w], dim=1)
    heads = [b] if b["P12"].ndim == 2 else [{k: v[h] for k, v in b.items()} for h in range(b["P12"].shape[0])]
    out = w
    for bh in heads:
        s = expected_sigma_matvec(batch, pi, rhobar, rhoplus, wt @ bh["P12"].mT, G)
        quad = ((wt @ bh["P22"].mT) * wt).sum(-1)
        out = out + s @ bh["Vbar21"].mT + (quad / n)[:, None] * (wt @ bh["Vbar22"].mT)
    return out, rho_n


def expected_loop(
    batch: MDPBatch, P: torch.Tensor, V: torch.Tensor, layout: lt.Layout, *, n: int, T: int, tau: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The expected-context loop (module docstring) for ``T`` updates from ``(v_0, mu0)``:
    ``vs`` (T+1, K, d + d_pi) and ``rhos`` (T+1, K, S); differentiable in ``P``, ``V`` (D, D), or
    (H, D, D) stacked linear heads (:func:`expected_step`)."""
    n = check_int(n, "n")
    T = check_int(T, "T", minimum=0)
    tau = check_real(tau, "tau", low=0.0, low_open=True)
    b = _blocks(batch, P, V, layout)
    w, rho = batch.v0, batch.mu0
    ws, rhos = [w], [rho]
    for _ in range(T):
        w, rho = _step(batch, b, w, rho, n, tau)
        ws.append(w)
        rhos.append(rho)
    return torch.stack(ws), torch.stack(rhos)


def softmax_return(batch: MDPBatch, w: torch.Tensor, tau: float) -> torch.Tensor:
    """(K,) normalised return (§0) ``(J(pi) - J(uniform)) / (J(pi*) - J(uniform))`` of the smooth
    behaviour ``pi`` at ``v = w`` (K, d + d_pi) (:func:`behaviour_policy`: ``softmax(Q_w / tau)``,
    or the actor ``pi_lambda``), ``J = mu0^T (I - gamma P^pi)^{-1} r^pi`` exact."""
    pi = behaviour_policy(batch, w, tau)
    P_pi = torch.einsum("ksa,ksat->kst", pi, batch.P)
    r_pi = (pi * batch.r).sum(-1)
    eye = torch.eye(P_pi.shape[-1], dtype=P_pi.dtype)
    v = torch.linalg.solve(eye - batch.gamma[:, None, None] * P_pi, r_pi[:, :, None])[:, :, 0]
    return ((batch.mu0 * v).sum(-1) - batch.j_unif) / batch.j_gap


def rl_objective(
    batch: MDPBatch,
    P: torch.Tensor,
    V: torch.Tensor,
    layout: lt.Layout,
    *,
    n: int,
    T: int,
    tau: float,
    horizon: str = "final",
    per_mdp: bool = False,
) -> torch.Tensor:
    """(P2), smooth form: the mean over the batch of the normalised return of the smooth behaviour
    ``pi_{v_T}`` (:func:`softmax_return`: ``softmax(Q_w / tau)`` without an actor, the actor
    ``pi_lambda`` with one) after ``T`` updates of the expected-context loop
    (``horizon="final"``), or of the mean of the returns of ``pi_{v_1}, ..., pi_{v_T}``
    (``"mean"``). Scalar (``per_mdp=True``: the (K,) values
    before the mean over the batch), differentiable in ``P``, ``V`` ((D, D), or (H, D, D) stacked
    linear heads: :func:`expected_step`)."""
    if horizon not in ("final", "mean"):
        raise ValueError(f"horizon: expected 'final' or 'mean', got {horizon!r}")
    ws, _ = expected_loop(batch, P, V, layout, n=n, T=T, tau=tau)
    if horizon == "final":
        vals = softmax_return(batch, ws[-1], tau)
    else:
        vals = torch.stack([softmax_return(batch, w, tau) for w in ws[1:]]).mean(dim=0)
    return vals if per_mdp else vals.mean()


def _check_attention(attention) -> str:
    if not isinstance(attention, str) or attention not in lt.ATTENTIONS:
        raise ValueError(f"attention: expected one of {lt.ATTENTIONS} or None, got {attention!r}")
    return attention


def _stacked_heads(P: torch.Tensor, V: torch.Tensor, layout: lt.Layout) -> tuple[torch.Tensor, torch.Tensor]:
    """``(P, V)`` as (H, D, D) stacks of heads (a (D, D) pair is one head); ValueError otherwise."""
    P, V = torch.as_tensor(P), torch.as_tensor(V)
    if P.ndim == 2:
        P, V = P[None], V[None]
    D = layout.D
    if P.ndim != 3 or P.shape[0] < 1 or tuple(P.shape[1:]) != (D, D) or P.shape != V.shape:
        raise ValueError(
            f"P, V: expected (D, D) or equal (H, D, D) stacks of heads with D = {D}, got "
            f"{tuple(P.shape)} and {tuple(V.shape)}"
        )
    return P, V


class _PathwiseLoop:
    """The agent and update of one sampled softmax loop of :func:`score_function_gradient`, run by
    the one driver :func:`lsa_theory.loop_driver.closed_loop` (numpy) while the differentiable
    state stays here in torch: ``w_t`` (a function of ``(P, V)``), the smooth policy ``pi_{w_t}``
    of the declaration (:meth:`~lsa_theory.constructions.ClosedLoopAlgorithm.smooth_policy`) and
    ``log p``, the summed log-probabilities of the sampled actions. The driver sees
    ``w_t.detach()``."""

    def __init__(self, alg, draws, phi, gamma, tau, w0, P, V, n, layout, increment, attention=None):
        self.alg, self.draws, self.phi, self.gamma, self.tau = alg, draws, phi, gamma, tau
        self.P, self.V, self.n, self.layout, self.increment = P, V, n, layout, increment
        self.attention = attention
        self.w, self.logp, self.pi = w0, torch.zeros((), dtype=P.dtype), None

    def behaviour(self, w, lam):
        self.pi = self.alg.smooth_policy(self.phi, None, self.w, self.tau)  # (S, A), one MDP
        return self.pi.detach().numpy()

    def on_context(self, t, traj):
        self.logp = self.logp + torch.log(self.pi[traj.states, traj.actions]).sum()

    def frame(self, states, actions, rewards, w, lam, pi):
        return self.alg.frame(self.draws, self.gamma, states, actions, rewards, None, None, pi)

    def update(self, X, g, w, lam):
        X = torch.as_tensor(X, dtype=self.P.dtype)
        if self.attention is not None:  # the block on the raw (H) prompt, heads stacked in P, V
            H = self.alg.full_prompt(X, None, self.w, None)
            heads = list(zip(self.P, self.V, strict=True))
            self.w = self.w + self.increment(H, heads, self.attention, self.layout.d)
            return self.w.detach().numpy(), None
        wt = torch.cat([torch.ones(1, dtype=self.P.dtype), self.w])
        self.w = (
            self.w
            + self.increment((X @ X.T / self.n)[None], wt[None], self.P, self.V, self.n, self.layout)[0]
        )
        return self.w.detach().numpy(), None


def score_function_gradient(
    batch: MDPBatch,
    mdps: list[lt.TabularMDP],
    P: torch.Tensor,
    V: torch.Tensor,
    layout: lt.Layout,
    *,
    n: int,
    T: int,
    tau: float,
    samples: int,
    rng: np.random.Generator,
    attention: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Score-function (REINFORCE) estimate of the gradient of the *sampled* (P2) objective
    ``E[mean_k R_k(pi_{w_T})]`` over ``samples`` sampled softmax loops (S6) per MDP, with the
    leave-one-out mean of each MDP's samples as baseline: the surrogate is ``f + (f - b) log p``,
    ``log p`` the summed log-probabilities of every sampled action under ``pi_{w_t}`` (the only
    place besides the pathwise ``w_t`` that depends on ``theta``; states and rewards do not).
    Returns ``(grad_P, grad_V, mean f)``. Its mean differs from the gradient of the expected-
    context loop by the mean-field gap of the module docstring; it is a cross-check, not a test.
    The loop is the batch's declaration's, run by the one driver
    :func:`lsa_theory.loop_driver.closed_loop` through its hooks: the smooth behaviour
    :meth:`~lsa_theory.constructions.ClosedLoopAlgorithm.smooth_policy` (one MDP) and the context
    :meth:`~lsa_theory.constructions.ClosedLoopAlgorithm.frame`. Implemented for declarations without extra
    context rows (``smooth_extra_rows`` ``None``, ``d_pi = 0``): with them (the (A1) scores) the
    pathwise derivative through the rows is not followed (ValueError naming the hook).

    **Heads and an attention function** (``attention`` one of :data:`lsa_theory.ATTENTIONS`): the
    loop's update ``w_{t+1} = TF_theta(H_t)`` is then computed on the raw (H) prompt ``H_t`` (context
    columns and the parameter column) by :func:`lsa_theory.attention_layer` with mask ``I_{n+1}``
    (:func:`lsa_theory.experiments.attention.block_increment`), ``P``, ``V`` (H, D, D) the stacked
    heads ``(P_h, V_h)`` in [LL]'s letters (a (D, D) pair is one head); the gradients have that
    shape (H, D, D). With one linear head this is the (L2) route above up to round-off (the (L1) readout of
    the raw prompt and (L2) of ``Sigma = X X^T / n`` sum the same products in another order). The
    default ``None`` is the (L2) route, unchanged. Sampled loops see the raw context columns, so a
    nonlinear block acts there; the expected-context loop cannot take it (its exactness needs a
    block affine in ``Sigma``)."""
    alg = batch.alg
    if attention is None:
        from ..training import increment
    else:
        from ..attention import block_increment as increment

        attention = _check_attention(attention)
        P, V = _stacked_heads(P, V, layout)
    if layout.d_pi != batch.d_pi:
        raise ValueError(
            f"layout: d_pi = {layout.d_pi} does not match the batch's actor features ({batch.d_pi})"
        )
    if alg.smooth_extra_rows(batch.phi_pi, behaviour_policy(batch, batch.v0, tau)) is not None:
        raise ValueError(
            f"layout: the score-function cross-check is implemented for d_pi = 0 (no extra rows); "
            f"{alg.name}'s smooth_extra_rows gives rows whose pathwise derivative it does not follow"
        )
    samples = check_int(samples, "samples", minimum=2)
    P = P.detach().clone().requires_grad_(True)
    V = V.detach().clone().requires_grad_(True)
    fs, logps = [], []
    for k, mdp in enumerate(mdps):
        phi = batch.phi[k]
        draws = constructions.Draws(phi.numpy(), None, batch.w0[k].numpy(), None)
        for _ in range(samples):
            path = _PathwiseLoop(
                alg, draws, phi, mdp.gamma, tau, batch.w0[k], P, V, n, layout, increment, attention
            )
            w0 = batch.w0[k].detach().numpy()
            closed_loop(mdp, path, w0, None, path.update, n=n, n_updates=T, rng=rng, keep_frames=False,
                        on_context=path.on_context)  # fmt: skip
            fs.append(softmax_return(batch.take(slice(k, k + 1)), path.w[None], tau)[0])
            logps.append(path.logp)
    f = torch.stack(fs).reshape(len(mdps), samples)
    logp = torch.stack(logps).reshape(len(mdps), samples)
    fd = f.detach()
    baseline = (fd.sum(dim=1, keepdim=True) - fd) / (samples - 1)
    surrogate = (f + (fd - baseline) * logp).mean()
    gP, gV = torch.autograd.grad(surrogate, (P, V))
    return gP, gV, float(fd.mean())

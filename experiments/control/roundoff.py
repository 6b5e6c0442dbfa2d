r"""The round-off model of "block = teacher" in the closed loops of :mod:`lsa_theory.experiments.control`
(issue 18: verdicts that hold on any machine).

The frozen constructed block (S3)/(A3) and the exact teacher (S2)/(A2) are the same map in exact
arithmetic; as computed they differ by rounding, which the loop then propagates. This module
bounds both, from Higham's bounds (:mod:`lsa_theory.roundoff`) of the quantities as computed:

- one update: :func:`lsa_theory.sarsa_update_error_bound` and the readout bounds
  :func:`lsa_theory.experiments.control.weights.l1_readout_error_bound` /
  :func:`~lsa_theory.experiments.control.weights.l2_readout_error_bound`, together
  :func:`block_teacher_error_bound`;
- the loop: :func:`propagate_error_bound` (with :func:`loop_map_norm` and, for actor-critic, the
  scores' :func:`score_error_bound`), each run's distance from the exact-arithmetic loop on the
  same trajectory;
- the verdict: :func:`block_teacher_check` (the unit keys of
:func:`lsa_theory.experiments.control.run_control`).
"""

from __future__ import annotations

import numpy as np

from lsa_theory.constructions import ClosedLoopAlgorithm, Draws, closed_loop_algorithm
from lsa_theory.policies import score_table, softmax_rows
from lsa_theory.roundoff import UNIT_ROUNDOFF, gamma, matmul_error_bound

from .result import DeployResult, first_mismatch
from .weights import BlockWeights, l1_readout_error_bound, l2_readout_error_bound

__all__ = [
    "TEACHER_DIVERGENCE_W",
    "block_teacher_check",
    "block_teacher_error_bound",
    "loop_map_norm",
    "propagate_error_bound",
    "score_error_bound",
]


def _bounds_step(
    t, box, eps, X, g, w, lam, w_new, lam_new, states, draws, bound, teacher_bound, teacher_update, used,
    alpha, beta, w_err, ratio, gaps, qround,
):  # fmt: skip
    """The round-off records of update ``t`` of :func:`deploy` (``error_bounds=True``), in place."""
    local = bound(X, g, w, lam)
    if used != "teacher":
        tw, tl = teacher_update(X, g, w, lam)
        out = np.concatenate([w_new, lam_new]) if lam_new is not None else np.asarray(w_new)
        ref = np.concatenate([tw, tl]) if tl is not None else np.asarray(tw)
        tol = local + teacher_bound(X, g, w, lam)
        ratio[t - 1] = np.nanmax(np.where(out == ref, 0.0, np.abs(out - ref) / tol))
    box, eps = propagate_error_bound(
        box, eps, X, alpha, local, g=g, beta=beta, w=w, lam=lam, states=states, draws=draws
    )
    w_err[t] = box
    if gaps is not None:
        gaps[t - 1], qround[t - 1] = _q_gap(draws.phi[states], w)
    return box, eps


def _local_bound_fn(weights, layout, alg, used: str, hyper: dict):
    """``bound(X, g, w, lam) -> (k,)``: the round-off bound of this run's own update (the block's
    forward pass ``used``, or the teacher)."""
    if used == "teacher":  # the declaration's own round-off model of its teacher
        return lambda X, g, w, lam: alg.teacher_error_bound(X, g, w, lam, hyper)
    if used == "l1":
        return lambda X, g, w, lam: l1_readout_error_bound(
            alg.full_prompt(X, g, w, lam), weights.P, weights.V, layout.k
        )
    return lambda X, g, w, lam: l2_readout_error_bound(*alg.readout_inputs(X, g, w, lam), weights)


def block_teacher_error_bound(
    X: np.ndarray,
    g: np.ndarray | None,
    w: np.ndarray,
    lam: np.ndarray | None,
    weights: BlockWeights,
    forward: str,
    alpha: float,
    beta: float | None = None,
    *,
    algo: str | ClosedLoopAlgorithm = "sarsa",
) -> np.ndarray:
    r"""Entrywise bound (k,) on ``|fl(TF_theta(H)) - fl(teacher)|`` for one update on the same
    inputs: the block's readout ((L1) :func:`l1_readout_error_bound` or (L2)
    :func:`l2_readout_error_bound`, ``forward``) plus the teacher's, the declaration ``algo``'s
    round-off model (:meth:`lsa_theory.constructions.ClosedLoopAlgorithm.teacher_error_bound`; for (S2)/(A2)
    :func:`lsa_theory.sarsa_update_error_bound`). For the constructed ``weights`` ((S3)/(A3) with
    ``alpha``, ``beta``, ``c = 1``: entries ``alpha``, ``beta``, ``+-1``, exact in float64) both
    exact-arithmetic values are the same update, so a computed difference above this bound is not
    round-off."""
    layout = weights.layout
    alg = closed_loop_algorithm(algo)
    if bool(layout.d_pi) != alg.has_actor:
        raise ValueError(f"algo: {alg.name} does not match the weights' layout (d_pi = {layout.d_pi})")
    if not alg.error_model_is_current():
        raise ValueError(f"algo: {alg.name} declares no round-off model of its teacher (teacher_error_bound)")
    hyper = {**alg.hyper, "alpha": alpha, "beta": beta}
    local = _local_bound_fn(weights, layout, alg, forward, hyper)
    return local(X, g, w, lam) + alg.teacher_error_bound(X, g, w, lam, hyper)


def score_error_bound(phi_pi: np.ndarray, lam: np.ndarray) -> np.ndarray:
    r"""Entrywise bound (..., A, d_pi) on ``|fl(g) - g|`` for the score table
    :func:`lsa_theory.score` of the rows ``phi_pi`` (..., A, d_pi) at ``lam`` (d_pi,):
    logits ``z = phi_pi lam`` (:math:`\gamma_{d_\pi}`), the shift by ``max z`` (one rounding), so
    ``|dz| <= e_z``; the softmax is 2-Lipschitz from ``||.||_inf`` to ``||.||_1`` and exp, the sum
    over ``A`` and the division add :math:`\gamma_{A+3}`, so :math:`\|\hat\pi - \pi\|_1 \le 2 e_z +
    \gamma_{A+3}(1 + 2 e_z)`; then ``g = phi_pi - sum_b pi_b phi_pi(., b)`` adds
    :math:`\max_b |\phi_\pi| \|\hat\pi - \pi\|_1 + \gamma_A \sum_b \hat\pi_b |\phi_\pi| + u |g|`."""
    phi_pi = np.asarray(phi_pi, dtype=np.float64)
    A = phi_pi.shape[-2]
    z = phi_pi @ lam
    ez = matmul_error_bound(phi_pi, lam) + UNIT_ROUNDOFF * np.abs(z - z.max(axis=-1, keepdims=True))
    ez = 2.0 * ez.max(axis=-1)  # both z_a and max z carry an error
    pi = softmax_rows(z)
    dpi = 2.0 * ez + gamma(A + 3) * (1.0 + 2.0 * ez)
    big = np.abs(phi_pi).max(axis=-2)  # (..., d_pi)
    mean_abs = np.einsum("...b,...bk->...k", pi, np.abs(phi_pi))
    g = score_table(phi_pi, pi)
    return (big * dpi[..., None] + gamma(A) * mean_abs)[..., None, :] + gamma(1) * np.abs(g)


def propagate_error_bound(
    E: np.ndarray,
    eps: float,
    X: np.ndarray,
    alpha: float,
    local: np.ndarray,
    *,
    g: np.ndarray | None = None,
    beta: float | None = None,
    w: np.ndarray | None = None,
    lam: np.ndarray | None = None,
    states: np.ndarray | None = None,
    draws: Draws | None = None,
) -> np.ndarray:
    r"""One update of the bound ``E_t`` (k,) on ``|[w_t; lambda_t] - exact_t|``, the distance of a
    computed loop from the exact-arithmetic loop (S6)/(A5) on the same trajectory (same states,
    actions, rewards, so the same columns ``X`` (2d+1, n)):

    .. math::

        E^w_{t+1} = E^w_t + \tfrac{\alpha}{n} |\Phi| \, D_\delta + L^w_t, \qquad
        D_\delta = |\gamma \Phi^+ - \Phi|^T E^w_t ,

    (the exact update is affine in ``w`` with the matrix ``I + (alpha/n) Phi (gamma Phi^+ - Phi)^T``;
    ``L_t = local`` the rounding of this update as computed, :func:`lsa_theory.sarsa_update_error_bound` or
    the block's readout bound). With an actor, ``g_i`` itself depends on ``lambda``: the scores of
    the visited pairs differ from the exact ones by :math:`E_g \le 2 \max_b |\phi_\pi(s_i, b)|
    \max_a |\phi_\pi(s_i, a)|^T E^\lambda_t` + :func:`score_error_bound`, and
    :math:`E^\lambda_{t+1} = E^\lambda_t + \tfrac{\beta}{n}(|G| D_\delta + E_g (|\hat\delta| +
    D_\delta)) + L^\lambda_t`.

    This box bound ignores the signs of the affine map, so it grows geometrically even where the loop
    contracts. Without an actor a second, signed bound ``eps_t >= ||w_t - exact_t||_2`` is carried:
    :math:`\varepsilon_{t+1} = \|M_t\|_2 \varepsilon_t + \|L_t\|_2` with
    :func:`loop_map_norm` (``M_t`` the linear part above), and both are tightened by each other
    (``eps <- min(eps, ||E||_2)``, ``E <- min(E, eps)``). Returns ``(E_{t+1}, eps_{t+1})``
    (``eps = inf`` with an actor). Rigorous, and decisive while it is small against ``|w|``."""
    with np.errstate(over="ignore", invalid="ignore"):
        return _propagate(
            E, eps, np.asarray(X, dtype=np.float64), alpha, local, g, beta, w, lam, states, draws
        )


def _propagate(E, eps, X, alpha, local, g, beta, w, lam, states, draws):
    d = (X.shape[0] - 1) // 2
    n = X.shape[1]
    Ew = E[:d]
    Phi = np.abs(X[:d])
    Ddelta = np.abs(X[d : 2 * d] - X[:d]).T @ Ew
    new_w = Ew + (alpha / n) * (Phi @ Ddelta) + local[:d]
    if g is None:
        eps = loop_map_norm(X, alpha) * eps + float(np.linalg.norm(local))
        eps = min(eps, float(np.linalg.norm(new_w)))
        return np.minimum(new_w, eps), eps
    El = E[d:]
    rows = draws.phi_pi[states[:-1]]  # (n, A, d_pi)
    acts_score = score_error_bound(rows, lam)
    Eg_round = acts_score.max(axis=-2)  # (n, d_pi): the largest over the actions (covers the one taken)
    sens = 2.0 * np.abs(rows).max(axis=-2) * (np.abs(rows) @ El).max(axis=-1)[:, None]  # (n, d_pi)
    Eg = (Eg_round + sens).T  # (d_pi, n)
    delta_abs = np.abs(X[2 * d] + X[: 2 * d].T @ np.concatenate([-w, w]))
    new_lam = El + (beta / n) * (np.abs(g) @ Ddelta + Eg @ (delta_abs + Ddelta)) + local[d:]
    return np.concatenate([new_w, new_lam]), np.inf


def loop_map_norm(X: np.ndarray, alpha: float) -> float:
    r"""Upper bound on :math:`\|M\|_2`, ``M = I + (alpha/n) Phi (gamma Phi^+ - Phi)^T`` (d, d), the
    linear part of the exact update (S2) on the columns ``X`` (2d+1, n): with ``U = (alpha/n) Phi``,
    ``V = gamma Phi^+ - Phi`` and ``[U V] = Q R`` (``Q`` (d, 2n) orthonormal), ``M`` is the identity on
    the complement of ``span Q`` and ``Q (I + R_U R_V^T) Q^T`` on it, so
    :math:`\|M\|_2 = \max(1, \|I + R_U R_V^T\|_2)` (``1`` only if ``2n < d``). Computed in float64;
    the absolute error of the computed norm, :math:`\le \gamma_{4d}(1 + \|U\|_F \|V\|_F)`
    (backward-stable QR and SVD), is added."""
    X = np.asarray(X, dtype=np.float64)
    d = (X.shape[0] - 1) // 2
    n = X.shape[1]
    U = (alpha / n) * X[:d]
    V = X[d : 2 * d] - X[:d]
    Q, R = np.linalg.qr(np.concatenate([U, V], axis=1))
    K = np.eye(R.shape[0]) + R[:, :n] @ R[:, n:].T
    norm = float(np.linalg.norm(K, 2))
    if Q.shape[1] < d:
        norm = max(norm, 1.0)
    return norm + gamma(4 * max(d, 2 * n)) * (1.0 + float(np.linalg.norm(U) * np.linalg.norm(V)))


def _q_gap(phi_rows: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Smallest gap between the two largest ``Q_w(s, .) = phi(s, .) w`` over the rows ``phi_rows``
    (N, A, d) of a context's states, and the bound ``gamma_d max |phi| |w|`` on their rounding."""
    Q = phi_rows @ w
    top = np.sort(Q, axis=-1)
    gap = float((top[:, -1] - top[:, -2]).min()) if Q.shape[-1] > 1 else np.inf
    return gap, float(matmul_error_bound(phi_rows, w).max())


#: A teacher loop is reported as diverging (``teacher_diverged_at``) from the first update whose
#: ``||w||_inf`` passes this: the loops that converge stay below 2 on every environment of
#: :mod:`lsa_theory.experiments.control`; the unstable ones (CliffWalking, Taxi) pass it and keep growing.
TEACHER_DIVERGENCE_W = 1e6


def block_teacher_check(block: DeployResult, teacher: DeployResult) -> dict:
    """The round-off-sized check "block = teacher" of two :func:`deploy` runs with
    ``error_bounds=True`` on the same stream (issue 18). Returns the unit keys:

    - ``identity_max_ratio``: the largest ``identity_ratio`` of the block (its update against the
      teacher's on the same input, over :func:`block_teacher_error_bound`); must be ``<= 1``.
    - ``max_w_diff_over_tol``: ``max |p_t(block) - p_t(teacher)| / tol_t`` entrywise over the
      parameters ``p_0 .. p_{m-1}`` before the first trajectory mismatch ``m`` (and while both are
      finite), ``tol_t = w_err_t(block) + w_err_t(teacher)`` (:func:`propagate_error_bound`: each
      run's distance from the same exact-arithmetic loop); must be ``<= 1``.
    - ``w_tol_before_mismatch``: the largest ``tol_t`` entry there; ``equality_unresolvable_at``:
      the first update there whose ``tol_t`` reaches ``||p_t(teacher)||_inf`` (from there on the
      model no longer resolves equality and the trajectory check is vacuous; ``None`` if never).
    - ``flip_possible_at`` (algorithms without an actor; else ``None``): the first update ``t`` whose
      context (drawn with ``w_{t-1}``) the round-off model lets differ: the teacher's smallest
      top-two gap of ``Q`` over its states is at most ``2 (max|phi| ||tol_{t-1}||_1 + r_b + 3 r_t)``
      (``r = q_round``: two argmaxes differ only where the gap is at most twice ``max |Q_b - Q_t|
      <= max|phi| ||tol||_1 + r_b + r_t``, and the gap recomputed here is within ``4 r_t`` of the
      one the rollout saw); ``first_flip_at`` (the first mismatch) must not come before it.
    - ``first_flip_at``, ``teacher_diverged``/``teacher_diverged_at`` (the loop stopped at
      :data:`lsa_theory.rollout.DIVERGENCE_BOUND`, or ``||w||_inf`` passed
      :data:`TEACHER_DIVERGENCE_W`), ``block_diverged_at``: reported, not asserted.
    - ``block_equals_teacher``: the three assertions above.
    """

    if block.w_err is None or teacher.w_err is None:
        raise ValueError("block, teacher: run deploy with error_bounds=True")
    mismatch = first_mismatch(block, teacher)

    def params(r):
        return r.ws if r.lams is None else np.concatenate([r.ws, r.lams], axis=1)

    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return _check(block, teacher, mismatch, params(block), params(teacher))


def _check(block, teacher, mismatch, pb, pt) -> dict:
    stop = pb.shape[0] if mismatch is None else mismatch
    tol = block.w_err + teacher.w_err
    ok = np.isfinite(pb[:stop]).all(axis=1) & np.isfinite(pt[:stop]).all(axis=1)
    diff = np.abs(pb[:stop] - pt[:stop])[ok]
    t_ok = tol[:stop][ok]
    over = np.where(diff == 0.0, 0.0, diff / t_ok)
    over_max = float(np.nanmax(over, initial=0.0)) if over.size else 0.0
    ratio = block.identity_ratio[np.isfinite(block.identity_ratio)]
    identity = float(ratio.max(initial=0.0))
    possible = None
    if teacher.q_gap is not None and block.q_round is not None:
        T = teacher.q_gap.size
        qerr = teacher.phi_abs_max * np.abs(tol[:T]).sum(axis=1) + block.q_round + 3.0 * teacher.q_round
        hit = np.flatnonzero(~(teacher.q_gap > 2.0 * qerr) & np.isfinite(teacher.q_gap))
        possible = int(hit[0]) + 1 if hit.size else None
    # fmax.reduce: nanmax without its all-NaN warning (an all-NaN row is never "unresolvable")
    unresolvable = np.flatnonzero(np.fmax.reduce(tol[:stop], axis=1) >= np.abs(pt[:stop]).max(axis=1))
    early_flip = (
        mismatch is not None and teacher.q_gap is not None and (possible is None or mismatch < possible)
    )
    big = np.flatnonzero(np.abs(teacher.ws).max(axis=1) > TEACHER_DIVERGENCE_W)
    t_div = int(big[0]) if big.size else teacher.diverged_at
    return {
        "identity_max_ratio": identity,
        "max_w_diff_over_tol": over_max,
        "w_tol_before_mismatch": float(np.nanmax(t_ok, initial=0.0)) if t_ok.size else 0.0,
        "equality_unresolvable_at": int(unresolvable[0]) if unresolvable.size else None,
        "flip_possible_at": possible,
        "first_flip_at": mismatch,
        "teacher_diverged": t_div is not None,
        "teacher_diverged_at": t_div,
        "block_diverged_at": block.diverged_at,
        "block_equals_teacher": bool(identity <= 1.0 and over_max <= 1.0 and not early_flip),
    }

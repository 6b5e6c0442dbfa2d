r"""(P3): the reinforcement-pretrained block against teacher mimicking, the construction and the
exact teacher, for the layout of the configuration's ``algo`` (SARSA (H)/(S3) or actor-critic
(A1)/(A3); every per-algorithm difference comes from its registered declaration).

Every block is scored on the same ``heldout_k`` held-out MDPs with fresh features (MDP ``i`` from
``heldout_rng(seed, i)``, its features, ``w_0`` and rollouts from ``heldout_rng(seed, i, 1)``, see
:func:`lsa_theory.experiments.pretrain.heldout_batch`), so that differences are paired:

- ``heldout_return``: greedy normalised return (§0) after ``T_eval`` updates of the *sampled*
  closed loop (S6) with epsilon-greedy behaviour, or (A5) acting with ``pi_lambda``
  (:func:`lsa_theory.experiments.control.deploy`, the real deployment; the greedy policy of the
  declaration is scored), mean and standard error over the held-out MDPs; ``heldout_return_final`` the same
  after ``curve_updates`` updates (beyond the (P2) horizon);
- ``heldout_return_softmax``: the same on the sampled loop with the softmax behaviour of (P2)
  (:func:`softmax_deploy`; with an actor the deployment itself);
- ``heldout_smooth_return``: the (P2) objective itself on the held-out MDPs (expected-context loop,
  softmax policy after ``T`` updates);
- structure, :func:`s3_alignment` against the algorithm's construction ((S3), or (A3) for the
  actor-critic; the key names stay ``cos_S3_*``): ``cos_S3_effective``, ``cos_S3_full``,
  ``alpha_eff`` (``beta_eff``), ``cos_S3_fixed_alpha``;
- update, :func:`update_agreement` on held-out teacher frames (prompts met along the teacher's
  loop on fresh MDPs with fresh features) against the exact teacher update named by
  ``reference_update`` ((S2), or (A2) for the actor-critic; the key names stay ``*_sarsa``):
  ``update_corr_sarsa``, ``update_cos_sarsa``, ``update_scale_sarsa``, ``heldout_teacher_err``.

Every loop counts (:mod:`lsa_theory.experiments.stats`): a loop that diverged is scored
:data:`lsa_theory.experiments.stats.DIVERGED_SCORE` ``= 0`` (the uniform policy's normalised return) in every
mean, standard error and interval, never dropped, and counted per block in ``n_diverged``
(``_final``, ``_softmax``, ``_smooth``); ``diverged_score`` records the score used. Paired
differences ``a - b`` over ALL held-out MDPs come with 95 % Student-t intervals
(:func:`lsa_theory.experiments.stats.paired_ci`, with ``n_diverged_a``, ``n_diverged_b``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import lsa_theory as lt
from lsa_theory import dynamics as dy
from lsa_theory.checks import check_int, check_real
from lsa_theory.constructions import ClosedLoopAlgorithm, closed_loop_algorithm
from lsa_theory.loop_driver import closed_loop

from ..control import deploy, deployment_dims, eval_points, loop_update, resolve_weights
from ..envs import heldout_rng
from ..io import atomic_savez, progress, single_blas_thread, to_jsonable, versions
from ..stats import DIVERGED_SCORE, mean_sem, paired_ci
from ..training import heldout_error, structure_metrics
from . import expected_loop as el
from .config import heldout_batch

__all__ = [
    "s3_alignment",
    "update_agreement",
    "softmax_deploy",
    "evaluate_blocks",
    "ENTRY_FIELDS",
]

#: The keys of every block's entry in ``lsa-theory pretrain --json`` (the public contract).
ENTRY_FIELDS = (
    "heldout_return",
    "heldout_return_sem",
    "cos_S3_effective",
    "cos_S3_full",
    "update_corr_sarsa",
)


def s3_alignment(
    P: np.ndarray,
    V: np.ndarray,
    layout: lt.Layout,
    alpha: float | None = None,
    algo: str = "sarsa",
    beta: float = 0.1,
) -> dict:
    """Alignment of a block (full ``P``, ``V`` (D, D)) with the construction of the registered
    closed-loop algorithm ``algo`` up to its symmetries: (S3) for the SARSA layout, (A3) for the
    actor-critic layout (the public key names ``cos_S3_*`` are kept for both).

    The constructions for every scale ``c`` and every step size span ``{(a P12*, b Vbar21*_c(1),
    e Vbar21*_a(1))}``, with ``Vbar21*_c(1)`` the critic rows (the first ``d``) and ``Vbar21*_a(1)``
    the actor rows (the last ``d_pi``, absent for SARSA) of ``Vbar21*`` at unit step sizes,
    ``alpha = a b``, ``beta = a e`` (the scaling ``(cP, V/c)`` of (S4)/(A4) moves along it). With
    ``y = <P12, P12*> / |P12*|``, ``x_c``, ``x_a`` the same for the two row blocks of ``Vbar21`` and
    ``x = <Vbar21, Vbar21*(1)> / |Vbar21*(1)|``, the projection of the block on that span has norm
    ``sqrt(y^2 + x_c^2 + x_a^2)``; ``cos_S3_effective = sign(x y) sqrt(y^2 + x_c^2 + x_a^2) /
    |(Vbar21, P12)|`` (negative: the nearest construction has negative step sizes),
    ``cos_S3_full`` the same divided by the norm of ALL entries of ``P`` and ``V`` (the construction
    is zero elsewhere), ``alpha_eff = (x_c / |Vbar21*_c(1)|) (y / |P12*|)`` (and ``beta_eff`` with
    the actor rows) the step sizes of the nearest construction. With ``alpha``:
    ``cos_S3_fixed_alpha`` and ``c``, the cosine to the scaling orbit of the construction at
    ``alpha`` (and ``beta``) (:func:`lsa_theory.experiments.training.structure_metrics`, no invisible
    direction)."""
    alg = closed_loop_algorithm(algo)  # ValueError naming ``algo`` unless a closed-loop declaration
    dims = alg.dims(1, 1, layout.d, layout.d_pi)
    if (dims.d, dims.d_pi) != (layout.d, layout.d_pi) or alg.has_actor != bool(layout.d_pi):
        raise ValueError(f"layout: d_pi = {layout.d_pi} does not fit {algo!r} (d_pi = {dims.d_pi})")
    P, V = np.asarray(P, dtype=np.float64), np.asarray(V, dtype=np.float64)
    b = layout.blocks(P, V)
    b0 = layout.blocks(*alg.construction_blocks(dims, {"gamma": 0.5, "alpha": 1.0, "beta": 1.0}))
    d = layout.d
    nB0 = np.linalg.norm(b0["P12"])
    y = float(np.sum(b["P12"] * b0["P12"]) / nB0)
    x = float(np.sum(b["Vbar21"] * b0["Vbar21"]) / np.linalg.norm(b0["Vbar21"]))
    steps, sq = [], y * y
    for rows in (slice(0, d), slice(d, layout.k)):
        ref = b0["Vbar21"][rows]
        if ref.size and np.any(ref):
            nr = np.linalg.norm(ref)
            xr = float(np.sum(b["Vbar21"][rows] * ref) / nr)
            sq += xr * xr
            steps.append(xr * y / (nr * nB0))
    proj = np.sign(x * y) * np.sqrt(sq)
    eff = np.hypot(np.linalg.norm(b["Vbar21"]), np.linalg.norm(b["P12"]))
    full = np.hypot(np.linalg.norm(P), np.linalg.norm(V))
    row = {
        "cos_S3_effective": float(proj / eff) if eff > 0 else 0.0,
        "cos_S3_full": float(proj / full) if full > 0 else 0.0,
        "alpha_eff": float(steps[0]),
        "norm_P22": float(np.linalg.norm(b["P22"])),
        "norm_Vbar22": float(np.linalg.norm(b["Vbar22"])),
    }
    if len(steps) > 1:
        row["beta_eff"] = float(steps[1])
    if alpha is not None:
        alpha = check_real(alpha, "alpha", low=0.0, low_open=True)
        spec = dy.TeacherSpec(
            algorithm=algo,
            S=1,
            A=1,
            d=layout.d,
            d_pi=layout.d_pi or None,
            alpha=alpha,
            beta=beta,
            k=1,
            frames=1,
        )
        p = layout.D - layout.m
        summary = dy.TeacherDataset(
            spec,
            np.zeros((1, layout.m, layout.m)),
            np.zeros((1, p)),
            np.zeros((1, layout.k)),
            np.zeros(1, int),
        )
        sm = structure_metrics(P, V, summary, U=np.zeros((layout.m, 0)))
        row["cos_S3_fixed_alpha"], row["c_fixed_alpha"] = sm["cos"], sm["c"]
    return row


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel(), b.ravel()
    return float(np.corrcoef(a, b)[0, 1]) if np.std(a) > 0 and np.std(b) > 0 else 0.0


def _td_fit(a: np.ndarray, parts: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares coefficients of ``a`` (N,) on the columns of ``parts`` (N, 3) and the R^2."""
    coef, *_ = np.linalg.lstsq(parts, a, rcond=None)
    resid = a - parts @ coef
    r2 = float(1.0 - resid @ resid / ((a - a.mean()) @ (a - a.mean()))) if np.std(a) > 0 else 0.0
    return coef, r2


def update_agreement(P: np.ndarray, V: np.ndarray, held: dy.TeacherDataset) -> dict:
    """Agreement of the block's update ``Delta = TF(H) - [w; lambda]`` ((L2) on full ``P``, ``V``,
    (F, d + d_pi)) with the exact teacher's update ``Delta_T`` (``held.y``: (S2) for SARSA, (A2)
    for the actor-critic, ``held.spec.algorithm`` names it) on the frames of ``held``:
    ``update_corr_sarsa`` (the public name, for every teacher) the Pearson correlation over all
    (frame, coordinate) entries, ``update_cos_sarsa`` the mean per-frame cosine,
    ``update_scale_sarsa = <Delta, Delta_T> / |Delta_T|^2`` (the block's step size relative to the
    teacher's), ``heldout_teacher_err`` the relative teacher-matching error of
    :func:`lsa_theory.experiments.training.heldout_error`; and the TD decomposition of the critic's part:
    the least-squares fit ``Delta_w ~ a u_r + b u_b + c u_v`` over all frames of the three terms of
    (S2)/(A2), ``u_r = (1/n) sum_i r_{i+1} phi_i`` (reward), ``u_b = (1/n) sum_i phi_i gamma
    phi_i^{+T} w`` (bootstrap) and ``u_v = -(1/n) sum_i phi_i phi_i^T w`` (current value), the
    teacher being ``a = b = c = alpha``: ``td_coef_reward``, ``td_coef_bootstrap``,
    ``td_coef_value`` and its ``td_fit_r2`` (a block without the bootstrap term is a reward
    regression, not TD); ``update_cubic_share`` the share ``sum |c|^2 / (sum |Delta - c|^2 +
    sum |c|^2)`` of the cubic (L2) term ``c = (1/n) Vbar22 wt (wt^T P22 wt)`` (zero for the
    constructions, which (M2) keeps on ``{P22 = 0, Vbar22 = 0}``). With an actor (d_pi > 0) also
    ``update_corr_critic``, ``update_corr_actor`` (Pearson on each part), ``update_scale_actor``
    and the same fit of the actor's part on ``g_i`` in place of ``phi_i`` (A2): ``actor_coef_reward``,
    ``actor_coef_bootstrap``, ``actor_coef_value``, ``actor_fit_r2`` (the teacher: all ``beta``),
    and with a fourth term, the score's self-reinforcement ``u_s = (1/n) sum_i g_i g_i^T lambda``
    (zero for the teacher), ``actor_coef_sharpen`` and ``actor_fit4_r2``."""
    lay = held.layout
    tf = lt.tf_from_statistics(
        held.Sigma, held.wt, np.asarray(P, float), np.asarray(V, float), held.spec.n, lay
    )
    delta, ds = tf - held.wt[:, 1:], held.y
    bl = lay.blocks(np.asarray(P, float), np.asarray(V, float))
    quad = np.einsum("fi,ij,fj->f", held.wt, bl["P22"], held.wt)
    cubic = (quad / held.spec.n)[:, None] * (held.wt @ bl["Vbar22"].T)  # (1/n) Vbar22 wt wt^T P22 wt
    a, b = delta.ravel(), ds.ravel()
    nd, ns = np.linalg.norm(delta, axis=1), np.linalg.norm(ds, axis=1)
    ok = (nd > 0) & (ns > 0)
    cos = float(np.mean(np.sum(delta * ds, axis=1)[ok] / (nd[ok] * ns[ok]))) if ok.any() else 0.0
    d = lay.d
    w = held.wt[:, 1 : 1 + d, None]

    def parts(rows: slice) -> np.ndarray:
        Sp = held.Sigma[:, rows]  # rows phi_i (or g_i) of Sigma
        return np.stack(
            [
                Sp[:, :, 2 * d],  # (1/n) sum_i r_{i+1} phi_i
                (Sp[:, :, d : 2 * d] @ w)[:, :, 0],  # (1/n) sum_i phi_i gamma phi_i^+T w
                -(Sp[:, :, :d] @ w)[:, :, 0],  # -(1/n) sum_i phi_i phi_i^T w
            ],
            axis=-1,
        ).reshape(-1, 3)

    coef, r2 = _td_fit(delta[:, :d].ravel(), parts(lay.phi))
    row = {
        "update_corr_sarsa": _corr(a, b),
        "update_cos_sarsa": cos,
        "update_scale_sarsa": float(a @ b / (b @ b)),
        "heldout_teacher_err": heldout_error(P, V, held)[0],
        "td_coef_reward": float(coef[0]),
        "td_coef_bootstrap": float(coef[1]),
        "td_coef_value": float(coef[2]),
        "td_fit_r2": r2,
        "update_cubic_share": float(
            np.sum(cubic**2) / max(np.sum((delta - cubic) ** 2) + np.sum(cubic**2), 1e-300)
        ),
    }
    if lay.d_pi:
        da, dsa = delta[:, d:], ds[:, d:]
        coef_a, r2_a = _td_fit(da.ravel(), parts(lay.g))
        lam = held.wt[:, 1 + d :, None]
        sharpen = (held.Sigma[:, lay.g][:, :, lay.g] @ lam)[:, :, 0].reshape(-1, 1)  # (1/n) sum g g^T lam
        coef4, r2_4 = _td_fit(da.ravel(), np.concatenate([parts(lay.g), sharpen], axis=1))
        row |= {
            "update_corr_critic": _corr(delta[:, :d], ds[:, :d]),
            "update_corr_actor": _corr(da, dsa),
            "update_scale_actor": float(np.sum(da * dsa) / np.sum(dsa * dsa)),
            "actor_coef_reward": float(coef_a[0]),
            "actor_coef_bootstrap": float(coef_a[1]),
            "actor_coef_value": float(coef_a[2]),
            "actor_fit_r2": r2_a,
            "actor_coef_sharpen": float(coef4[3]),
            "actor_fit4_r2": r2_4,
        }
    return row


def softmax_deploy(
    mdp: lt.TabularMDP,
    weights: Any,
    *,
    n: int,
    n_updates: int,
    tau: float,
    alpha: float,
    rng: np.random.Generator,
    solution: lt.OptimalSolution | None = None,
    algo: str | ClosedLoopAlgorithm = "sarsa",
    beta: float | None = None,
) -> np.ndarray:
    """(n_updates + 1,) greedy normalised returns (§0) along the sampled closed loop of the
    closed-loop declaration ``algo`` acting with its smooth (P2) behaviour
    (:meth:`lsa_theory.constructions.ClosedLoopAlgorithm.smooth_behaviour`: ``softmax(Q_w / tau)`` in place
    of epsilon-greedy for (S6); ``pi_lambda`` itself with an actor), through the one driver
    :func:`lsa_theory.loop_driver.closed_loop`. Draws, like :func:`lsa_theory.experiments.control.deploy`:
    the critic's
    table (SARSA: ``phi ~ U(-1, 1)``, d = S A), ``w_0 ~ U(-1, 1)^d`` (with an actor ``lambda_0 =
    0`` and ``phi_pi``), then the rollouts, each continuing from the last state. ``weights`` as
    in :func:`lsa_theory.experiments.control.resolve_weights` (``"teacher"``: the exact update, (S2) for
    SARSA), run by the (L2) forward pass. Entries after a divergence (non-finite or 1-norm above
    1e200, or an overflow in the context or update) are NaN."""
    n, T = check_int(n, "n"), check_int(n_updates, "n_updates")
    tau = check_real(tau, "tau", low=0.0, low_open=True)
    alg = closed_loop_algorithm(algo)
    S, A = mdp.n_states, mdp.n_actions
    dims, beta = deployment_dims(alg, S, A, weights, None, alpha, beta)
    hyper = {**alg.hyper, "gamma": mdp.gamma, "alpha": alpha, "beta": beta}
    resolved = resolve_weights(weights, dims.layout, alpha=alpha, beta=beta, algo=alg)
    update, _ = loop_update(resolved, dims.layout, alg, hyper, "l2")
    sol = lt.optimal(mdp) if solution is None else solution
    draws = alg.deployment_draws(S, A, dims, rng)
    w, lam = draws.w0, draws.lam0
    out = np.full(T + 1, np.nan)
    out[0] = lt.normalized_return(mdp, alg.greedy(draws, w, lam), sol)

    def on_step(t, X, g, w, lam, w_new, lam_new, traj) -> None:
        out[t] = lt.normalized_return(mdp, alg.greedy(draws, w_new, lam_new), sol)

    agent = alg.agent(draws, mdp.gamma, tau=tau)
    closed_loop(mdp, agent, w, lam, update, n=n, n_updates=T, rng=rng, keep_frames=False, on_step=on_step)
    return out


def _deploy_curve(cfg, mdp, wts, i: int, sol) -> np.ndarray:
    """Greedy normalised returns at :func:`_eval_points` along the sampled loop of ``cfg.algo``
    ((S6) epsilon-greedy, (A5) ``pi_lambda``) on held-out MDP ``i``
    (:func:`lsa_theory.experiments.control.deploy`, stream ``heldout_rng(seed, i, 1)``): the policy scored
    is the declaration's greedy one (argmax of ``Q_w``, or of ``lambda^T phi_pi``), not the behaviour. A
    loop whose dense (L1) forward pass overflows (the cubic (L2) term of a diverging block: ValueError on a
    non-finite ``H_out``) is rerun on the same stream with the equal (L2) forward pass, which stops it as
    diverged (NaN entries) instead."""
    kw = dict(
        n=cfg.n,
        n_updates=cfg.curve_updates,
        epsilon=cfg.epsilon,
        alpha=cfg.alpha,
        eval_every=cfg.eval_every,
        algo=cfg.algo,
        beta=cfg.beta,
        solution=sol,
    )
    try:
        return deploy(mdp, wts, rng=heldout_rng(cfg.seed, i, 1), **kw).normalized_return
    except ValueError as exc:
        if "NaN or inf" not in str(exc):
            raise
        return deploy(mdp, wts, rng=heldout_rng(cfg.seed, i, 1), forward="l2", **kw).normalized_return


def _eval_points(cfg) -> np.ndarray:
    return eval_points(cfg.curve_updates, cfg.eval_every)


@single_blas_thread
def evaluate_blocks(cfg, blocks: dict[str, Any], out: str | Path | None = None) -> dict:
    """Score every block of ``blocks`` (name -> ``(P, V)``, ``"constructed"`` or ``"teacher"`` (the
    exact update (S2))) on the held-out MDPs of ``cfg`` (a :class:`lsa_theory.experiments.pretrain.
    PretrainConfig`) as in the module docstring. Returns ``{"entries": {name: {...}}, "paired":
    {"at_T" | "softmax" | "smooth": {"a-b": paired_ci}}, "diverged_score", "T_eval", "n_heldout",
    "n_update_frames", "versions", "_arrays"}`` (``_arrays``: the per-MDP returns and curves
    ``{name}/...``, NaN where a loop diverged, also written to ``out/pretrain_eval.npz`` with
    ``out``); means and intervals score a diverged loop ``diverged_score`` (module docstring)."""
    T_eval = cfg.T_eval
    if cfg.curve_updates < T_eval or T_eval % cfg.eval_every:
        raise ValueError(
            f"eval_updates: T_eval = {T_eval} must be <= curve_updates = {cfg.curve_updates} and a "
            f"multiple of eval_every = {cfg.eval_every}"
        )
    lay = cfg.layout
    held, mdps = heldout_batch(cfg)
    sols = [lt.optimal(m) for m in mdps]
    frames = dy.teacher_dataset(cfg.teacher_config().heldout_spec(), np.random.default_rng([cfg.seed, 7]))
    Pc, Vc = cfg.alg.construction_blocks(cfg.dims, cfg.hyper)
    same = cfg.alg.smooth_is_behaviour  # the (P2) behaviour is the deployed one: no second loop
    entries, arrays = {}, {}
    for name, wts in blocks.items():
        t0 = time.perf_counter()
        PV = (Pc, Vc) if isinstance(wts, str) else (np.asarray(wts[0], float), np.asarray(wts[1], float))
        curves, soft = [], []
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging loop stops (n_diverged)
            for i, mdp in enumerate(progress(mdps, desc=f"evaluate {name}")):
                curves.append(_deploy_curve(cfg, mdp, wts, i, sols[i]))
                if same:  # e.g. (A5) acts with pi_lambda: the sampled softmax loop is the deployment
                    continue
                soft.append(
                    softmax_deploy(
                        mdp,
                        wts,
                        n=cfg.n,
                        n_updates=T_eval,
                        tau=cfg.tau,
                        alpha=cfg.alpha,
                        rng=heldout_rng(cfg.seed, i, 1),
                        solution=sols[i],
                    )[-1]
                )
        curves = np.stack(curves)
        points = _eval_points(cfg)
        at_T = curves[:, int(np.flatnonzero(points == T_eval)[0])]
        soft = at_T.copy() if same else np.asarray(soft)
        with torch.no_grad():
            ws, _ = el.expected_loop(
                held, torch.as_tensor(PV[0]), torch.as_tensor(PV[1]), lay, n=cfg.n, T=cfg.T, tau=cfg.tau
            )
            smooth = el.softmax_return(held, ws[-1], cfg.tau).numpy()
        e = {"reference_update": cfg.algo}
        e["heldout_return"], e["heldout_return_sem"] = mean_sem(at_T)
        e["heldout_return_final"], e["heldout_return_final_sem"] = mean_sem(curves[:, -1])
        e["heldout_return_softmax"], e["heldout_return_softmax_sem"] = mean_sem(soft)
        e["heldout_smooth_return"], e["heldout_smooth_return_sem"] = mean_sem(smooth)
        e["n_diverged"] = int(np.sum(~np.isfinite(at_T)))
        e["n_diverged_final"] = int(np.sum(~np.isfinite(curves[:, -1])))
        e["n_diverged_softmax"] = int(np.sum(~np.isfinite(soft)))
        e["n_diverged_smooth"] = int(np.sum(~np.isfinite(smooth)))
        e["diverged_score"] = DIVERGED_SCORE
        if wts == "teacher":
            e.update(dict.fromkeys(("cos_S3_effective", "cos_S3_full", "alpha_eff", "cos_S3_fixed_alpha")))
            e.update(
                update_corr_sarsa=1.0, update_cos_sarsa=1.0, update_scale_sarsa=1.0, heldout_teacher_err=0.0
            )
            e.update(dict.fromkeys(("td_coef_reward", "td_coef_bootstrap", "td_coef_value"), cfg.alpha))
            e["td_fit_r2"] = 1.0
            if lay.d_pi:  # the actor-part keys of update_agreement
                e.update(
                    update_corr_critic=1.0, update_corr_actor=1.0, update_scale_actor=1.0, actor_fit_r2=1.0
                )
                e.update(
                    dict.fromkeys(("actor_coef_reward", "actor_coef_bootstrap", "actor_coef_value"), cfg.beta)
                )
        else:
            e.update(s3_alignment(*PV, lay, cfg.alpha, cfg.algo, cfg.beta))
            e.update(update_agreement(*PV, frames))
        e["eval_time"] = time.perf_counter() - t0
        entries[name] = e
        arrays.update({f"{name}/at_T": at_T, f"{name}/curves": curves, f"{name}/softmax": soft})
        arrays[f"{name}/smooth"] = smooth
    arrays["updates"] = points
    names = list(blocks)
    paired = {}
    for key in ("at_T", "softmax", "smooth"):
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                paired.setdefault(key, {})[f"{a}-{b}"] = paired_ci(arrays[f"{a}/{key}"], arrays[f"{b}/{key}"])
    doc = {
        "entries": entries,
        "reference_update": cfg.algo,
        "paired": paired,
        "diverged_score": DIVERGED_SCORE,
        "T_eval": T_eval,
        "n_heldout": cfg.heldout_k,
        "n_update_frames": frames.n_frames,
        "versions": versions(),
    }
    if out is not None:
        atomic_savez(Path(out) / "pretrain_eval.npz", **arrays)
    return to_jsonable(doc) | {"_arrays": arrays}

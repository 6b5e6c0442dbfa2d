r"""(P3): the reinforcement-pretrained block against teacher mimicking, the construction and SARSA.

Every block is scored on the same ``heldout_k`` held-out MDPs with fresh features (MDP ``i`` from
``heldout_rng(seed, i)``, its features, ``w_0`` and rollouts from ``heldout_rng(seed, i, 1)``, see
:func:`experiments.pretrain.heldout_batch`), so that differences are paired:

- ``heldout_return``: greedy normalised return (§0) after ``T_eval`` updates of the *sampled*
  closed loop (S6) with epsilon-greedy behaviour (:func:`experiments.control.deploy`, the real
  deployment), mean and standard error over the held-out MDPs; ``heldout_return_final`` the same
  after ``curve_updates`` updates (beyond the (P2) horizon);
- ``heldout_return_softmax``: the same on the sampled loop with the softmax behaviour of (P2)
  (:func:`softmax_deploy`);
- ``heldout_smooth_return``: the (P2) objective itself on the held-out MDPs (expected-context loop,
  softmax policy after ``T`` updates);
- structure, :func:`s3_alignment`: ``cos_S3_effective``, ``cos_S3_full``, ``alpha_eff``,
  ``cos_S3_fixed_alpha``;
- update, :func:`update_agreement` on held-out teacher frames (prompts met along the SARSA loop
  on fresh MDPs with fresh features): ``update_corr_sarsa``, ``update_cos_sarsa``,
  ``update_scale_sarsa``, ``heldout_teacher_err``.

Paired differences ``a - b`` over the held-out MDPs come with 95 % Student-t intervals
(:func:`paired_ci`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.stats
import torch

import constructions
import dynamics as dy
import lsa_theory as lt
from lsa_theory._checks import check_int, check_real

from . import expected_loop as el
from .control import _diverged, deploy, resolve_weights
from .control import _eval_points as _control_eval_points
from .control import l2_readout as _l2
from .envs import heldout_rng
from .io import (
    atomic_savez,
    progress,
    read_json,
    single_blas_thread,
    to_jsonable,
    versions,
)
from .training import heldout_error, structure_metrics

__all__ = [
    "s3_alignment",
    "update_agreement",
    "softmax_deploy",
    "paired_ci",
    "evaluate_blocks",
    "ENTRY_FIELDS",
    "plot_returns",
    "plot_rl_training",
    "plot_blocks",
    "plot_sweep",
]

#: The keys of every block's entry in ``lsa-theory pretrain --json`` (the public contract).
ENTRY_FIELDS = (
    "heldout_return",
    "heldout_return_sem",
    "cos_S3_effective",
    "cos_S3_full",
    "update_corr_sarsa",
)


def s3_alignment(P: np.ndarray, V: np.ndarray, layout: lt.Layout, alpha: float | None = None) -> dict:
    """Alignment of a block (full ``P``, ``V`` (D, D), SARSA layout) with (S3) up to its symmetries.

    The (S3) blocks for every scale ``c`` and every step size ``alpha`` span the plane
    ``{(a P12*, b Vbar21*(1))}``, ``alpha = a b`` (the scaling ``(cP, V/c)`` of (S4) moves along it).
    With ``x = <Vbar21, Vbar21*(1)> / |Vbar21*(1)|`` and ``y = <P12, P12*> / |P12*|`` the projection
    of the block on that plane has norm ``sqrt(x^2 + y^2)``; ``cos_S3_effective = sign(x y)
    sqrt(x^2 + y^2) / |(Vbar21, P12)|`` (negative: the nearest point of the plane is an (S3) block
    with a negative step size), ``cos_S3_full`` the same divided by the norm of ALL entries of ``P``
    and ``V`` (the construction is zero elsewhere), ``alpha_eff = (x / |Vbar21*(1)|) (y / |P12*|)``
    the step size of the nearest construction. With ``alpha``: ``cos_S3_fixed_alpha`` and ``c``,
    the cosine to the scaling orbit of (S3) at that step size (:func:`experiments.training.
    structure_metrics`, no invisible direction)."""
    if layout.d_pi:
        raise ValueError("layout: s3_alignment is for the SARSA layout (d_pi = 0)")
    P, V = np.asarray(P, dtype=np.float64), np.asarray(V, dtype=np.float64)
    b = layout.blocks(P, V)
    b0 = layout.blocks(*constructions.sarsa(layout.d, 1.0))
    nA0, nB0 = np.linalg.norm(b0["Vbar21"]), np.linalg.norm(b0["P12"])
    x = float(np.sum(b["Vbar21"] * b0["Vbar21"]) / nA0)
    y = float(np.sum(b["P12"] * b0["P12"]) / nB0)
    proj = np.sign(x * y) * np.hypot(x, y)
    eff = np.hypot(np.linalg.norm(b["Vbar21"]), np.linalg.norm(b["P12"]))
    full = np.hypot(np.linalg.norm(P), np.linalg.norm(V))
    row = {
        "cos_S3_effective": float(proj / eff) if eff > 0 else 0.0,
        "cos_S3_full": float(proj / full) if full > 0 else 0.0,
        "alpha_eff": float(x * y / (nA0 * nB0)),
        "norm_P22": float(np.linalg.norm(b["P22"])),
        "norm_Vbar22": float(np.linalg.norm(b["Vbar22"])),
    }
    if alpha is not None:
        alpha = check_real(alpha, "alpha", low=0.0, low_open=True)
        spec = dy.TeacherSpec(S=1, A=layout.d, alpha=alpha, k=1, frames=1)
        p = layout.D - layout.m
        summary = dy.TeacherDataset(
            spec,
            np.zeros((1, layout.m, layout.m)),
            np.zeros((1, p)),
            np.zeros((1, layout.d)),
            np.zeros(1, int),
        )
        sm = structure_metrics(P, V, summary, U=np.zeros((layout.m, 0)))
        row["cos_S3_fixed_alpha"], row["c_fixed_alpha"] = sm["cos"], sm["c"]
    return row


def update_agreement(P: np.ndarray, V: np.ndarray, held: dy.TeacherDataset) -> dict:
    """Agreement of the block's update ``Delta = TF(H) - w`` ((L2) on full ``P``, ``V``) with the
    SARSA update ``Delta_S = w_SARSA - w`` (S2) on the frames of ``held``: ``update_corr_sarsa``
    the Pearson correlation over all (frame, coordinate) entries, ``update_cos_sarsa`` the mean
    per-frame cosine, ``update_scale_sarsa = <Delta, Delta_S> / |Delta_S|^2`` (the block's step
    size relative to ``alpha``), ``heldout_teacher_err`` the relative teacher-matching error of
    :func:`experiments.training.heldout_error`; and the TD decomposition: the least-squares fit
    ``Delta ~ a u_r + b u_b + c u_v`` over all frames of the three terms of (S2),
    ``u_r = (1/n) sum_i r_{i+1} phi_i`` (reward), ``u_b = (1/n) sum_i phi_i gamma phi_i^{+T} w``
    (bootstrap) and ``u_v = -(1/n) sum_i phi_i phi_i^T w`` (current value), SARSA being ``a = b = c =
    alpha``: ``td_coef_reward``, ``td_coef_bootstrap``, ``td_coef_value`` and its ``td_fit_r2``
    (a block without the bootstrap term is a reward regression, not TD)."""
    lay = held.layout
    tf = lt.tf_from_statistics(
        held.Sigma, held.wt, np.asarray(P, float), np.asarray(V, float), held.spec.n, lay
    )
    delta, ds = tf - held.wt[:, 1:], held.y
    a, b = delta.ravel(), ds.ravel()
    corr = float(np.corrcoef(a, b)[0, 1]) if np.std(a) > 0 else 0.0
    nd, ns = np.linalg.norm(delta, axis=1), np.linalg.norm(ds, axis=1)
    ok = (nd > 0) & (ns > 0)
    cos = float(np.mean(np.sum(delta * ds, axis=1)[ok] / (nd[ok] * ns[ok]))) if ok.any() else 0.0
    d = lay.d
    w = held.wt[:, 1:]
    Sp = held.Sigma[:, :d]  # rows phi_i of Sigma
    parts = np.stack(
        [
            Sp[:, :, 2 * d],  # (1/n) sum_i r_{i+1} phi_i
            (Sp[:, :, d : 2 * d] @ w[:, :, None])[:, :, 0],  # (1/n) sum_i phi_i gamma phi_i^+T w
            -(Sp[:, :, :d] @ w[:, :, None])[:, :, 0],  # -(1/n) sum_i phi_i phi_i^T w
        ],
        axis=-1,
    ).reshape(-1, 3)
    coef, *_ = np.linalg.lstsq(parts, a, rcond=None)
    resid = a - parts @ coef
    return {
        "update_corr_sarsa": corr,
        "update_cos_sarsa": cos,
        "update_scale_sarsa": float(a @ b / (b @ b)),
        "heldout_teacher_err": heldout_error(P, V, held)[0],
        "td_coef_reward": float(coef[0]),
        "td_coef_bootstrap": float(coef[1]),
        "td_coef_value": float(coef[2]),
        "td_fit_r2": float(1.0 - resid @ resid / ((a - a.mean()) @ (a - a.mean()))) if np.std(a) > 0 else 0.0,
    }


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
) -> np.ndarray:
    """(n_updates + 1,) greedy normalised returns (§0) along the sampled closed loop (S6) with the
    softmax behaviour ``softmax(Q_w / tau)`` of (P2) in place of epsilon-greedy. Draws, like
    :func:`experiments.control.deploy`: features ``phi ~ U(-1, 1)`` (d = S A), ``w_0 ~ U(-1, 1)^d``,
    then the rollouts, each continuing from the last state. ``weights`` as in
    :func:`experiments.control.resolve_weights` (``"teacher"``: the exact update (S2)). Entries
    after a divergence (non-finite or 1-norm above 1e200) are NaN."""
    n, T = check_int(n, "n"), check_int(n_updates, "n_updates")
    tau = check_real(tau, "tau", low=0.0, low_open=True)
    S, A = mdp.n_states, mdp.n_actions
    lay = lt.Layout(S * A)
    blocks = resolve_weights(weights, lay, alpha=alpha)
    sol = lt.optimal(mdp) if solution is None else solution
    phi = lt.random_features(S, A, None, rng)
    w = rng.uniform(-1.0, 1.0, S * A)
    out = np.full(T + 1, np.nan)
    out[0] = lt.normalized_return(mdp, lt.greedy(phi @ w), sol)
    s0 = None
    for t in range(1, T + 1):
        traj = lt.rollout(mdp, lt.policies.softmax_rows(phi @ w / tau), n, rng, s0)
        X = lt.sarsa_columns(traj, phi, mdp.gamma)
        w = lt.sarsa_update(X, w, alpha) if blocks is None else _l2(X, np.concatenate([[1.0], w]), blocks)
        if _diverged(w):
            break
        out[t] = lt.normalized_return(mdp, lt.greedy(phi @ w), sol)
        s0 = int(traj.states[-1])
    return out


def _deploy_curve(cfg, mdp, wts, i: int, sol) -> np.ndarray:
    """Greedy normalised returns at :func:`_eval_points` along the epsilon-greedy loop (S6) on
    held-out MDP ``i`` (:func:`experiments.control.deploy`, stream ``heldout_rng(seed, i, 1)``)."""
    return deploy(
        mdp,
        wts,
        n=cfg.n,
        n_updates=cfg.curve_updates,
        epsilon=cfg.epsilon,
        alpha=cfg.alpha,
        rng=heldout_rng(cfg.seed, i, 1),
        eval_every=cfg.eval_every,
        solution=sol,
    ).normalized_return


def _eval_points(cfg) -> np.ndarray:
    return _control_eval_points(cfg.curve_updates, cfg.eval_every)


def paired_ci(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> dict:
    """Paired difference ``a - b`` over the MDPs where both are finite: ``mean``, ``sem``,
    ``ci_low``, ``ci_high`` (Student-t at ``level``), ``n``."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    diff = a[ok] - b[ok]
    n = int(diff.size)
    if n < 2:
        return {
            "mean": float(diff.mean()) if n else None,
            "sem": None,
            "ci_low": None,
            "ci_high": None,
            "n": n,
        }
    sem = float(diff.std(ddof=1) / np.sqrt(n))
    q = float(scipy.stats.t.ppf(0.5 + level / 2, n - 1))
    m = float(diff.mean())
    return {"mean": m, "sem": sem, "ci_low": m - q * sem, "ci_high": m + q * sem, "n": n}


def _mean_sem(x: np.ndarray) -> tuple[float | None, float | None]:
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return None, None
    return float(x.mean()), float(x.std(ddof=1) / np.sqrt(x.size)) if x.size > 1 else 0.0


@single_blas_thread
def evaluate_blocks(cfg, blocks: dict[str, Any], out: str | Path | None = None) -> dict:
    """Score every block of ``blocks`` (name -> ``(P, V)``, ``"constructed"`` or ``"teacher"`` (the
    exact update (S2))) on the held-out MDPs of ``cfg`` (a :class:`experiments.pretrain.
    PretrainConfig`) as in the module docstring. Returns ``{"entries": {name: {...}}, "paired":
    {"at_T" | "softmax" | "smooth": {"a-b": paired_ci}}, "T_eval", "n_heldout", "n_update_frames",
    "versions", "_arrays"}`` (``_arrays``: the per-MDP returns and curves ``{name}/...``, also
    written to ``out/pretrain_eval.npz`` with ``out``)."""
    from .pretrain import heldout_batch

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
    Pc, Vc = constructions.sarsa(lay.d, cfg.alpha)
    entries, arrays = {}, {}
    for name, wts in blocks.items():
        t0 = time.perf_counter()
        PV = (Pc, Vc) if isinstance(wts, str) else (np.asarray(wts[0], float), np.asarray(wts[1], float))
        curves, soft = [], []
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging loop stops (n_diverged)
            for i, mdp in enumerate(progress(mdps, desc=f"evaluate {name}")):
                curves.append(_deploy_curve(cfg, mdp, wts, i, sols[i]))
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
        curves, soft = np.stack(curves), np.asarray(soft)
        points = _eval_points(cfg)
        at_T = curves[:, int(np.flatnonzero(points == T_eval)[0])]
        with torch.no_grad():
            ws, _ = el.expected_loop(
                held, torch.as_tensor(PV[0]), torch.as_tensor(PV[1]), lay, n=cfg.n, T=cfg.T, tau=cfg.tau
            )
            smooth = el.softmax_return(held, ws[-1], cfg.tau).numpy()
        e = {}
        e["heldout_return"], e["heldout_return_sem"] = _mean_sem(at_T)
        e["heldout_return_final"], e["heldout_return_final_sem"] = _mean_sem(curves[:, -1])
        e["heldout_return_softmax"], e["heldout_return_softmax_sem"] = _mean_sem(soft)
        e["heldout_smooth_return"], e["heldout_smooth_return_sem"] = _mean_sem(smooth)
        e["n_diverged"] = int(np.sum(~np.isfinite(at_T)))
        e["n_diverged_final"] = int(np.sum(~np.isfinite(curves[:, -1])))
        e["n_diverged_softmax"] = int(np.sum(~np.isfinite(soft)))
        if wts == "teacher":
            e.update(dict.fromkeys(("cos_S3_effective", "cos_S3_full", "alpha_eff", "cos_S3_fixed_alpha")))
            e.update(
                update_corr_sarsa=1.0, update_cos_sarsa=1.0, update_scale_sarsa=1.0, heldout_teacher_err=0.0
            )
            e.update(dict.fromkeys(("td_coef_reward", "td_coef_bootstrap", "td_coef_value"), cfg.alpha))
            e["td_fit_r2"] = 1.0
        else:
            e.update(s3_alignment(*PV, lay, cfg.alpha))
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
        "paired": paired,
        "T_eval": T_eval,
        "n_heldout": cfg.heldout_k,
        "n_update_frames": frames.n_frames,
        "versions": versions(),
    }
    if out is not None:
        atomic_savez(Path(out) / "pretrain_eval.npz", **arrays)
    return to_jsonable(doc) | {"_arrays": arrays}


def plot_returns(out: str | Path) -> Path:
    """Held-out greedy normalised return along the sampled loop (S6) for every block (mean +- s.e.
    over the held-out MDPs) from ``out/pretrain_eval.npz`` and ``out/pretrain.json``; the dotted
    line marks the (P2) horizon ``T``. Writes ``out/pretrain_returns.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    doc = read_json(out / "pretrain.json")
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    with np.load(out / "pretrain_eval.npz") as z:
        x = z["updates"]
        for name in doc["blocks"]:
            c = z[f"{name}/curves"]
            m = np.nanmean(c, axis=0)
            s = np.nanstd(c, axis=0, ddof=1) / np.sqrt(np.isfinite(c).sum(axis=0).clip(1))
            (line,) = ax.plot(x, m, label=name)
            ax.fill_between(x, m - s, m + s, color=line.get_color(), alpha=0.2, lw=0)
    ax.axvline(doc["config"]["T"], color="k", ls=":", lw=0.8, label="(P2) horizon T")
    ax.axhline(0.0, color="0.5", lw=0.6)
    ax.axhline(1.0, color="k", lw=0.6)
    cfg = doc["config"]
    ax.set_xlabel("updates of the sampled loop (S6), epsilon-greedy")
    ax.set_ylabel("greedy normalised return")
    ax.set_title(
        f"S={cfg['S']}, A={cfg['A']}, k={cfg['k']} training MDPs, {doc['n_heldout']} held-out", fontsize=9
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / "pretrain_returns.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_rl_training(out: str | Path) -> Path:
    """(P2) training curves from ``out/rl/rl.json``: the smooth objective on the training and the
    held-out MDPs, and the RL block's (S3) alignment and effective step size, against the step.
    Writes ``out/pretrain_training.png``."""
    plt = _plt()
    out = Path(out)
    doc = read_json(out / "rl" / "rl.json")
    h = doc["history"]

    def arr(key):
        return np.array([np.nan if v is None else v for v in h[key]], dtype=float)

    step = arr("step")
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    axes[0].plot(step, arr("objective"), label="training MDPs")
    axes[0].plot(step, arr("heldout_objective"), label="held-out MDPs (fresh features)")
    axes[0].set_ylabel("smooth (P2) objective")
    axes[1].plot(step, arr("cos_S3_effective"), label="cos to (S3), effective blocks")
    axes[1].plot(step, arr("cos_S3_full"), "--", label="cos to (S3), all of P, V")
    axes[1].plot(step, arr("alpha_eff"), ":", label="alpha_eff of the nearest (S3)")
    for ax in axes:
        ax.set_xlabel("Adam step")
        ax.legend(fontsize=8)
    c = doc["config"]
    fig.suptitle(
        f"(P2) S={c['S']}, A={c['A']}, T={c['T']}, k={c['k']}, tau={c['tau']}, mode {c['mode']}", fontsize=10
    )
    fig.tight_layout()
    path = out / "pretrain_training.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_blocks(out: str | Path) -> Path:
    """Heat maps of the (P2) block's ``P`` and ``V`` (``out/rl/rl.npz``) beside the (P1) block's
    (``out/teacher/train.npz``, when present), with the (L2) split ``(m | D - m)``. Writes
    ``out/pretrain_blocks.png``."""
    plt = _plt()
    out = Path(out)
    mats = {}
    with np.load(out / "rl" / "rl.npz") as z:
        mats["(P2) P"], mats["(P2) V"] = z["P"], z["V"]
    if (out / "teacher" / "train.npz").exists():
        with np.load(out / "teacher" / "train.npz") as z:
            mats["(P1) P"], mats["(P1) V"] = z["P"], z["V"]
    D = mats["(P2) P"].shape[0]
    m = 2 * ((D - 2) // 3) + 1
    fig, axes = plt.subplots(1, len(mats), figsize=(4.2 * len(mats), 4.0), squeeze=False)
    for ax, (title, M) in zip(axes[0], mats.items(), strict=True):
        lim = float(np.abs(M).max()) or 1.0
        im = ax.imshow(M, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.axhline(m - 0.5, color="k", lw=0.6)
        ax.axvline(m - 0.5, color="k", lw=0.6)
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax, shrink=0.7)
    fig.tight_layout()
    path = out / "pretrain_blocks.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_sweep(out: str | Path) -> Path:
    """Held-out return (rl, rl before training, teacher-mimicking, exact SARSA) and the RL
    block's (S3) cosine and update correlation against ``T`` and ``k`` from
    ``out/pretrain_sweep.json``. Writes ``out/pretrain_sweep.png``."""
    plt = _plt()
    out = Path(out)
    doc = read_json(out / "pretrain_sweep.json")
    rows, base = doc["rows"], doc["base"]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    for col, (var, fixed, fval) in enumerate((("T", "k", base["k"]), ("k", "T", base["T"]))):
        sel = sorted((r for r in rows if r[fixed] == fval), key=lambda r: r[var])
        if not sel:
            continue
        x = [r[var] for r in sel]
        ax = axes[0, col]
        for name, style in (("rl", "o-"), ("rl_initial", "x:"), ("teacher", "s--"), ("exact", "^-.")):
            y = np.array([np.nan if r[f"{name}_return"] is None else r[f"{name}_return"] for r in sel])
            e = np.array([0.0 if r[f"{name}_return_sem"] is None else r[f"{name}_return_sem"] for r in sel])
            ax.errorbar(x, y, yerr=e, fmt=style, capsize=3, label=name)
        ax.set_ylabel("held-out greedy normalised return at T")
        ax.set_title(f"{fixed} = {fval}", fontsize=9)
        ax = axes[1, col]
        ax.plot(x, [r["rl_cos_S3_effective"] for r in sel], "o-", label="rl: cos to (S3), effective")
        ax.plot(x, [r["rl_update_corr_sarsa"] for r in sel], "s--", label="rl: update corr. with SARSA")
        ax.plot(
            x, [r["teacher_update_corr_sarsa"] for r in sel], "^:", label="teacher-mimicking: update corr."
        )
        ax.set_ylim(-1.05, 1.05)
        for a in axes[:, col]:
            a.set_xscale("log", base=2)
            a.set_xlabel(var)
            a.legend(fontsize=7)
    fig.suptitle(f"(P3) sweeps: S={base['S']}, A={base['A']}", fontsize=10)
    fig.tight_layout()
    path = out / "pretrain_sweep.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

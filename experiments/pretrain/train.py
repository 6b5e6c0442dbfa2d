r"""Reinforcement pretraining (P2) of one LSA block, against teacher mimicking (P1).

(P2), smooth form: choose the full ``(P, V)`` (D x D, SARSA layout (H), ``D = 3d + 2``; or the
actor-critic layout (A1), ``D = 3d + 2 d_pi + 2``, with ``algo="actor_critic"``) to maximise

.. math:: R(\theta) = \frac1K \sum_{k=1}^K \frac{J_k(\pi_{w_T^{(k)}}) - J_k(\mathrm{uniform})}
          {J_k(\pi^*_k) - J_k(\mathrm{uniform})},

the mean normalised return (§0) of the softmax policy ``pi_w = softmax(Q_w / tau)`` after ``T``
updates ``w_{t+1} = TF_theta(H_t)`` of the expected-context loop
(:mod:`lsa_theory.experiments.pretrain.expected_loop`), over ``K`` training MDPs of the [LL] family,
each with fresh features ``phi ~ U(-1, 1)`` (d = S A) and ``w_0 ~ U(-1, 1)^d``. No teacher enters:
the objective sees only returns. With an actor (``algo`` a registered closed-loop algorithm whose declaration
has one, e.g. ``"actor_critic"``: state-value critic ``d = S``, actor ``d_pi = S A``, (A1)-(A5))
the policy is the loop's own actor ``pi_{lambda_T}`` (temperature 1, ``tau`` unused), the loop
parameter is ``[w; lambda]`` from ``w_0 ~ U(-1, 1)^d``, ``lambda_0 = 0``, and the tables are the
declaration's (:func:`lsa_theory.experiments.pretrain.expected_loop.draw_task`). ``horizon="mean"``
averages the return over ``t = 1..T`` instead. The training
sample is frozen (an empirical objective, deterministic gradient); minibatches of MDPs are
optional.

Optimisation as in :mod:`lsa_theory.experiments.training`: Adam, learning rate ``lr`` decayed to
``lr_final`` (:func:`lsa_theory.experiments.training.lr_at`), initialisation
:func:`lsa_theory.experiments.training.init_params` of the matching
:class:`~lsa_theory.experiments.training.TrainConfig` (so the (P2) block and the (P1) block of the
comparison start from the same point), float64. Only the (L2) blocks ``P12, P22, Vbar21, Vbar22`` enter the
readout, so the others receive exactly zero gradient and never move (reported as ``frozen_moved``).

The comparison (P3) that trains both blocks and scores them is :mod:`lsa_theory.experiments.pretrain.compare`.

Results (``out``): ``rl.json`` (config, seed, versions, history, final, timings) and ``rl.npz``
(``P``, ``V``, ``P0``, ``V0``), atomically at every checkpoint (``"finished": false``) and at the
end; ``rl_checkpoint.pt`` (params, optimizer, minibatch state, step, history). :func:`train_rl`
resumes from it; the resumed run equals the uninterrupted one bit for bit (same thread count).
The logged smooth objectives (``objective``, ``heldout_objective``) are means over ALL their MDPs, a
loop that overflowed scored 0 (:mod:`lsa_theory.experiments.stats`) and counted in ``*_nonfinite``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lsa_theory.checks import check_int

from ..io import atomic_savez, atomic_write_json, load_checkpoint, progress, versions
from ..stats import mean_sem
from ..training import frozen_blocks, full_params, lr_at
from ..training.config import _seed
from ..training.loop import _atomic_torch_save, _Batches, _numpy_pv
from . import expected_loop as el
from .config import _LATER_FIELDS, PretrainConfig, heldout_batch, init_start, training_batch
from .evaluate import s3_alignment

__all__ = ["CHECKPOINT", "TrainingDiverged", "RLResult", "train_rl", "rl_loss"]

CHECKPOINT = "rl_checkpoint.pt"

#: The logged training objective is computed on the first this many training MDPs.
METRIC_MDPS = 512

#: :func:`train_rl` stops with RuntimeError after this many consecutive skipped steps.
MAX_SKIPS = 50


class TrainingDiverged(RuntimeError):
    """(P2) training stopped: :data:`MAX_SKIPS` consecutive steps whose objective or gradient was
    not finite (a training loop overflowed every time). A result of the run, not bad input: the
    command reports it in one line and exits 1; :func:`lsa_theory.experiments.pretrain.compare.pretrain_sweep`
    records it as a failed row."""


def rl_loss(cfg: PretrainConfig, batch: el.MDPBatch, P: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """``-R(theta)`` of the module docstring on ``batch`` (the quantity Adam minimises)."""
    return -el.rl_objective(batch, P, V, cfg.layout, n=cfg.n, T=cfg.T, tau=cfg.tau, horizon=cfg.horizon)


@dataclass
class RLResult:
    """Outcome of :func:`train_rl`: learned ``P``, ``V`` and the start ``P0``, ``V0`` (float64
    numpy, D x D; (H, D, D) for ``cfg.heads = H > 1`` linear heads), ``final`` metrics, ``history``
    (name -> list over logged steps), ``finished``, ``train_time`` (seconds in optimizer steps over
    all sessions)."""

    config: PretrainConfig
    P: np.ndarray
    V: np.ndarray
    P0: np.ndarray
    V0: np.ndarray
    final: dict
    history: dict
    finished: bool
    train_time: float


def _numpy(params: dict, layout) -> tuple[np.ndarray, np.ndarray]:
    """:func:`lsa_theory.experiments.training.loop._numpy_pv`, copied: the arrays must not follow the live
    parameters."""
    P, V = _numpy_pv(params, layout)
    return P.copy(), V.copy()


def _metrics(cfg, step, params, batch, held, P0, V0, train_time, skipped) -> dict:
    lay = cfg.layout
    kw = dict(n=cfg.n, T=cfg.T, tau=cfg.tau, horizon=cfg.horizon, per_mdp=True)
    row = {"step": step, "lr": lr_at(cfg, max(step - 1, 0)), "train_time": train_time, "skipped": skipped}
    with torch.no_grad():
        P, V = full_params(params, lay)
        sub = batch.take(slice(0, METRIC_MDPS))
        for key, b in (("objective", sub), ("heldout_objective", held)):
            vals = el.rl_objective(b, P, V, lay, **kw).numpy()
            # every loop counted: an overflowed one scores 0 (uniform policy), counted beside
            row[key], _ = mean_sem(vals)
            row[f"{key}_nonfinite"] = int(np.sum(~np.isfinite(vals)))
    Pn, Vn = _numpy(params, lay)
    (Ps, Vs), (P0s, V0s) = _heads(Pn, Vn), _heads(P0, V0)
    # H linear heads: each head's alignment, averaged over the heads (one head: its own, unchanged)
    aligned = [s3_alignment(Ps[h], Vs[h], lay, algo=cfg.algo) for h in range(len(Ps))]
    row.update(
        aligned[0] if len(aligned) == 1 else {k: float(np.mean([a[k] for a in aligned])) for k in aligned[0]}
    )
    moved = 0.0
    for h in range(len(Ps)):
        fz, fz0 = frozen_blocks(Ps[h], Vs[h], lay), frozen_blocks(P0s[h], V0s[h], lay)
        moved = max(moved, float(max(np.abs(fz[k] - fz0[k]).max() for k in fz)))
    row["frozen_moved"] = moved
    return row


def _heads(P: np.ndarray, V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(P, V)`` as (H, D, D) stacks (a (D, D) pair is one head)."""
    return (P[None], V[None]) if P.ndim == 2 else (P, V)


def train_rl(
    cfg: PretrainConfig,
    out: str | Path | None = None,
    stop_at: int | None = None,
    num_threads: int | None = 1,
) -> RLResult:
    """(P2): maximise ``R(theta)`` (module docstring) with Adam from ``init_params`` of
    ``cfg.teacher_config()``; logs ``objective`` (on the first :data:`METRIC_MDPS` training MDPs),
    ``heldout_objective`` (the same on the held-out
    batch, :func:`heldout_batch`), the (S3) alignment of :func:`lsa_theory.experiments.pretrain.evaluate.
    s3_alignment` and ``frozen_moved`` every ``log_every`` steps. With ``out``: checkpoints every
    ``checkpoint_every`` steps, resumes from ``out/rl_checkpoint.pt`` (ValueError if it holds
    another configuration), writes ``rl.json`` and ``rl.npz``. ``stop_at``: stop after that many
    total steps (``finished=False``). RuntimeError when the objective stops being finite.

    ``cfg.heads = H > 1`` linear heads: the same loop on the stacked heads (H, D, D) of
    :func:`lsa_theory.experiments.pretrain.init_start` (exact: the readout is the sum of the heads' (L2)
    readouts, :func:`lsa_theory.experiments.pretrain.expected_loop.expected_step`); the alignment
    metrics are each head's, averaged over the heads, ``frozen_moved`` the maximum over the heads. A
    nonlinear ``cfg.attention`` is a ValueError naming the sampled route."""
    if not isinstance(cfg, PretrainConfig):
        raise ValueError(f"cfg: expected a PretrainConfig, got {type(cfg).__name__}")
    if not cfg.exact_loop:
        raise ValueError(
            f"attention: the expected-context loop is exact only for a block affine in Sigma (linear "
            f"heads), got heads = {cfg.heads}, attention = {cfg.attention!r}; train this block on "
            f"sampled loops (lsa_theory.experiments.pretrain.sampled.train_rl_sampled, the score-function "
            f"route of expected_loop.score_function_gradient with attention=...)"
        )
    if stop_at is not None:
        stop_at = check_int(stop_at, "stop_at", minimum=0)
    out = Path(out) if out is not None else None
    prev_threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(check_int(num_threads, "num_threads"))
    try:
        t0 = time.perf_counter()
        batch, _ = training_batch(cfg)
        held, _ = heldout_batch(cfg)
        data_time = time.perf_counter() - t0
        lay = cfg.layout
        params = {k: v.detach().clone().requires_grad_(True) for k, v in init_start(cfg).items()}
        P0, V0 = _numpy(params, lay)
        opt = torch.optim.Adam(list(params.values()), lr=cfg.lr, eps=cfg.adam_eps)
        batches = _Batches(cfg.k, cfg.batch_mdps, _seed(cfg.seed, 6))
        step, hist, train_time, skipped, streak = 0, [], 0.0, 0, 0
        if out is not None and (out / CHECKPOINT).exists():
            ck = load_checkpoint(out / CHECKPOINT)  # weights only; DamagedFile naming it
            if _LATER_FIELDS | ck["config"] != cfg.as_dict():
                raise ValueError(
                    f"out: {out / CHECKPOINT} holds another configuration; use a fresh directory"
                )
            with torch.no_grad():
                for k in params:
                    params[k].copy_(ck["params"][k])
            opt.load_state_dict(ck["optimizer"])
            batches.load(ck["batches"])
            step, hist, train_time, skipped = ck["step"], ck["history"], ck["train_time"], ck["skipped"]
            streak = ck.get("streak", 0)  # consecutive skipped steps, so a resumed run stops where the
            # uninterrupted one does (checkpoints written before this field resume with 0)

        def save(finished: bool) -> RLResult:
            final = (
                hist[-1]
                if hist and hist[-1]["step"] == step
                else _metrics(cfg, step, params, batch, held, P0, V0, train_time, skipped)
            )
            P, V = _numpy(params, lay)
            cols = {key: [r.get(key) for r in hist] for key in (hist[0] if hist else {})}
            if out is not None:
                _atomic_torch_save(
                    out / CHECKPOINT,
                    {
                        "config": cfg.as_dict(),
                        "step": step,
                        "params": {k: v.detach().clone() for k, v in params.items()},
                        "optimizer": opt.state_dict(),
                        "batches": batches.state(),
                        "history": hist,
                        "train_time": train_time,
                        "skipped": skipped,
                        "streak": streak,
                    },
                )
                atomic_savez(out / "rl.npz", P=P, V=V, P0=P0, V0=V0)
                doc = {
                    "config": cfg.as_dict(),
                    "seed": cfg.seed,
                    "versions": versions(),
                    "finished": finished,
                    "final": final,
                    "history": cols,
                    "timings": {"data_time": data_time, "train_time": train_time},
                }
                atomic_write_json(out / "rl.json", doc)
            return RLResult(cfg, P, V, P0, V0, dict(final), cols, finished, train_time)

        end = cfg.steps if stop_at is None else min(cfg.steps, max(stop_at, step))
        t_seg = time.perf_counter()
        for _ in progress(range(step, end), total=end - step, desc=f"(P2) d={lay.d}"):
            if step % cfg.log_every == 0 and not (hist and hist[-1]["step"] == step):
                train_time += time.perf_counter() - t_seg
                hist.append(_metrics(cfg, step, params, batch, held, P0, V0, train_time, skipped))
                t_seg = time.perf_counter()
            for grp in opt.param_groups:
                grp["lr"] = lr_at(cfg, step)
            opt.zero_grad(set_to_none=True)
            P, V = full_params(params, lay)
            idx = batches.next()
            loss = rl_loss(cfg, batch if idx is None else batch.take(idx), P, V)
            if torch.isfinite(loss):
                loss.backward()
            if torch.isfinite(loss) and all(torch.isfinite(v.grad).all() for v in params.values()):
                opt.step()
                streak = 0
            else:  # a loop of the batch overflowed: no update this step (counted in the history)
                skipped, streak = skipped + 1, streak + 1
                if streak >= MAX_SKIPS:
                    raise TrainingDiverged(
                        f"train_rl: {streak} consecutive non-finite (P2) objectives at step {step}"
                    )
            step += 1
            if step % cfg.checkpoint_every == 0 and step < cfg.steps:
                train_time += time.perf_counter() - t_seg
                save(False)
                t_seg = time.perf_counter()
        train_time += time.perf_counter() - t_seg
        finished = step >= cfg.steps
        if finished and not (hist and hist[-1]["step"] == step):
            hist.append(_metrics(cfg, step, params, batch, held, P0, V0, train_time, skipped))
        return save(finished)
    finally:
        torch.set_num_threads(prev_threads)

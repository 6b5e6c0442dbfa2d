r"""Reinforcement pretraining (P2) of one LSA block, against teacher mimicking (P1).

(P2), smooth form: choose the full ``(P, V)`` (D x D, SARSA layout (H), ``D = 3d + 2``; or the
actor-critic layout (A1), ``D = 3d + 2 d_pi + 2``, with ``algo="actor_critic"``) to maximise

.. math:: R(\theta) = \frac1K \sum_{k=1}^K \frac{J_k(\pi_{w_T^{(k)}}) - J_k(\mathrm{uniform})}
          {J_k(\pi^*_k) - J_k(\mathrm{uniform})},

the mean normalised return (§0) of the softmax policy ``pi_w = softmax(Q_w / tau)`` after ``T``
updates ``w_{t+1} = TF_theta(H_t)`` of the expected-context loop
(:mod:`lsa_theory.experiments.expected_loop`), over ``K`` training MDPs of the [LL] family, each with fresh
features ``phi ~ U(-1, 1)`` (d = S A) and ``w_0 ~ U(-1, 1)^d``. No teacher enters: the objective
sees only returns. With an actor (``algo`` a registered closed-loop algorithm whose declaration
has one, e.g. ``"actor_critic"``: state-value critic ``d = S``, actor ``d_pi = S A``, (A1)-(A5))
the policy is the loop's own actor ``pi_{lambda_T}`` (temperature 1, ``tau`` unused), the loop
parameter is ``[w; lambda]`` from ``w_0 ~ U(-1, 1)^d``, ``lambda_0 = 0``, and the tables are the
declaration's (:func:`lsa_theory.experiments.expected_loop.draw_task`). ``horizon="mean"`` averages the
return over ``t = 1..T`` instead. The training
sample is frozen (an empirical objective, deterministic gradient); minibatches of MDPs are
optional.

Optimisation as in :mod:`lsa_theory.experiments.training`: Adam, learning rate ``lr`` decayed to
``lr_final`` (:func:`lsa_theory.experiments.training.lr_at`), initialisation
:func:`lsa_theory.experiments.training.
init_params` of the matching :class:`~lsa_theory.experiments.training.TrainConfig` (so the (P2) block and the
(P1) block of the comparison start from the same point), float64. Only the (L2) blocks ``P12,
P22, Vbar21, Vbar22`` enter the readout, so the others receive exactly zero gradient and never
move (reported as ``frozen_moved``).

The comparison (P3) that trains both blocks and scores them is :mod:`lsa_theory.experiments.pretrain_compare`.

Results (``out``): ``rl.json`` (config, seed, versions, history, final, timings) and ``rl.npz``
(``P``, ``V``, ``P0``, ``V0``), atomically at every checkpoint (``"finished": false``) and at the
end; ``rl_checkpoint.pt`` (params, optimizer, minibatch state, step, history). :func:`train_rl`
resumes from it; the resumed run equals the uninterrupted one bit for bit (same thread count).
The logged smooth objectives (``objective``, ``heldout_objective``) are means over ALL their MDPs, a
loop that overflowed scored 0 (:mod:`lsa_theory.experiments.stats`) and counted in ``*_nonfinite``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

import lsa_theory as lt
from lsa_theory import constructions
from lsa_theory.checks import check_int, check_real

from . import expected_loop as el
from .control_weights import ALGOS as _CLOSED_LOOP_ALGOS
from .io import atomic_savez, atomic_write_json, load_checkpoint, progress, to_jsonable, versions
from .stats import mean_sem
from .training import TrainConfig, frozen_blocks, full_params, init_params, lr_at
from .training.config import _seed
from .training.loop import _atomic_torch_save, _Batches, _numpy_pv

__all__ = [
    "TrainingDiverged",
    "PretrainConfig",
    "RLResult",
    "train_rl",
    "init_start",
    "training_batch",
    "heldout_batch",
    "rl_loss",
]

CHECKPOINT = "rl_checkpoint.pt"

#: The logged training objective is computed on the first this many training MDPs.
METRIC_MDPS = 512

#: :func:`train_rl` stops with RuntimeError after this many consecutive skipped steps.
MAX_SKIPS = 50


class TrainingDiverged(RuntimeError):
    """(P2) training stopped: :data:`MAX_SKIPS` consecutive steps whose objective or gradient was
    not finite (a training loop overflowed every time). A result of the run, not bad input: the
    command reports it in one line and exits 1; :func:`lsa_theory.experiments.pretrain_compare.pretrain_sweep`
    records it as a failed row."""


HORIZONS = ("final", "mean")

#: The algorithms (P2) runs on: every registered closed-loop declaration
#: (:class:`lsa_theory.constructions.ClosedLoopAlgorithm`; the CLI offers them as ``--algo``), the
#: deployment's :data:`lsa_theory.experiments.control.ALGOS`.
ALGOS = _CLOSED_LOOP_ALGOS

#: Defaults of the fields added with the actor-critic layout, for checkpoints written before them.
_LATER_FIELDS = {"algo": "sarsa", "beta": 0.1}
INITS = ("random", "constructed")


@dataclass(frozen=True)
class PretrainConfig:
    """One (P2)-vs-(P1) comparison. ``algo``: the registered closed-loop algorithm (:data:`ALGOS`;
    ``"sarsa"`` (S2)-(S6), ``"actor_critic"`` (A1)-(A5)) whose layout, teacher, construction and
    policies are used, all read off its declaration. Environment: S x A MDPs of the [LL] family
    (gamma 0.5), the declaration's default dims (SARSA d = S A; actor-critic d = S, d_pi = S A),
    context length ``n``; ``alpha`` (and ``beta`` with an actor), ``epsilon``: the teacher of
    (P1), the constructed block (S3)/(A3) and the sampled deployment (S6)/(A5) (``epsilon`` and
    ``tau`` unused with an actor, which acts with ``pi_lambda``). (P2): ``T`` expected-loop updates,
    softmax temperature ``tau``, ``horizon``, ``k`` training MDPs (``batch_mdps`` per step, ``None``
    all), Adam ``steps`` at ``lr`` -> ``lr_final`` (``schedule``, ``warmup``) from ``init``
    (:func:`init_start`). (P1): ``teacher_steps`` steps on ``min(k, teacher_k)`` MDPs x ``frames``
    teacher frames (:func:`lsa_theory.experiments.training.train`; the cap keeps its frames in memory).
    ``tau`` defaults to 0.3 at d = 36 and 0.1 in ``quick()`` at d = 4: about 0.05 sqrt(d), so that
    ``Q_{w_0} / tau`` (std ``sqrt(d) / 3 / tau``) has the same spread at both sizes. Comparison:
    ``heldout_k`` held-out MDPs with fresh features (seed ``seed``, scheme of
    :func:`lsa_theory.experiments.envs.heldout_rng`), sampled loops of ``eval_updates`` updates (default
    ``T``; the curves run to ``curve_updates``)."""

    S: int = 9
    A: int = 4
    n: int = 20
    gamma: float = 0.5
    alpha: float = 0.2
    epsilon: float = 0.1
    algo: str = "sarsa"
    beta: float = 0.1
    tau: float = 0.3
    T: int = 20
    horizon: str = "final"
    k: int = 16384
    batch_mdps: int | None = 256
    mode: str = "full"
    init: str = "random"
    steps: int = 1000
    lr: float = 3e-3
    lr_final: float = 1e-4
    schedule: str = "exp"
    warmup: int = 0
    adam_eps: float = 1e-12
    init_scale: float = 1e-2
    seed: int = 0
    log_every: int = 50
    checkpoint_every: int = 50
    frames: int = 10
    teacher_k: int = 1024
    teacher_steps: int = 3000
    teacher_batch: int | None = 1000
    teacher_lr: float = 1e-2
    teacher_lr_final: float = 1e-6
    heldout_k: int = 100
    eval_updates: int | None = None
    curve_updates: int = 100
    eval_every: int = 5

    def __post_init__(self) -> None:
        for name in ("S", "A", "n", "T", "k", "steps", "log_every", "checkpoint_every", "frames"):
            check_int(getattr(self, name), name)
        for name in ("teacher_k", "teacher_steps", "heldout_k", "curve_updates", "eval_every"):
            check_int(getattr(self, name), name)
        check_int(self.warmup, "warmup", minimum=0)
        if self.warmup > self.steps:  # the learning rate would never reach lr (issue 24, item 23)
            raise ValueError(f"warmup: must be <= steps = {self.steps}, got {self.warmup}")
        check_int(self.seed, "seed", minimum=0)
        if self.batch_mdps is not None:
            check_int(self.batch_mdps, "batch_mdps")
        if self.eval_updates is not None:
            check_int(self.eval_updates, "eval_updates")
        check_real(self.tau, "tau", low=0.0, low_open=True)
        for name in ("lr", "lr_final", "teacher_lr", "teacher_lr_final", "init_scale", "adam_eps"):
            check_real(getattr(self, name), name, low=0.0, low_open=True)
        el._algorithm(self.algo)  # ValueError naming ``algo`` unless a closed-loop declaration
        check_real(self.beta, "beta", low=0.0, low_open=True)
        if self.horizon not in HORIZONS:
            raise ValueError(f"horizon: expected one of {HORIZONS}, got {self.horizon!r}")
        if self.init not in INITS:
            raise ValueError(f"init: expected one of {INITS}, got {self.init!r}")
        if self.mode not in ("full", "effective"):
            raise ValueError(f"mode: expected 'full' or 'effective', got {self.mode!r}")
        if self.schedule not in ("constant", "exp", "cosine"):
            raise ValueError(f"schedule: expected 'constant', 'exp' or 'cosine', got {self.schedule!r}")
        self.teacher_config()  # validates the shared fields

    @property
    def alg(self) -> constructions.ClosedLoopAlgorithm:
        """The declaration of ``algo``."""
        return constructions.ALGORITHMS[self.algo]

    @property
    def dims(self):
        """The declaration's default ``(d, d_pi)`` at ``(S, A)``."""
        return self.alg.dims(self.S, self.A)

    @property
    def layout(self) -> lt.Layout:
        return self.dims.layout

    @property
    def hyper(self) -> dict:
        """The teacher's hyperparameters ``gamma``, ``alpha``, ``beta`` (``beta`` only with an actor)."""
        return {"gamma": self.gamma, "alpha": self.alpha, "beta": self.beta}

    @property
    def T_eval(self) -> int:
        return self.T if self.eval_updates is None else self.eval_updates

    def teacher_config(self) -> TrainConfig:
        """The (P1) run: :class:`~lsa_theory.experiments.training.TrainConfig` on ``k`` MDPs x ``frames``
        frames with this environment, float64; its ``init_params`` is also the (P2) start."""
        return TrainConfig(
            algorithm=self.algo,
            beta=self.beta,
            S=self.S,
            A=self.A,
            n=self.n,
            gamma=self.gamma,
            alpha=self.alpha,
            epsilon=self.epsilon,
            k=min(self.k, self.teacher_k),
            frames=self.frames,
            heldout_k=min(self.heldout_k, 50),
            mode=self.mode,
            lr=self.teacher_lr,
            lr_final=self.teacher_lr_final,
            steps=self.teacher_steps,
            batch_size=self.teacher_batch,
            init_scale=self.init_scale,
            dtype="float64",
            seed=self.seed,
            log_every=max(1, self.teacher_steps // 10),
            checkpoint_every=max(1, self.teacher_steps // 4),
        )

    def replace(self, **changes) -> PretrainConfig:
        return replace(self, **changes)

    def as_dict(self) -> dict:
        return to_jsonable(asdict(self))

    @classmethod
    def quick(cls) -> PretrainConfig:
        """S = A = 2 (d = 4, D = 14), tau = 0.1, T = 10, 1024 training MDPs in minibatches of 128,
        150 (P2) steps; (P1) on 256 MDPs x 10 frames, 1000 full-batch steps; 100 held-out MDPs,
        curves to 40 updates (the ``--quick`` run)."""
        return cls(
            S=2,
            A=2,
            tau=0.1,
            T=10,
            k=1024,
            batch_mdps=128,
            steps=150,
            lr=3e-2,
            lr_final=1e-3,
            log_every=25,
            checkpoint_every=50,
            teacher_k=256,
            teacher_steps=1000,
            teacher_batch=None,
            teacher_lr_final=1e-4,
            heldout_k=100,
            curve_updates=40,
        )


def _check_cfg(cfg) -> PretrainConfig:
    if not isinstance(cfg, PretrainConfig):
        raise ValueError(f"cfg: expected a PretrainConfig, got {type(cfg).__name__}")
    return cfg


def training_batch(cfg: PretrainConfig) -> tuple[el.MDPBatch, list[lt.TabularMDP]]:
    """The ``k`` (P2) training MDPs, features and starts: :func:`lsa_theory.experiments.expected_loop.
    draw_batch` of ``cfg.algo`` with ``default_rng([seed, 5])`` (a stream the (P1) data and
    held-out MDPs never use)."""
    _check_cfg(cfg)
    return el.draw_batch(cfg.k, cfg.S, cfg.A, cfg.gamma, np.random.default_rng([cfg.seed, 5]), algo=cfg.algo)


def heldout_batch(cfg: PretrainConfig) -> tuple[el.MDPBatch, list[lt.TabularMDP]]:
    """Held-out MDP ``i``: ``random_mdp(S, A, gamma, heldout_rng(seed, i))``, then its task draws
    (:func:`lsa_theory.experiments.expected_loop.draw_task`: critic table, ``w_0``, actor table) from
    ``heldout_rng(seed, i, 1)`` in the order :func:`lsa_theory.experiments.control.deploy` draws them, so the
    smooth and the sampled evaluations start from the same tables and parameters."""
    _check_cfg(cfg)
    from .envs import heldout_rng

    mdps, draws = [], []
    for i in range(cfg.heldout_k):
        mdps.append(lt.random_mdp(cfg.S, cfg.A, cfg.gamma, heldout_rng(cfg.seed, i)))
        draws.append(el.draw_task(cfg.algo, cfg.S, cfg.A, heldout_rng(cfg.seed, i, 1)))
    return el.batch_of(mdps, draws, cfg.algo), mdps


def init_start(cfg: PretrainConfig) -> dict[str, torch.Tensor]:
    """The (P2) start: :func:`lsa_theory.experiments.training.init_params` of ``cfg.teacher_config()``
    (``init="random"``: the (P1) block's start, entries ``init_scale * N(0, 1)``), plus the
    construction of the declaration ((S3), or (A3) with ``beta``) for ``init="constructed"`` (a
    warm start on the teacher's block: does return maximisation keep, rescale or leave its
    structure?)."""
    _check_cfg(cfg)
    params = init_params(cfg.teacher_config())
    if cfg.init == "constructed":
        P, V = (torch.as_tensor(M) for M in cfg.alg.construction_blocks(cfg.dims, cfg.hyper))
        if "P" in params:
            params = {"P": params["P"] + P, "V": params["V"] + V}
        else:
            b = cfg.layout.blocks(P, V)
            params = {"A": params["A"] + b["Vbar21"], "B": params["B"] + b["P12"]}
    return params


def rl_loss(cfg: PretrainConfig, batch: el.MDPBatch, P: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """``-R(theta)`` of the module docstring on ``batch`` (the quantity Adam minimises)."""
    return -el.rl_objective(batch, P, V, cfg.layout, n=cfg.n, T=cfg.T, tau=cfg.tau, horizon=cfg.horizon)


@dataclass
class RLResult:
    """Outcome of :func:`train_rl`: learned ``P``, ``V`` and the start ``P0``, ``V0`` (float64
    numpy, D x D), ``final`` metrics, ``history`` (name -> list over logged steps), ``finished``,
    ``train_time`` (seconds in optimizer steps over all sessions)."""

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
    from .pretrain_eval import s3_alignment

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
    row.update(s3_alignment(Pn, Vn, lay, algo=cfg.algo))
    fz, fz0 = frozen_blocks(Pn, Vn, lay), frozen_blocks(P0, V0, lay)
    row["frozen_moved"] = float(max(np.abs(fz[k] - fz0[k]).max() for k in fz))
    return row


def train_rl(
    cfg: PretrainConfig,
    out: str | Path | None = None,
    stop_at: int | None = None,
    num_threads: int | None = 1,
) -> RLResult:
    """(P2): maximise ``R(theta)`` (module docstring) with Adam from ``init_params`` of
    ``cfg.teacher_config()``; logs ``objective`` (on the first :data:`METRIC_MDPS` training MDPs),
    ``heldout_objective`` (the same on the held-out
    batch, :func:`heldout_batch`), the (S3) alignment of :func:`lsa_theory.experiments.pretrain_eval.
    s3_alignment` and ``frozen_moved`` every ``log_every`` steps. With ``out``: checkpoints every
    ``checkpoint_every`` steps, resumes from ``out/rl_checkpoint.pt`` (ValueError if it holds
    another configuration), writes ``rl.json`` and ``rl.npz``. ``stop_at``: stop after that many
    total steps (``finished=False``). RuntimeError when the objective stops being finite."""
    if not isinstance(cfg, PretrainConfig):
        raise ValueError(f"cfg: expected a PretrainConfig, got {type(cfg).__name__}")
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

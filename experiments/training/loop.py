"""Training one LSA block by teacher mimicking: Algorithm 1 of [LL] (S6) on the objective (M1).

The configuration is :mod:`lsa_theory.experiments.training.config`, the data (and its memory use)
:mod:`lsa_theory.experiments.training.data`, the model, loss and metrics
:mod:`lsa_theory.experiments.training.model`;
this module holds the training loop (the face of the experiment is :mod:`lsa_theory.experiments.training`).

Results (``out``): ``train.json`` (config, seed, versions, metric history, final metrics, run
times) and ``train.npz`` (learned ``P``, ``V``; ``P_star``, ``V_star`` = ``(c P*, V*/c)`` at the
fitted ``c``; the initialisation ``P0``, ``V0``), both rewritten atomically at every checkpoint
(``"finished": false``) and at the end; ``checkpoint.pt`` (params, optimizer state, step, batch
RNG state, history) every ``checkpoint_every`` steps. ``train(cfg, out)`` resumes from
``checkpoint.pt``; the resumed run is bit-for-bit the uninterrupted one (same thread count).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lsa_theory import dynamics as dy
from lsa_theory.checks import check_int

from ..io import atomic_savez, atomic_write, atomic_write_json, load_checkpoint, progress, versions
from .config import (
    TrainConfig,
    _seed,
)
from .data import (
    TrainData,
    heldout_data,
    make_data,
)
from .model import (
    _full_loss_chunked,
    construction_pv,
    frozen_blocks,
    full_params,
    heldout_error,
    init_params,
    structure_metrics,
    training_loss,
)

__all__ = ["TrainResult", "train", "lr_at", "CHECKPOINT"]

CHECKPOINT = "checkpoint.pt"


# ---------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------


def lr_at(cfg: TrainConfig, step: int) -> float:
    """Learning rate of step ``step`` (0-based): linear warm-up, then ``cfg.schedule`` from ``lr``
    to ``lr_final`` at the last step."""
    if cfg.warmup and step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    span = max(cfg.steps - 1 - cfg.warmup, 1)
    t = min(max(step - cfg.warmup, 0) / span, 1.0)
    if cfg.schedule == "constant":
        return cfg.lr
    if cfg.schedule == "exp":
        return cfg.lr * (cfg.lr_final / cfg.lr) ** t
    return cfg.lr_final + 0.5 * (cfg.lr - cfg.lr_final) * (1.0 + math.cos(math.pi * t))


def _make_optimizer(cfg: TrainConfig, leaves: list[torch.Tensor]) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(
            leaves, lr=cfg.lr, betas=tuple(cfg.adam_betas), eps=cfg.adam_eps, amsgrad=cfg.amsgrad
        )
    return torch.optim.SGD(leaves, lr=cfg.lr, momentum=cfg.momentum)


@dataclass
class TrainResult:
    """Outcome of :func:`train`: learned ``P``, ``V`` (float64 numpy), the construction at the
    fitted scale ``P_star``, ``V_star`` = ``(c P*, V*/c)``, ``final`` metrics, ``history``
    (metric name -> list over logged steps), ``finished`` (False after ``stop_at``), ``train_time``
    the seconds spent in optimizer steps over all sessions (metrics, data and I/O excluded)."""

    config: TrainConfig
    P: np.ndarray
    V: np.ndarray
    P_star: np.ndarray
    V_star: np.ndarray
    final: dict[str, float]
    history: dict[str, list]
    finished: bool
    train_time: float
    out: Path | None = field(default=None)


def _atomic_torch_save(path: Path, obj: Any) -> None:
    """``torch.save`` to ``path`` atomically and durably (:func:`lsa_theory.experiments.io.atomic_write`)."""
    atomic_write(path, lambda fh: torch.save(obj, fh))


class _Batches:
    """Minibatches as contiguous slices of the (once-shuffled, see :func:`_load_data`) frames: the
    ``ceil(F / batch)`` blocks are visited in a fresh random order every epoch (seeded generator,
    state checkpointed). Slices are views: no gather of ``Sigma`` per step."""

    def __init__(self, F: int, batch: int | None, seed: int):
        self.F, self.batch = F, (F if batch is None else min(batch, F))
        self.n_blocks = -(-F // self.batch)
        self.gen = torch.Generator().manual_seed(_seed(seed, 2))
        self.order: torch.Tensor | None = None
        self.pos = 0

    def next(self) -> slice | None:
        if self.n_blocks == 1:
            return None
        if self.order is None or self.pos == self.n_blocks:
            self.order = torch.randperm(self.n_blocks, generator=self.gen)
            self.pos = 0
        j = int(self.order[self.pos])
        self.pos += 1
        return slice(j * self.batch, min((j + 1) * self.batch, self.F))

    def state(self) -> dict:
        return {"gen": self.gen.get_state(), "order": self.order, "pos": self.pos}

    def load(self, st: dict) -> None:
        self.gen.set_state(st["gen"])
        self.order, self.pos = st["order"], st["pos"]


def _load_data(cfg: TrainConfig, dtype: str, device) -> TrainData:
    """Training frames of ``cfg`` in ``dtype``, shuffled once (seeded) so that contiguous
    minibatches mix MDPs."""
    data = make_data(cfg.spec(), [cfg.seed, 0], dtype, cfg.chunk_mdps, str(device), cfg.critic)
    perm = torch.randperm(data.n_frames, generator=torch.Generator().manual_seed(_seed(cfg.seed, 4)))
    perm = perm.to(data.Sigma.device)
    return replace(data, Sigma=data.Sigma[perm], wt=data.wt[perm], y=data.y[perm])


def _numpy_pv(params, layout) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        P, V = full_params(params, layout)
        return P.detach().cpu().double().numpy(), V.detach().cpu().double().numpy()


def _promote_state(state: dict) -> dict:
    """Optimizer state with its floating tensors (moments) in float64; the step counter unchanged."""
    for st in state["state"].values():
        for key, val in st.items():
            if torch.is_tensor(val) and val.is_floating_point() and key != "step":
                st[key] = val.double()
    return state


class _Run:
    """Mutable state of one training run: data, parameters, optimizer, batches, history."""

    def __init__(self, cfg: TrainConfig, out: Path | None, device) -> None:
        self.cfg, self.out, self.device, self.lay = cfg, out, device, cfg.layout
        self.t_start = t0 = time.perf_counter()
        self.data = _load_data(cfg, cfg.dtype, device)
        self.held = heldout_data(cfg)
        self.summary = self.data.summary()
        self.U = dy.invisible_directions(self.summary)
        self.data_time = time.perf_counter() - t0
        self.params = init_params(cfg, str(device))
        self.P0, self.V0 = _numpy_pv(self.params, self.lay)
        self.batches = _Batches(self.data.n_frames, cfg.batch_size, cfg.seed)
        self.polish_at = cfg.steps - cfg.polish_steps if cfg.polish_steps else None
        self.step, self.hist, self.train_time = 0, [], 0.0
        self._set_params(self.params)

    def _set_params(self, params: dict, opt_state: dict | None = None) -> None:
        self.params = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}
        self.opt = _make_optimizer(self.cfg, list(self.params.values()))
        if opt_state is not None:
            self.opt.load_state_dict(opt_state)

    def resume(self, ckpt: dict) -> None:
        self.step, self.hist, self.train_time = ckpt["step"], ckpt["history"], ckpt["train_time"]
        if self.polish_at is not None and self.step > self.polish_at:
            self.data = _load_data(self.cfg, "float64", self.device)
        self._set_params({k: v.to(self.device) for k, v in ckpt["params"].items()}, ckpt["optimizer"])
        self.batches.load(ckpt["batches"])

    def promote(self) -> None:
        """Start of the float64 polish: parameters, Adam moments and data in float64."""
        state = _promote_state(self.opt.state_dict())
        self.data = _load_data(self.cfg, "float64", self.device)
        self._set_params({k: v.double() for k, v in self.params.items()}, state)

    def sgd_step(self) -> None:
        if (
            self.polish_at is not None
            and self.step == self.polish_at
            and self.data.Sigma.dtype != torch.float64
        ):
            self.promote()
        for grp in self.opt.param_groups:
            grp["lr"] = lr_at(self.cfg, self.step)
        self.opt.zero_grad(set_to_none=True)
        P, V = full_params(self.params, self.lay)
        training_loss(self.data, P, V, self.batches.next()).backward()
        self.opt.step()
        self.step += 1

    def metrics(self) -> dict:
        """The logged metrics at the current parameters (module docstring)."""
        P, V = _numpy_pv(self.params, self.lay)
        row = {"step": self.step, "lr": lr_at(self.cfg, max(self.step - 1, 0)), "train_time": self.train_time}
        with torch.no_grad():
            row["loss"] = _full_loss_chunked(self.data, *full_params(self.params, self.lay))
        row.update(structure_metrics(P, V, self.summary, self.U))
        row["heldout_err"], row["heldout_loss"] = heldout_error(P, V, self.held)
        fz, fz0 = frozen_blocks(P, V, self.lay), frozen_blocks(self.P0, self.V0, self.lay)
        row["frozen_norm"] = float(np.sqrt(sum(np.sum(b**2) for b in fz.values())))
        row["frozen_moved"] = float(max(np.abs(fz[k] - fz0[k]).max() for k in fz))
        return row

    def log(self) -> None:
        if not self.hist or self.hist[-1]["step"] != self.step:
            self.hist.append(self.metrics())

    def save(self, finished: bool) -> TrainResult:
        """Checkpoint (with ``out``), then the result (and ``train.json``/``train.npz``)."""
        cfg, lay = self.cfg, self.lay
        if self.out is not None:
            _atomic_torch_save(
                self.out / CHECKPOINT,
                {
                    "config": cfg.as_dict(),
                    "step": self.step,
                    "params": {k: v.detach().cpu() for k, v in self.params.items()},
                    "optimizer": self.opt.state_dict(),
                    "batches": self.batches.state(),
                    "history": self.hist,
                    "train_time": self.train_time,
                },
            )
        P, V = _numpy_pv(self.params, lay)
        final = self.hist[-1] if self.hist and self.hist[-1]["step"] == self.step else self.metrics()
        Ps, Vs = construction_pv(cfg.spec(), final["c"])
        res = TrainResult(
            cfg, P, V, Ps, Vs, dict(final), _columns(self.hist), finished, self.train_time, self.out
        )
        if self.out is not None:
            arrays = {"P": P, "V": V, "P_star": Ps, "V_star": Vs, "P0": self.P0, "V0": self.V0}
            atomic_savez(self.out / "train.npz", **arrays, c=np.array(final["c"]))
            doc = {
                "config": cfg.as_dict(),
                "seed": cfg.seed,
                "device": str(self.device),
                "versions": versions(),
                "finished": finished,
                "final": final,
                "history": res.history,
                "timings": {
                    "data_time": self.data_time,
                    "train_time": self.train_time,
                    "session_wall_time": time.perf_counter() - self.t_start,
                },
            }
            atomic_write_json(self.out / "train.json", doc)
        return res


def train(
    cfg: TrainConfig,
    out: str | Path | None = None,
    device: str = "cpu",
    stop_at: int | None = None,
    num_threads: int | None = 1,
) -> TrainResult:
    """Algorithm 1 of [LL] (S6) with the objective (M1): train one LSA block on teacher frames.

    Trains full ``P, V`` (D, D) (or ``(Vbar21, P12)`` in mode ``"effective"``) from a small random
    initialisation; logs the metrics of the module docstring every ``cfg.log_every`` steps and at
    the end. With ``out``: checkpoints every ``cfg.checkpoint_every`` steps, resumes from
    ``out/checkpoint.pt`` (ValueError if it belongs to another configuration), and saves
    ``train.json`` and ``train.npz`` (keys ``P``, ``V``, ``P_star``, ``V_star``, ``P0``, ``V0``,
    ``c``). ``stop_at``: stop after that many total steps, checkpoint and return
    ``finished=False`` (a time-boxed run). ``num_threads``: torch threads inside the loop
    (restored afterwards; 1 is fastest at these sizes and keeps runs bit-reproducible).
    """
    if not isinstance(cfg, TrainConfig):
        raise ValueError(f"cfg: expected a TrainConfig, got {type(cfg).__name__}")
    if stop_at is not None:
        stop_at = check_int(stop_at, "stop_at", minimum=0)
    if num_threads is not None:
        num_threads = check_int(num_threads, "num_threads")
    out = Path(out) if out is not None else None
    ckpt = None
    if out is not None and (out / CHECKPOINT).exists():
        ckpt = load_checkpoint(out / CHECKPOINT, map_location=device)  # weights only
        if ckpt["config"] != cfg.as_dict():
            raise ValueError(f"out: {out / CHECKPOINT} holds another configuration; use a fresh directory")
    prev_threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        run = _Run(cfg, out, torch.device(device))
        if ckpt is not None:
            run.resume(ckpt)
        end = cfg.steps if stop_at is None else min(cfg.steps, max(stop_at, run.step))
        t_seg = time.perf_counter()
        for _ in progress(
            range(run.step, end), total=end - run.step, desc=f"train {cfg.mode} d={cfg.layout.d}"
        ):
            if run.step % cfg.log_every == 0:
                run.train_time += time.perf_counter() - t_seg
                run.log()
                t_seg = time.perf_counter()
            run.sgd_step()
            if run.step % cfg.checkpoint_every == 0 and run.step < cfg.steps:
                run.train_time += time.perf_counter() - t_seg
                run.save(False)
                t_seg = time.perf_counter()
        run.train_time += time.perf_counter() - t_seg
        finished = run.step >= cfg.steps
        if finished:
            run.log()
        return run.save(finished)
    finally:
        torch.set_num_threads(prev_threads)


def _columns(hist: list[dict]) -> dict[str, list]:
    keys = list(hist[0]) if hist else []
    return {k: [row.get(k) for row in hist] for k in keys}

r"""The depth experiment (issue 23, item 4): error against the number of layers L and the context
length, for trained stacks against tuned baselines, with every seed, and out-of-distribution tests.

- **Regression** (THEORY §7, (R1)-(R4); x ~ N(0, Lambda), w ~ N(0, I_d)). Trained stacks of
  :func:`lsa_theory.experiments.regression.stack.train_stack` (``sparse`` = [Ahn]'s (R3) form, ``full``
  = every entry) for L in ``reg_layers`` at ``N = reg_N``, and the sparse stack at ``L = reg_N_layers``
  for every N in ``reg_Ns`` (trained at that N), each seed of ``seeds``; against the (R3) stacks
  ``A_l = eta I`` (``gd``: one tuned step), ``A_l = eta_l I`` (``gd_layers``: a tuned step per
  layer) and ``A_l = eta_l Lambda^{-1}`` (``pgd``), tuned on ``reg_tune_prompts`` training prompts
  (:func:`lsa_theory.experiments.depth.baselines.tune_regression`), and, for L = 1, the one-layer
  optimum ``Gamma^{-1}`` of (R4) (population loss exact). Held-out loss ``(1/2) mean (yhat - y_q)^2``
  on ``reg_test_prompts`` fresh independent prompts with its standard error.
- **TD** (THEORY §5, (W1)-(W3), [W]'s (WP1) pretraining). Masked stacks trained by semi-gradient TD
  with Adam (``td_tasks`` fresh tasks per step, ``td_windows`` windows of one trajectory each) for L
  in ``td_layers``, weights ``shared`` ([W]'s 'auto') or ``per-layer`` ('sequential'), on the task
  laws ``td_kinds`` (representable values, or [W]'s Boyan default); against batch TD(0) = L layers of
  (W3) with ``alpha`` tuned per (L, n) on ``td_tune_tasks`` tasks, and the exact batch-TD fixed point
  (LSTD) of each context. Held-out (WP5) ``rel_msve`` on ``td_heldout`` tasks (context: the first n
  transitions of a fresh trajectory from mu; every state a query), mean and standard error over tasks;
  trained at ``n = td_n``, evaluated at every n of ``td_ns``.
- **Out of distribution**: regression prompts with ``x -> s x`` (input scale) or ``w -> s w``
  (weight scale), the normalised error ``mean (yhat - y_q)^2 / mean y_q^2``, trained stacks against
  the (R3) baselines at their tuned steps; TD prompts with ``phi -> s phi`` (feature scale) or
  ``r -> s r`` (reward scale), ``rel_msve``, trained against (W3) at its tuned step; and the
  population loss (R4) along the segment from the trained L = 1 effective matrix to ``Gamma^{-1}``.

Results: ``depth.json`` / ``depth.npz`` in ``--out`` (:func:`run_depth`; resumable by unit through
:class:`lsa_theory.experiments.store.UnitStore`), ``depth.png`` (:func:`plot_depth`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from lsa_theory import td_pretrain as tp
from lsa_theory.checks import check_gamma, check_int, check_real
from lsa_theory.constructions.algorithms import regression as reg
from lsa_theory.dynamics import regression as rg
from lsa_theory.dynamics import td_pretrain as dt

from ..io import atomic_savez, atomic_write_json, provenance, to_jsonable, versions
from ..regression.stack import PARAMETERISATIONS, layers_of, stack_diverged, stack_predict, train_stack
from ..store import UnitStore
from . import baselines as bl

__all__ = [
    "DepthConfig",
    "UNITS_FILE",
    "REG_METHODS",
    "TD_MODES",
    "TD_DIVERGED",
    "units",
    "run_unit",
    "run_depth",
    "train_td_stack",
]

#: The tuned (R3) baselines: name -> (preconditioner family, one step per layer).
REG_METHODS = {"gd": ("I", False), "gd_layers": ("I", True), "pgd": ("Lambda_inv", True)}
#: Weight sharing of the trained TD stacks ([W]'s 'auto' and 'sequential' modes).
TD_MODES = ("shared", "per-layer")
#: A trained TD stack counts as diverged when its held-out rel_msve exceeds this (1000 times the zero
#: predictor's 1) or is not finite; between 1 and this it is listed as ``worse_than_zero``.
TD_DIVERGED = 1e3
#: Where :func:`run_depth` keeps its finished units while it runs (removed once the results are written).
UNITS_FILE = ".depth-units.json"


def _ints(values, name: str, minimum: int = 1) -> tuple:
    if not isinstance(values, tuple | list) or not values:
        raise ValueError(f"{name}: expected a non-empty tuple of integers, got {values!r}")
    out = tuple(check_int(v, name, minimum) for v in values)
    if len(set(out)) != len(out):
        raise ValueError(f"{name}: repeated values in {out}")
    return out


def _names(values, name: str, allowed: tuple) -> tuple:
    if not isinstance(values, tuple | list) or not values or any(v not in allowed for v in values):
        raise ValueError(f"{name}: expected a non-empty tuple of {allowed}, got {values!r}")
    return tuple(values)


@dataclass(frozen=True)
class DepthConfig:
    """Sizes and budgets (module docstring); ``quick()`` is ``--quick``, ``full()`` the default.

    Regression: ``reg_d``, ``reg_kappa`` (condition number of Lambda), ``reg_N``, ``reg_layers``,
    ``reg_params``, ``reg_Ns``, ``reg_N_layers`` (L of the context-length study), Adam
    ``reg_steps``/``reg_batch``/``reg_lr`` (:func:`train_stack`'s schedule), ``reg_tune_prompts``,
    ``reg_test_prompts``. TD: ``td_d``, ``td_s``, ``td_gamma``, ``td_n`` (training context),
    ``td_layers``, ``td_ns`` (evaluation contexts), ``td_modes``, ``td_kinds``, Adam ``td_steps``
    (``td_tasks`` tasks of ``td_windows`` windows per step, ``td_lr``, ``td_gain`` of the
    ``xavier_normal_`` start), ``td_tune_tasks``, ``td_heldout``. OOD: ``ood_scales``,
    ``ood_reg_layers``, ``ood_td_layers``, ``interp_ts`` (segment parameter t, t = 0 trained,
    t = 1 ``Gamma^{-1}``). ``seeds`` (training seeds), ``seed`` (the data: Lambda, tuning and
    held-out samples)."""

    seeds: tuple = (0, 1, 2)
    reg_d: int = 4
    reg_kappa: float = 10.0
    reg_N: int = 20
    reg_layers: tuple = (1, 2, 3, 4, 6, 8)
    reg_params: tuple = ("sparse", "full")
    reg_Ns: tuple = (5, 10, 20, 40, 80)
    reg_N_layers: int = 2
    reg_steps: int = 1500
    reg_batch: int = 256
    reg_lr: float = 1e-2
    reg_tune_prompts: int = 8192
    reg_test_prompts: int = 20000
    td_d: int = 3
    td_s: int = 10
    td_gamma: float = 0.9
    td_n: int = 20
    td_layers: tuple = (1, 2, 4, 8)
    td_ns: tuple = (5, 10, 20, 40)
    td_modes: tuple = TD_MODES
    td_kinds: tuple = bl.TD_KINDS
    td_steps: int = 2000
    td_tasks: int = 8
    td_windows: int = 16
    td_lr: float = 3e-3
    td_gain: float = 0.1
    td_tune_tasks: int = 200
    td_heldout: int = 400
    ood_scales: tuple = (0.25, 0.5, 1.0, 2.0, 4.0)
    ood_reg_layers: tuple = (1, 4)
    ood_td_layers: tuple = (2,)
    interp_ts: tuple = tuple(np.round(np.linspace(-0.5, 1.5, 21), 10).tolist())
    seed: int = 0

    def __post_init__(self) -> None:
        """Every field checked; ValueError naming the field."""
        _ints(self.seeds, "seeds", 0)
        for name in ("reg_d", "reg_N", "reg_N_layers", "reg_steps", "td_d", "td_n", "td_steps", "td_tasks"):
            check_int(getattr(self, name), name)
        check_int(self.td_s, "td_s", minimum=3)
        check_int(self.td_windows, "td_windows")
        for name in ("reg_batch", "reg_tune_prompts", "reg_test_prompts", "td_tune_tasks", "td_heldout"):
            check_int(getattr(self, name), name, minimum=2)
        if self.reg_batch % 2:
            raise ValueError(f"reg_batch: must be even (antithetic batches), got {self.reg_batch}")
        check_real(self.reg_kappa, "reg_kappa", low=1.0)
        for name in ("reg_lr", "td_lr", "td_gain"):
            check_real(getattr(self, name), name, low=0.0, low_open=True)
        check_gamma(self.td_gamma)
        layers = _ints(self.reg_layers, "reg_layers")
        _ints(self.reg_Ns, "reg_Ns")
        _names(self.reg_params, "reg_params", PARAMETERISATIONS)
        if "sparse" not in self.reg_params:
            raise ValueError(
                f"reg_params: must include 'sparse' (the context-length study), got {self.reg_params}"
            )
        if self.reg_N_layers not in layers:
            raise ValueError(f"reg_N_layers: must be one of reg_layers {layers}, got {self.reg_N_layers}")
        if self.reg_N not in self.reg_Ns:
            raise ValueError(f"reg_Ns: must include reg_N = {self.reg_N}, got {self.reg_Ns}")
        tdl = _ints(self.td_layers, "td_layers")
        ns = _ints(self.td_ns, "td_ns")
        if self.td_n not in ns:
            raise ValueError(f"td_ns: must include td_n = {self.td_n}, got {ns}")
        _names(self.td_modes, "td_modes", TD_MODES)
        _names(self.td_kinds, "td_kinds", bl.TD_KINDS)
        if not isinstance(self.ood_scales, tuple | list) or not self.ood_scales:
            raise ValueError(f"ood_scales: expected a non-empty tuple, got {self.ood_scales!r}")
        for s in self.ood_scales:
            check_real(s, "ood_scales", low=0.0, low_open=True)
        if not set(_ints(self.ood_reg_layers, "ood_reg_layers")) <= set(layers):
            raise ValueError(f"ood_reg_layers: must be among reg_layers {layers}, got {self.ood_reg_layers}")
        if not set(_ints(self.ood_td_layers, "ood_td_layers")) <= set(tdl):
            raise ValueError(f"ood_td_layers: must be among td_layers {tdl}, got {self.ood_td_layers}")
        if not isinstance(self.interp_ts, tuple | list) or len(self.interp_ts) < 2:
            raise ValueError(f"interp_ts: expected at least two values, got {self.interp_ts!r}")
        for t in self.interp_ts:
            check_real(t, "interp_ts")
        check_int(self.seed, "seed", minimum=0)

    @classmethod
    def full(cls) -> DepthConfig:
        """The default configuration (module docstring)."""
        return cls()

    @classmethod
    def quick(cls) -> DepthConfig:
        """``--quick``: regression L in {1, 2, 4} (sparse only, 400 Adam steps), N in {5, 20, 80};
        TD L in {1, 2, 4} (shared weights, 400 Adam steps of 4 tasks), n in {5, 10, 20, 40};
        smaller samples."""
        return cls(
            reg_layers=(1, 2, 4),
            reg_params=("sparse",),
            reg_Ns=(5, 20, 80),
            reg_steps=400,
            reg_batch=128,
            reg_lr=2e-2,
            reg_tune_prompts=4096,
            reg_test_prompts=10000,
            td_layers=(1, 2, 4),
            td_modes=("shared",),
            td_steps=400,
            td_tasks=4,
            td_lr=1e-2,
            td_tune_tasks=100,
            td_heldout=200,
            ood_reg_layers=(1, 2),
        )


# --------------------------------------------------------------------------------------- regression


def _lambda(cfg: DepthConfig) -> np.ndarray:
    return rg.random_covariance(cfg.reg_d, cfg.reg_kappa, np.random.default_rng([cfg.seed, 10]))


def _reg_sample(cfg: DepthConfig, N: int, F: int, key: int) -> rg.RegressionSample:
    """Independent (non-antithetic) prompts: ``key`` 11 held-out, 12 tuning (never the training
    batches, which :func:`train_stack` draws from the training seed)."""
    return rg.sample_prompts(F, N, _lambda(cfg), np.random.default_rng([cfg.seed, key, N]), antithetic=False)


def _test_sample(cfg: DepthConfig, N: int) -> rg.RegressionSample:
    return _reg_sample(cfg, N, cfg.reg_test_prompts, 11)


def _tune_sample(cfg: DepthConfig, N: int) -> rg.RegressionSample:
    return _reg_sample(cfg, N, cfg.reg_tune_prompts, 12)


def _scaled(sample: rg.RegressionSample, input_scale: float = 1.0, weight_scale: float = 1.0):
    """``(X, y, x_q, y_q)`` with ``x -> input_scale x`` (so y scales too) and ``w -> weight_scale w``."""
    c = input_scale * weight_scale
    return sample.X * input_scale, sample.y * c, sample.x_query * input_scale, sample.y_query * c


def _stack_predict(layers, X, y, xq) -> np.ndarray:
    """:func:`lsa_theory.experiments.regression.stack.stack_predict` (``-E_L[-1, -1]``) of the (W2)
    stack ``layers`` [(P, Q)], one head per layer, on the (R1) prompts of ``X, y, xq``; shape (F,).
    A stack whose training left a non-finite weight (Adam diverged) has no prediction: all NaN, so
    that :func:`_loss_se` gives an infinite loss and the run is listed as diverged."""
    if not all(np.isfinite(P).all() and np.isfinite(Q).all() for P, Q in layers):
        return np.full(np.shape(y)[0], np.nan)
    E = torch.as_tensor(reg.regression_prompt(X, y, xq))
    with torch.no_grad():
        return stack_predict([[(torch.as_tensor(P), torch.as_tensor(Q))] for P, Q in layers], E).numpy()


def _loss_se(pred: np.ndarray, y_query: np.ndarray) -> tuple[float, float]:
    """``(1/2) mean e^2`` and its standard error over independent prompts (``e = pred - y_q``)."""
    with np.errstate(all="ignore"):
        e2 = 0.5 * (pred - y_query) ** 2
    if not np.isfinite(e2).all():
        return float("inf"), float("inf")
    return float(e2.mean()), float(e2.std(ddof=1) / np.sqrt(e2.size))


def reg_trained_unit(cfg: DepthConfig, L: int, N: int, param: str, seed: int, study: str):
    """One trained stack (:func:`train_stack`): its record (held-out loss and s.e., final training
    loss = mean of the last 10 % of the curve, ``diverged`` by :func:`stack_diverged`; for L = 1
    the effective ``A = -P[d, d] Q[:d, :d]`` against ``Gamma^{-1}``) and arrays (curve, P, Q)."""
    Lambda = _lambda(cfg)
    t0 = time.perf_counter()
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        params, curve = train_stack(L, param, Lambda, N, cfg.reg_steps, cfg.reg_batch, cfg.reg_lr, seed)
    finally:
        torch.set_num_threads(prev)
    with torch.no_grad():
        layers = [
            (P.detach().numpy().copy(), Q.detach().numpy().copy()) for [(P, Q)] in layers_of(params, param)
        ]
    test = _test_sample(cfg, N)
    loss, se = _loss_se(_stack_predict(layers, test.X, test.y, test.x_query), test.y_query)
    loss_zero = 0.5 * float(np.trace(Lambda))
    tail = max(1, len(curve) // 10)
    rec = {
        "study": study,
        "L": L,
        "N": N,
        "param": param,
        "seed": seed,
        "steps": cfg.reg_steps,
        "train_loss_final": float(np.mean(curve[-tail:])),
        "heldout_loss": loss,
        "heldout_se": se,
        "loss_zero": loss_zero,
        "diverged": stack_diverged(curve, loss, loss_zero),
        "wall_time": time.perf_counter() - t0,
    }
    if L == 1:
        d = cfg.reg_d
        P, Q = layers[0]
        A = -P[d, d] * Q[:d, :d]
        G_inv = np.linalg.inv(rg.gamma_matrix(Lambda, N))
        loss_star = rg.population_loss(G_inv, Lambda, N)
        rec["A_rel_err_gamma_inv"] = float(np.linalg.norm(A - G_inv) / np.linalg.norm(G_inv))
        rec["population_excess"] = float(rg.population_loss(A.T, Lambda, N) - loss_star)
    arrays = {"curve": curve, "P": np.stack([P for P, _ in layers]), "Q": np.stack([Q for _, Q in layers])}
    return rec, arrays


def reg_baselines_unit(cfg: DepthConfig) -> list[dict]:
    """Rows ``{study, L, N, method, steps, train_loss, heldout_loss, heldout_se, diverged}`` of the
    tuned (R3) baselines (:data:`REG_METHODS`) for every L at ``reg_N`` (study ``"L"``) and every N
    at ``reg_N_layers`` (study ``"N"``), and the (R4) optimum ``gamma_inv`` (L = 1, every N, with
    its exact population loss ``population_loss``)."""
    Lambda = _lambda(cfg)
    Linv = np.linalg.inv(Lambda)
    fams = {"I": np.eye(cfg.reg_d), "Lambda_inv": Linv}
    loss_zero = 0.5 * float(np.trace(Lambda))
    jobs = [("L", L, cfg.reg_N) for L in cfg.reg_layers] + [("N", cfg.reg_N_layers, N) for N in cfg.reg_Ns]
    rows = []
    for N in sorted({N for _, _, N in jobs}):
        tune, test = _tune_sample(cfg, N), _test_sample(cfg, N)
        S, h = bl.context_statistics(tune.X, tune.y)
        St, ht = bl.context_statistics(test.X, test.y)
        for study, L, N2 in jobs:
            if N2 != N:
                continue
            for method, (fam, per_layer) in REG_METHODS.items():
                if method == "gd_layers" and L == 1:
                    continue  # the same family as gd
                t = bl.tune_regression(S, h, tune.x_query, tune.y_query, L, fams[fam], per_layer)
                As = [e * fams[fam] for e in t["steps"]]
                loss, se = _loss_se(bl.pgd_predict(St, ht, test.x_query, As), test.y_query)
                rows.append(
                    {
                        "study": study,
                        "L": L,
                        "N": N,
                        "method": method,
                        "steps": t["steps"],
                        "lbfgs_iterations": t["iterations"],
                        "train_loss": t["train_loss"],
                        "heldout_loss": loss,
                        "heldout_se": se,
                        "diverged": bool(not np.isfinite(loss) or loss > loss_zero),
                    }
                )
        G_inv = np.linalg.inv(rg.gamma_matrix(Lambda, N))
        loss, se = _loss_se(bl.pgd_predict(St, ht, test.x_query, [G_inv.T]), test.y_query)
        rows.append(
            {
                "study": "N" if N != cfg.reg_N else "L",
                "L": 1,
                "N": N,
                "method": "gamma_inv",
                "steps": None,
                "lbfgs_iterations": 0,
                "train_loss": None,
                "heldout_loss": loss,
                "heldout_se": se,
                "population_loss": rg.population_loss(G_inv, Lambda, N),
                "diverged": False,
            }
        )
    return rows


# --------------------------------------------------------------------------------------------- TD


def _td_rng(cfg: DepthConfig, *key: int) -> np.random.Generator:
    return np.random.default_rng([cfg.seed, *key])


def train_td_stack(cfg: DepthConfig, L: int, mode: str, kind: str, seed: int):
    """[W]'s (WP1) pretraining, with ``cfg.td_tasks`` fresh tasks of ``kind`` per Adam step (one
    trajectory from mu each, ``cfg.td_windows`` windows of context ``cfg.td_n``), semi-gradient TD
    (:func:`lsa_theory.td_pretrain.value_and_td_direction`, the next value detached), Adam
    (:func:`lsa_theory.td_pretrain.adam_step`, lr ``cfg.td_lr``, no weight decay) from
    ``xavier_normal_(cfg.td_gain)``; ``shared`` weights or ``per-layer``. Returns ``(Ps, Qs, curve,
    diverged)``: the (L, D, D) weights, the mean squared TD error per step, and whether a
    non-finite loss or parameter stopped the run (the curve is then NaN from there)."""
    if mode not in TD_MODES:
        raise ValueError(f"mode: expected one of {TD_MODES}, got {mode!r}")
    shared = mode == "shared"
    d, n, K = cfg.td_d, cfg.td_n, cfg.td_windows
    rng = _td_rng(cfg, 30, L, TD_MODES.index(mode), bl.TD_KINDS.index(kind), seed)
    Ps, Qs = tp.xavier_start(L, 2 * d + 1, rng, cfg.td_gain, shared)
    params = (Ps[:1], Qs[:1]) if shared else (Ps, Qs)
    adam = tp.adam_init(params, cfg.td_lr, 0.0)
    curve = np.full(cfg.td_steps, np.nan)
    diverged = False
    for i in range(cfg.td_steps):
        tasks = bl.sample_td_tasks(cfg.td_tasks, cfg.td_s, d, cfg.td_gamma, kind, rng)
        x = tp.sample_trajectories(tasks, K + n + 2, rng)
        Z, rq = tp.prompts(tasks, x, cfg.td_gamma, n, K)
        with np.errstate(all="ignore"):
            _, delta, dP, dQ = tp.value_and_td_direction(Z, rq, Ps, Qs, cfg.td_gamma)
        if not (np.isfinite(delta).all() and np.isfinite(dP).all() and np.isfinite(dQ).all()):
            diverged = True
            break
        curve[i] = float(np.mean(delta**2))
        grads = (
            (-2 * dP.sum(0, keepdims=True), -2 * dQ.sum(0, keepdims=True)) if shared else (-2 * dP, -2 * dQ)
        )
        params, adam = tp.adam_step(params, grads, adam)
        Ps, Qs = (np.repeat(params[0], L, 0), np.repeat(params[1], L, 0)) if shared else params
    return Ps, Qs, curve, diverged


def _td_eval_set(cfg: DepthConfig, kind: str, key: int, T: int):
    """``(tasks, states)``: T tasks of ``kind`` and one trajectory of ``max(td_ns) + 1`` states from
    mu each; ``key`` 21 held-out, 23 tuning (training draws from the training seeds' generators)."""
    rng = _td_rng(cfg, key, bl.TD_KINDS.index(kind))
    tasks = bl.sample_td_tasks(T, cfg.td_s, cfg.td_d, cfg.td_gamma, kind, rng)
    return tasks, tp.sample_trajectories(tasks, max(cfg.td_ns) + 1, rng)


def _transform(tasks: tp.Tasks, feature_scale: float = 1.0, reward_scale: float = 1.0) -> tp.Tasks:
    return tp.Tasks(tasks.P, tasks.mu, tasks.r * reward_scale, tasks.phi * feature_scale)


def _stack_values(tasks: tp.Tasks, states, gamma: float, n: int, Ps, Qs) -> np.ndarray:
    ctx = bl.td_contexts(tasks, states, gamma, n)
    Z = bl.query_prompts(*ctx, tasks.phi)
    with np.errstate(all="ignore"):
        return tp.values(Z, Ps, Qs)


def _err_se(errs: np.ndarray) -> tuple[float, float]:
    if not np.isfinite(errs).all():
        return float("inf"), float("inf")
    return float(errs.mean()), float(errs.std(ddof=1) / np.sqrt(errs.size))


def td_trained_unit(cfg: DepthConfig, L: int, mode: str, kind: str, seed: int):
    """One trained TD stack (:func:`train_td_stack`): record with the held-out ``rel_msve`` (mean,
    s.e. over tasks) at ``td_n`` and at every n of ``td_ns`` (``heldout_by_n``), the final training
    loss (mean squared TD error over the last 10 % of steps), ``diverged`` (a non-finite loss,
    parameter or held-out error) and ``worse_than_zero`` (held-out error above the zero
    predictor's 1); arrays ``Ps``, ``Qs``, ``curve``."""
    t0 = time.perf_counter()
    Ps, Qs, curve, diverged = train_td_stack(cfg, L, mode, kind, seed)
    tasks, states = _td_eval_set(cfg, kind, 21, cfg.td_heldout)
    by_n = {}
    for n in cfg.td_ns:
        v = _stack_values(tasks, states, cfg.td_gamma, n, Ps, Qs)
        by_n[str(n)] = _err_se(bl.rel_msve(v, tasks, cfg.td_gamma))
    err, se = by_n[str(cfg.td_n)]
    tail = curve[-max(1, cfg.td_steps // 10) :]
    rec = {
        "L": L,
        "mode": mode,
        "kind": kind,
        "seed": seed,
        "steps": cfg.td_steps,
        "n_train": cfg.td_n,
        "train_loss_final": float(np.mean(tail)) if np.isfinite(tail).all() else None,
        "heldout_err": err,
        "heldout_se": se,
        "heldout_by_n": by_n,
        "diverged": bool(diverged or not np.isfinite(err) or err > TD_DIVERGED),
        "worse_than_zero": bool(not np.isfinite(err) or err > 1.0),
        "wall_time": time.perf_counter() - t0,
    }
    return rec, {"Ps": Ps, "Qs": Qs, "curve": curve}


def td_baselines_unit(cfg: DepthConfig) -> list[dict]:
    """Rows of batch TD(0) (= L layers of (W3)) with ``alpha`` tuned per (kind, L, n) on the tuning
    tasks (:func:`lsa_theory.experiments.depth.baselines.tune_td_step`), held-out ``rel_msve`` and
    s.e.; and of the exact fixed point ``lstd`` per (kind, n), over the held-out tasks where it exists
    (``exists`` = their number; also the median, since a nearly singular context inflates the mean)."""
    rows = []
    for kind in cfg.td_kinds:
        tune_t, tune_x = _td_eval_set(cfg, kind, 23, cfg.td_tune_tasks)
        held_t, held_x = _td_eval_set(cfg, kind, 21, cfg.td_heldout)
        for n in cfg.td_ns:
            tctx = bl.td_contexts(tune_t, tune_x, cfg.td_gamma, n)
            hctx = bl.td_contexts(held_t, held_x, cfg.td_gamma, n)
            for L in cfg.td_layers:
                t = bl.tune_td_step(*tctx, tune_t, cfg.td_gamma, L)
                w = bl.batch_td(*hctx, t["alpha"], L)
                errs = bl.rel_msve((held_t.phi @ w[..., None])[..., 0], held_t, cfg.td_gamma)
                err, se = _err_se(errs)
                rows.append(
                    {"kind": kind, "L": L, "n": n, "method": "batch_td", "alpha": t["alpha"],
                     "tune_err": t["tune_err"], "heldout_err": err, "heldout_se": se,
                     "diverged": bool(not np.isfinite(err))}
                )  # fmt: skip
            w, ok = bl.lstd(*hctx)
            errs = bl.rel_msve((held_t.phi @ np.nan_to_num(w)[..., None])[..., 0], held_t, cfg.td_gamma)[ok]
            err, se = _err_se(errs) if errs.size > 1 else (None, None)
            rows.append(
                {"kind": kind, "L": None, "n": n, "method": "lstd", "alpha": None, "tune_err": None,
                 "heldout_err": err, "heldout_se": se,
                 "heldout_median": float(np.median(errs)) if errs.size else None,
                 "exists": int(ok.sum()), "tasks": int(ok.size), "diverged": False}
            )  # fmt: skip
    return rows


# --------------------------------------------------------------------------------------------- OOD


def _norm_err(pred: np.ndarray, y_query: np.ndarray) -> float:
    with np.errstate(all="ignore"):
        v = float(np.mean((pred - y_query) ** 2) / np.mean(y_query**2))
    return v if np.isfinite(v) else float("inf")


def ood_unit(cfg: DepthConfig, trained: dict, reg_base: list[dict], td_base: list[dict]) -> dict:
    """The out-of-distribution curves (module docstring) from the trained units' weights
    ``trained[key] = arrays`` and the baselines' tuned steps: ``regression`` rows
    ``{shift, scale, L, who, seed, err}`` (``who`` a param of a trained stack or a baseline method),
    ``td`` rows ``{shift, scale, L, kind, who, seed, err}`` and ``interpolation`` rows
    ``{param, seed, t, population_loss}`` (L = 1, ``A_t = (1 - t) A_trained + t Gamma^{-1}``) with
    ``loss_star``."""
    Lambda = _lambda(cfg)
    N, d = cfg.reg_N, cfg.reg_d
    test = _test_sample(cfg, N)
    fams = {"I": np.eye(d), "Lambda_inv": np.linalg.inv(Lambda)}
    reg_rows = []
    for shift in ("input", "weight"):
        for s in cfg.ood_scales:
            X, y, xq, yq = _scaled(test, **({"input_scale": s} if shift == "input" else {"weight_scale": s}))
            S, h = bl.context_statistics(X, y)
            for L in cfg.ood_reg_layers:
                for param in cfg.reg_params:
                    for seed in cfg.seeds:
                        arr = trained[_reg_key(L, N, param, seed)]
                        pred = _stack_predict(list(zip(arr["P"], arr["Q"], strict=True)), X, y, xq)
                        reg_rows.append(
                            {"shift": shift, "scale": s, "L": L, "who": param, "seed": seed,
                             "err": _norm_err(pred, yq)}
                        )  # fmt: skip
                for row in reg_base:
                    if row["study"] == "L" and row["L"] == L and row["method"] in ("gd", "pgd"):
                        fam = fams[REG_METHODS[row["method"]][0]]
                        pred = bl.pgd_predict(S, h, xq, [e * fam for e in row["steps"]])
                        reg_rows.append(
                            {"shift": shift, "scale": s, "L": L, "who": row["method"], "seed": None,
                             "err": _norm_err(pred, yq)}
                        )  # fmt: skip
    td_rows = []
    for kind in cfg.td_kinds:
        held_t, held_x = _td_eval_set(cfg, kind, 21, cfg.td_heldout)
        for shift in ("feature", "reward"):
            for s in cfg.ood_scales:
                tasks = _transform(
                    held_t, **({"feature_scale": s} if shift == "feature" else {"reward_scale": s})
                )
                for L in cfg.ood_td_layers:
                    for mode in cfg.td_modes:
                        for seed in cfg.seeds:
                            arr = trained[_td_key(L, mode, kind, seed)]
                            v = _stack_values(tasks, held_x, cfg.td_gamma, cfg.td_n, arr["Ps"], arr["Qs"])
                            e = bl.rel_msve(v, tasks, cfg.td_gamma)
                            td_rows.append(
                                {"shift": shift, "scale": s, "L": L, "kind": kind, "who": mode, "seed": seed,
                                 "err": _err_se(e)[0]}
                            )  # fmt: skip
                    row = next(
                        r for r in td_base
                        if (r["kind"], r["L"], r["n"], r["method"]) == (kind, L, cfg.td_n, "batch_td")
                    )  # fmt: skip
                    P3, Q3 = dt.w3_theta(cfg.td_d, L, row["alpha"])
                    v = _stack_values(tasks, held_x, cfg.td_gamma, cfg.td_n, P3, Q3)
                    td_rows.append(
                        {"shift": shift, "scale": s, "L": L, "kind": kind, "who": "w3", "seed": None,
                         "err": _err_se(bl.rel_msve(v, tasks, cfg.td_gamma))[0]}
                    )  # fmt: skip
    G_inv = np.linalg.inv(rg.gamma_matrix(Lambda, N))
    interp = []
    if 1 in cfg.reg_layers:
        for param in cfg.reg_params:
            for seed in cfg.seeds:
                arr = trained[_reg_key(1, N, param, seed)]
                A = -arr["P"][0][d, d] * arr["Q"][0][:d, :d]
                for t in cfg.interp_ts:
                    At = (1 - t) * A + t * G_inv
                    interp.append(
                        {"param": param, "seed": seed, "t": float(t),
                         "population_loss": rg.population_loss(At.T, Lambda, N)}
                    )  # fmt: skip
    return {
        "regression": reg_rows,
        "td": td_rows,
        "interpolation": interp,
        "loss_star": rg.population_loss(G_inv, Lambda, N),
    }


# ---------------------------------------------------------------------------------------- the run


def _reg_key(L: int, N: int, param: str, seed: int) -> str:
    return f"reg/L{L}/N{N}/{param}/s{seed}"


def _td_key(L: int, mode: str, kind: str, seed: int) -> str:
    return f"td/L{L}/{mode}/{kind}/s{seed}"


def _reg_trained_keys(cfg: DepthConfig) -> list[tuple]:
    """``(key, L, N, param, study)``: every L at reg_N (each param), then every other N at
    reg_N_layers (sparse; N = reg_N is the L study's run)."""
    out = []
    for L in cfg.reg_layers:
        for param in cfg.reg_params:
            for seed in cfg.seeds:
                out.append((_reg_key(L, cfg.reg_N, param, seed), L, cfg.reg_N, param, seed, "L"))
    for N in cfg.reg_Ns:
        if N != cfg.reg_N:
            for seed in cfg.seeds:
                out.append(
                    (_reg_key(cfg.reg_N_layers, N, "sparse", seed), cfg.reg_N_layers, N, "sparse", seed, "N")
                )
    return out


def _td_trained_keys(cfg: DepthConfig) -> list[tuple]:
    return [
        (_td_key(L, mode, kind, seed), L, mode, kind, seed)
        for kind in cfg.td_kinds
        for L in cfg.td_layers
        for mode in cfg.td_modes
        for seed in cfg.seeds
    ]


def units(cfg: DepthConfig) -> list[str]:
    """The unit keys in run order: ``reg/baselines``, each trained regression stack
    ``reg/L<L>/N<N>/<param>/s<seed>``, ``td/baselines``, each trained TD stack
    ``td/L<L>/<mode>/<kind>/s<seed>``, then ``ood`` (which reads the trained weights)."""
    return (
        ["reg/baselines"]
        + [k[0] for k in _reg_trained_keys(cfg)]
        + ["td/baselines"]
        + [k[0] for k in _td_trained_keys(cfg)]
        + ["ood"]
    )


def run_unit(cfg: DepthConfig, key: str, store: UnitStore | None = None):
    """The unit ``key`` of :func:`units`: ``(record, arrays)``. ``ood`` needs the other units'
    results: from ``store`` when given, else computed here."""
    if key == "reg/baselines":
        return reg_baselines_unit(cfg), {}
    if key == "td/baselines":
        return td_baselines_unit(cfg), {}
    for k, L, N, param, seed, study in _reg_trained_keys(cfg):
        if key == k:
            return reg_trained_unit(cfg, L, N, param, seed, study)
    for k, L, mode, kind, seed in _td_trained_keys(cfg):
        if key == k:
            return td_trained_unit(cfg, L, mode, kind, seed)
    if key == "ood":
        store = store or UnitStore(None, UNITS_FILE, config=None)
        got = {k: store.unit(k, lambda k=k: run_unit(cfg, k)) for k in units(cfg)[:-1]}
        trained = {k: arr for k, (_, arr) in got.items() if not k.endswith("baselines")}
        return ood_unit(cfg, trained, got["reg/baselines"][0], got["td/baselines"][0]), {}
    raise ValueError(f"key: expected one of {units(cfg)}, got {key!r}")


def _summary(rows: list[dict], keys: tuple, value: str) -> list[dict]:
    """Mean, sample s.d. over seeds, runs and diverged runs per group of ``keys``."""
    groups: dict = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    out = []
    for g, rs in groups.items():
        vals = np.array([r[value] for r in rs], dtype=float)
        fin = vals[np.isfinite(vals)]
        out.append(
            dict(zip(keys, g, strict=True))
            | {
                "runs": len(rs),
                "diverged": sum(bool(r["diverged"]) for r in rs),
                "mean": float(fin.mean()) if fin.size else None,
                "sd": float(fin.std(ddof=1)) if fin.size > 1 else None,
            }
        )
    return out


def run_depth(cfg: DepthConfig, out: str | Path | None = None) -> dict:
    """Every unit of ``cfg``; with ``out``, ``depth.json`` and ``depth.npz`` (the trained weights and
    curves under their unit keys) are written there, finished units kept in ``out/UNITS_FILE`` (and
    its ``.npz``) until then, so an interrupted run resumes by unit. Returns the document: ``config``;
    ``regression`` with ``runs`` (every trained stack: ``study``, ``L``, ``N``, ``param``, ``seed``,
    ``steps``, ``train_loss_final``, ``heldout_loss``, ``heldout_se``, ``diverged``, ...),
    ``baselines``, ``summary``; ``td`` with ``runs`` (``L``, ``mode``, ``kind``, ``seed``,
    ``steps``, ``train_loss_final``, ``heldout_err``, ``heldout_se``, ``heldout_by_n``,
    ``diverged``, ``worse_than_zero``), ``baselines``, ``summary``; ``ood``; ``counts`` (runs,
    diverged); ``passed`` (every run listed and no regression baseline diverged); ``provenance``,
    ``versions``, ``wall_time``."""
    t0 = time.perf_counter()
    out = Path(out) if out is not None else None
    store = UnitStore(out, UNITS_FILE, config=asdict(cfg), arrays=".depth-units.npz", label="depth")
    got = {k: store.unit(k, lambda k=k: run_unit(cfg, k, store)) for k in units(cfg)}
    reg_runs = [got[k[0]][0] for k in _reg_trained_keys(cfg)]
    td_runs = [got[k[0]][0] for k in _td_trained_keys(cfg)]
    reg_base, td_base = got["reg/baselines"][0], got["td/baselines"][0]
    arrays = {f"{k}/{name}": v for k, (_, arr) in got.items() for name, v in arr.items()}
    listed = len(reg_runs) == len(_reg_trained_keys(cfg)) and len(td_runs) == len(_td_trained_keys(cfg))
    doc = {
        "config": to_jsonable(asdict(cfg)),
        "regression": {
            "Lambda": _lambda(cfg),
            "runs": reg_runs,
            "baselines": reg_base,
            "summary": _summary(reg_runs, ("study", "L", "N", "param"), "heldout_loss"),
        },
        "td": {
            "runs": td_runs,
            "baselines": td_base,
            "summary": _summary(td_runs, ("kind", "L", "mode"), "heldout_err"),
        },
        "ood": got["ood"][0],
        "counts": {
            "regression_runs": len(reg_runs),
            "regression_diverged": sum(r["diverged"] for r in reg_runs),
            "td_runs": len(td_runs),
            "td_diverged": sum(r["diverged"] for r in td_runs),
            "td_worse_than_zero": sum(r["worse_than_zero"] for r in td_runs),
        },
        "passed": bool(listed and not any(r["diverged"] for r in reg_base)),
        "provenance": provenance(asdict(cfg), cfg.seed),
        "versions": versions(),
        "wall_time": time.perf_counter() - t0,
    }
    doc = to_jsonable(doc)
    if out is not None:
        atomic_savez(out / "depth.npz", **arrays)
        atomic_write_json(out / "depth.json", doc)
        store.remove()
        if (out / ".depth-units.npz").exists():
            (out / ".depth-units.npz").unlink()
    return doc

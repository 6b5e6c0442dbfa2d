r"""The converge experiment: local exponential convergence (M6), conservation (M3), richness (M5).

For each (seed, scale c, radius r) the flow starts at ``theta*(c) + r ||theta*(c)|| z / ||z||``
(``z`` standard normal), on a teacher dataset drawn with that seed, and runs to the gradient
floor. **Before** integrating, (M3) predicts the limit's scale ``c_pred`` from the start alone and
the Hessian at ``theta*(c_pred)`` gives the predicted rate ``lambda_min^+`` (``rate_pred_a_priori``).
Each run reports the measured rate ``rate_fit`` (the slowest rate of the three-exponential fit
:func:`lsa_theory.dynamics.fit_modes` of ``log L`` over the points whose loss round-off bound is at most 1 %
of it, with ``rate_roundoff`` the bound that round-off puts on it) against that prediction
(``rate_ratio_a_priori``) and against ``lambda_min^+`` at the limit (``rate_ratio``); the single
late window (:data:`lsa_theory.dynamics.RATE_WINDOW`, ``rate_ratio_single``) and the two-mode fit are
reported beside it. The PL ratio ``||grad L||^2 / (2 lambda_min^+ L)`` is minimised over every
accepted step whose loss and gradient norm are resolved (``pl_min_ratio``, ``pl_roundoff``; >= 1
near the manifold); then the (M3) drift, the limit's scale against ``c_pred``, the distance to
the manifold and the richness at the limit.

Two further kinds of run are reported beside ``runs`` and never counted as evidence for (M6):
``unrealisable`` (targets with added noise, so ``L* > 0`` and the theorem says nothing; the rate
is measured from ``||grad L||``, since ``L`` stalls at ``L*``) and ``radius_sweep`` (starting radii
far beyond the local neighbourhood; ``reached`` when the flow ends on the manifold).

Results: ``converge.json`` (config, versions, runs, unrealisable, radius_sweep) and
``converge.npz`` (per-run trajectories and Hessian spectra) in the output directory, written after
every run; a rerun skips finished runs.
"""

from __future__ import annotations

import functools
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from lsa_theory import constructions
from lsa_theory import dynamics as dy

from ..io import (
    config_hash,
    file_sha256,
    progress,
    to_jsonable,
    versions,
)
from ..store import UnitStore
from .pl import _pl_resolved, pl_ratio_error_bound, pl_ratios

__all__ = [
    "ConvergeConfig",
    "PARTS",
    "Unit",
    "run_key",
    "units",
    "run_unit",
    "run_converge",
    "predict_rate",
    "predict_rates",
    "noisy_targets",
    "reached_manifold",
]


@dataclass(frozen=True)
class ConvergeConfig:
    """Sizes and solver settings; ``quick()`` is the small configuration of ``--quick``. ``algo``:
    a registered closed-loop algorithm, or one declared in the user's file ``module`` (a ``.py``
    path, :func:`lsa_theory.constructions.load_closed_loop_module`; its readout must be bilinear in the (L2)
    blocks, as every :class:`lsa_theory.constructions.ClosedLoopAlgorithm`'s is)."""

    algo: str = "sarsa"
    S: int = 2
    A: int = 2
    d_pi: int | None = None
    k: int = 20
    frames: int = 10
    seeds: tuple[int, ...] = (0, 1, 2)
    scales: tuple[float, ...] = (1.0, -2.0, 0.4)
    radii: tuple[float, ...] = (1e-2, 3e-2, 1e-1)
    t_max: float = 1e12
    method: str = "LSODA"
    rtol: float = 1e-11
    atol: float = 1e-14
    grad_floor: float = 1e-17
    window: tuple[float, float] = field(default=dy.RATE_WINDOW)
    #: relative target noise of the unrealisable runs (one per seed, c = 1, the first radius)
    noise: tuple[float, ...] = (1e-3, 1e-1)
    #: starting radii of the radius sweep (c = 1, every seed); empty for none
    sweep_radii: tuple[float, ...] = (0.3, 1.0, 3.0, 10.0, 30.0)
    module: str | None = None

    def __post_init__(self) -> None:
        if any(r < 0 for r in self.radii):
            raise ValueError(f"radii: must be non-negative, got {self.radii}")
        if any(r <= 0 for r in self.sweep_radii):
            raise ValueError(f"sweep_radii: must be positive, got {self.sweep_radii}")
        if any(x <= 0 for x in self.noise):
            raise ValueError(f"noise: must be positive, got {self.noise}")
        if any(c == 0 for c in self.scales):
            raise ValueError("scales: c must be non-zero")
        dy.TeacherSpec(algorithm=self.algorithm(), S=self.S, A=self.A, k=self.k, frames=self.frames)

    def algorithm(self) -> str | constructions.ClosedLoopAlgorithm:
        """``algo``'s declaration when ``module`` declares it, else the registered name."""
        return self._algorithm

    @functools.cached_property
    def _algorithm(self) -> str | constructions.ClosedLoopAlgorithm:
        # the user's file is read and imported once per configuration, not at every spec()
        if self.module is None:
            return self.algo
        user = constructions.load_closed_loop_module(self.module)
        if self.algo not in user:
            raise ValueError(f"algo: {self.module} declares {sorted(user)}, not {self.algo!r}")
        return user[self.algo]

    @functools.cached_property
    def module_sha256(self) -> str | None:
        """sha256 of the user's file (read once per configuration), ``None`` without one."""
        return None if self.module is None else file_sha256(self.module)

    @classmethod
    def quick(cls, algo: str = "sarsa", module: str | None = None) -> ConvergeConfig:
        return cls(
            algo=algo,
            module=module,
            seeds=(0,),
            scales=(1.0, -2.0),
            radii=(1e-2, 1e-1),
            noise=(1e-3,),
            sweep_radii=(),
        )

    @classmethod
    def full(cls, algo: str = "sarsa", module: str | None = None) -> ConvergeConfig:
        """The full run: 3 seeds x 3 scales x 3 radii; an algorithm with an actor (more
        parameters, slower per flow) sweeps the radii 1 and 10 with one noise level."""
        cfg = cls(algo=algo, module=module)
        if cfg.spec().alg.has_actor:
            return cls(algo=algo, module=module, noise=(1e-3,), sweep_radii=(1.0, 10.0))
        return cfg

    def spec(self) -> dy.TeacherSpec:
        return dy.TeacherSpec(
            algorithm=self.algorithm(), S=self.S, A=self.A, k=self.k, frames=self.frames, d_pi=self.d_pi
        )


def run_key(algo: str, seed: int, c: float, radius: float) -> str:
    return f"{algo}|seed={seed}|c={c:g}|r={radius:g}"


def _start(ds: dy.TeacherDataset, seed: int, c: float, radius: float) -> np.ndarray:
    theta_star = dy.construction(ds, c)
    z = np.random.default_rng([seed, 1]).standard_normal(theta_star.size)
    return theta_star + radius * np.linalg.norm(theta_star) * z / np.linalg.norm(z)


def predict_rate(ds: dy.TeacherDataset, theta0: np.ndarray) -> tuple[float, float]:
    """A priori (M6) prediction from the start alone: ``(c_pred, lambda_min^+(H(theta*(c_pred))))``
    with ``c_pred`` the (M3) scale (:func:`lsa_theory.dynamics.predict_scale`); exact for the limit when the
    tangent is the scaling direction alone."""
    c_pred, lam1, _ = predict_rates(ds, theta0)
    return c_pred, lam1


def predict_rates(ds: dy.TeacherDataset, theta0: np.ndarray) -> tuple[float, float, float]:
    """``(c_pred, lambda_1, lambda_2)``: the two smallest non-zero Hessian eigenvalues at
    ``theta*(c_pred)``, predicted before the flow (``lambda_2`` is ``nan`` with one non-zero one)."""
    c_pred = dy.predict_scale(ds, theta0)
    spec = dy.hessian_spectrum(ds, dy.construction(ds, c_pred))
    nonzero = np.sort(spec.eigenvalues[spec.eigenvalues > spec.lambda_min_plus * (1 - 1e-12)])
    return c_pred, spec.lambda_min_plus, float(nonzero[1]) if nonzero.size > 1 else float("nan")


def _flow(cfg: ConvergeConfig, ds: dy.TeacherDataset, theta0: np.ndarray) -> dy.FlowResult:
    return dy.gradient_flow(
        ds,
        theta0,
        cfg.t_max,
        method=cfg.method,
        rtol=cfg.rtol,
        atol=cfg.atol,
        grad_floor=cfg.grad_floor,
        error_bounds=True,
    )


def _one_run(cfg: ConvergeConfig, ds: dy.TeacherDataset, seed: int, c: float, radius: float):
    theta0 = _start(ds, seed, c, radius)
    t0 = time.perf_counter()
    c_pred, rate_prior, rate_prior2 = predict_rates(ds, theta0)  # before the flow
    flow = _flow(cfg, ds, theta0)
    spec = dy.hessian_spectrum(ds, flow.theta_final)
    rich = dy.richness(ds, flow.theta_final)
    fit = dy.fit_modes(flow.t, flow.loss, flow.loss_err)  # the (M6) rate of the criterion
    mu = fit.mu
    mu_single, n_single = dy.fit_rate(flow.t, flow.loss, cfg.window, loss_err=flow.loss_err)
    mu1, mu2, _ = dy.fit_two_mode(flow.t, flow.loss, loss_err=flow.loss_err)
    pl = pl_ratios(flow, rate_prior)
    keep = _pl_resolved(flow.loss, flow.grad_norm, flow.loss_err, flow.grad_err)
    pl_err = pl_ratio_error_bound(flow.loss, flow.grad_norm, flow.loss_err, flow.grad_err)[keep]
    row = {
        "algo": cfg.algo,
        "seed": seed,
        "radius": radius,
        "c0": c,
        "loss0": flow.loss[0],
        "loss_final": flow.loss[-1],
        "dist_final": flow.dist[-1],
        "rate_fit": mu,
        "rate_pred_a_priori": rate_prior,
        "rate_ratio_a_priori": mu / rate_prior,
        "rate_pred2_a_priori": rate_prior2,
        "rate_ratio_two_mode": mu1 / rate_prior,
        "rate_ratio_two_mode_fast": mu2 / rate_prior2,
        "rate_modes": list(fit.rates),
        "rate_roundoff": fit.roundoff,
        "rate_fit_single": mu_single,
        "rate_ratio_single": mu_single / rate_prior,
        "rate_roundoff_single": dy.fit_rate_roundoff(flow.t, flow.loss, flow.loss_err, cfg.window),
        "rate_points_single": n_single,
        "pl_min_ratio": float(pl.min()) if pl.size else float("nan"),
        "pl_points": int(pl.size),
        "pl_roundoff": float(pl_err.max()) if pl_err.size else float("nan"),
        "rate_pred": spec.lambda_min_plus,
        "rate_ratio": mu / spec.lambda_min_plus,
        "rate_points": fit.n_points,
        "ker_dim": rich.ker_dim,
        "tangent_dim": rich.tangent_dim,
        "rich": rich.morse_bott,
        "scaling_only": rich.scaling_only,
        "conserved_drift": flow.conserved_drift,
        "c_pred": c_pred,
        "c_final": flow.c_final,
        "converged": flow.converged,
        "message": flow.message,
        "t_final": float(flow.t[-1]),
        "steps": flow.stats["steps"],
        "wall_time": time.perf_counter() - t0,
    }
    arrays = {"t": flow.t, "loss": flow.loss, "grad_norm": flow.grad_norm, "eig": spec.eigenvalues}
    arrays.update({"loss_err": flow.loss_err, "grad_err": flow.grad_err})  # round-off bounds
    return row, arrays


def noisy_targets(ds: dy.TeacherDataset, noise: float, rng: np.random.Generator) -> dy.TeacherDataset:
    """``ds`` with targets ``y_f + noise * rms(y) * N(0, 1)``: no transformer matches them, ``L* > 0``."""
    y = ds.y + noise * np.sqrt(np.mean(ds.y**2)) * rng.standard_normal(ds.y.shape)
    return dy.TeacherDataset(spec=ds.spec, Sigma=ds.Sigma, wt=ds.wt, y=y, mdp=ds.mdp, X=ds.X)


def _unrealisable_run(cfg: ConvergeConfig, ds: dy.TeacherDataset, seed: int, noise: float):
    """(M6) with unrealisable targets: the rate of ``||grad L||`` (``L`` stalls at ``L*``) against
    ``lambda_min^+`` at the realisable ``theta*(c_pred)`` and at the flow's own limit."""
    radius = cfg.radii[0]
    theta0 = _start(ds, seed, 1.0, radius)
    t0 = time.perf_counter()
    _, rate_prior = predict_rate(ds, theta0)  # the realisable problem's prediction
    noisy = noisy_targets(ds, noise, np.random.default_rng([seed, 2]))
    flow = _flow(cfg, noisy, theta0)
    lam_limit = dy.hessian_spectrum(noisy, flow.theta_final).lambda_min_plus
    mu_loss, _ = dy.fit_rate(flow.t, flow.loss, cfg.window)
    mu_grad, n_pts = dy.fit_rate(flow.t, flow.grad_norm**2, cfg.window)
    row = {
        "algo": cfg.algo,
        "seed": seed,
        "radius": radius,
        "noise": noise,
        "loss0": flow.loss[0],
        "loss_star": flow.loss[-1],
        "grad_final": flow.grad_norm[-1],
        "rate_fit_loss": mu_loss,
        "rate_fit_grad": mu_grad,
        "rate_points": n_pts,
        "rate_pred_a_priori": rate_prior,
        "rate_ratio_a_priori": mu_grad / rate_prior,
        "rate_pred_limit": lam_limit,
        "rate_ratio_limit": mu_grad / lam_limit,
        "converged": flow.converged,
        "message": flow.message,
        "wall_time": time.perf_counter() - t0,
    }
    return row, {"t": flow.t, "loss": flow.loss, "grad_norm": flow.grad_norm}


def _sweep_run(cfg: ConvergeConfig, ds: dy.TeacherDataset, seed: int, radius: float):
    """One start of the radius sweep (c = 1): does the flow still end on the manifold?"""
    row, arrays = _one_run(cfg, ds, seed, 1.0, radius)
    return {**row, "reached": reached_manifold(row)}, arrays


def reached_manifold(row: dict) -> bool:
    """The flow ended on the manifold: distance below 1e-8 and loss below 1e-20, whether it stopped
    at the gradient floor or at ``t_max`` with the gradient at round-off (``converged`` says which)."""
    return bool(row["dist_final"] < 1e-8 and row["loss_final"] < 1e-20)


def run_converge(cfg: ConvergeConfig, out: str | Path | None = None) -> dict:
    """Run every (seed, c, radius) flow of ``cfg``, then the unrealisable runs (one per seed and
    noise level) and the radius sweep; with ``out``, save and resume there.

    Returns ``{"config", "versions", "runs": [...], "unrealisable": [...], "radius_sweep": [...],
    "radius_max_reached"}``; the per-run trajectories go to ``out/converge.npz`` under
    ``"{key}/{name}"``.
    """
    out = Path(out) if out is not None else None
    todo = units(cfg)

    def render(store: UnitStore) -> dict:
        parts = {p: [store.records[u.key] for u in todo if u.part == p and u.key in store] for p in PARTS}
        return _doc(cfg, parts)

    store = UnitStore(
        out, "converge.json", config=_config_doc(cfg), arrays="converge.npz", label="converge",
        saved_units=_saved_units, render=render,
    )  # fmt: skip
    datasets: dict[int, dy.TeacherDataset] = {}
    for unit in progress(todo, desc=f"converge {cfg.algo}"):
        if unit.key not in store:
            store.put(unit.key, *run_unit(cfg, unit, datasets))
    return store.save()  # derived fields (``reached``, ``radius_max_reached``) follow the current code


#: The parts of ``converge.json``, each a list of unit rows (with their ``key``).
PARTS = ("runs", "unrealisable", "radius_sweep")


class Unit(NamedTuple):
    """One flow of a converge run: ``part`` (of :data:`PARTS`), ``seed``, scale ``c`` and ``x``
    (the radius, or the noise level of an unrealisable run); ``key`` names it in the saved files."""

    key: str
    part: str
    seed: int
    c: float
    x: float


def units(cfg: ConvergeConfig) -> list[Unit]:
    """The units of ``cfg`` in run order: every (seed, c, radius) flow, then the unrealisable runs
    (seed, noise level), then the radius sweep (seed, radius)."""
    jobs = [("runs", s, c, r) for s in cfg.seeds for c in cfg.scales for r in cfg.radii]
    jobs += [("unrealisable", s, 1.0, x) for s in cfg.seeds for x in cfg.noise]
    jobs += [("radius_sweep", s, 1.0, r) for s in cfg.seeds for r in cfg.sweep_radii]
    out = []
    for part, seed, c, x in jobs:
        key = run_key(cfg.algo, seed, c, x)
        out.append(Unit(key if part == "runs" else f"{part}|{key}", part, seed, c, x))
    return out


def run_unit(
    cfg: ConvergeConfig, unit: Unit, datasets: dict[int, dy.TeacherDataset] | None = None
) -> tuple[dict, dict[str, np.ndarray]]:
    """``(row, arrays)`` of one :class:`Unit` of ``cfg`` (its ``key`` in the row). The teacher
    dataset of ``unit.seed`` is drawn from ``default_rng(seed)``, once per seed in ``datasets``."""
    datasets = {} if datasets is None else datasets
    if unit.seed not in datasets:
        datasets[unit.seed] = dy.teacher_dataset(cfg.spec(), np.random.default_rng(unit.seed))
    ds = datasets[unit.seed]
    if unit.part == "runs":
        row, arr = _one_run(cfg, ds, unit.seed, unit.c, unit.x)
    elif unit.part == "unrealisable":
        row, arr = _unrealisable_run(cfg, ds, unit.seed, unit.x)
    elif unit.part == "radius_sweep":
        row, arr = _sweep_run(cfg, ds, unit.seed, unit.x)
    else:
        raise ValueError(f"unit.part: expected one of {PARTS}, got {unit.part!r}")
    row["key"] = unit.key
    return row, arr


def _saved_units(doc: dict):
    """The unit rows of a saved ``converge.json`` and the hash of the configuration they ran under."""
    h = config_hash(doc.get("config")) if isinstance(doc, dict) else None
    for part in PARTS:
        for r in doc.get(part, []) if isinstance(doc, dict) else []:
            if isinstance(r, dict) and "key" in r:
                yield r["key"], r, h


def _config_doc(cfg: ConvergeConfig) -> dict:
    """The configuration as saved (the resume key); with ``module``, the file's sha256 too."""
    doc = asdict(cfg)
    if cfg.module is None:
        del doc["module"]  # the documents saved before user modules stay valid
    else:
        doc["module_sha256"] = cfg.module_sha256
    return to_jsonable(doc)


def _doc(cfg: ConvergeConfig, parts: dict[str, list[dict]]) -> dict:
    sweep = parts["radius_sweep"]
    for r in sweep:
        r["reached"] = reached_manifold(r)
    reached = [r["radius"] for r in sweep if r["reached"]]
    # the largest radius from which every seed's flow reached the manifold (None if no sweep)
    ok = [x for x in sorted(set(reached)) if all(r["reached"] for r in sweep if r["radius"] <= x)]
    return {
        "config": _config_doc(cfg),
        "versions": versions(),
        **parts,
        "radius_max_reached": max(ok) if ok else None,
    }

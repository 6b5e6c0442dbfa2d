r"""``lsa-theory converge``: local exponential convergence (M6), conservation (M3), richness (M5).

For each (seed, scale c, radius r) the flow starts at ``theta*(c) + r ||theta*(c)|| z / ||z||``
(``z`` standard normal), on a teacher dataset drawn with that seed, and runs to the gradient
floor. Each run reports the measured rate (slope of ``log L`` over :data:`dynamics.RATE_WINDOW`)
against ``lambda_min^+`` of the Hessian at the limit, the (M3) drift, the limit's scale against
the (M3) prediction, the distance to the manifold and the richness at the limit.

Results: ``converge.json`` (config, versions, runs) and ``converge.npz`` (per-run trajectories and
Hessian spectra) in the output directory, written after every run; a rerun skips finished runs.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

import dynamics as dy

from .io import atomic_savez, atomic_write_json, progress, read_json, to_jsonable, versions

__all__ = ["ConvergeConfig", "run_converge", "run_key", "plot_converge"]


@dataclass(frozen=True)
class ConvergeConfig:
    """Sizes and solver settings; ``quick()`` is the small configuration of ``--quick``."""

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

    def __post_init__(self) -> None:
        if any(r < 0 for r in self.radii):
            raise ValueError(f"radii: must be non-negative, got {self.radii}")
        if any(c == 0 for c in self.scales):
            raise ValueError("scales: c must be non-zero")
        dy.TeacherSpec(algorithm=self.algo, S=self.S, A=self.A, k=self.k, frames=self.frames)

    @classmethod
    def quick(cls, algo: str = "sarsa") -> ConvergeConfig:
        return cls(
            algo=algo,
            seeds=(0,),
            scales=(1.0, -2.0),
            radii=(1e-2, 1e-1),
        )

    def spec(self) -> dy.TeacherSpec:
        return dy.TeacherSpec(
            algorithm=self.algo, S=self.S, A=self.A, k=self.k, frames=self.frames, d_pi=self.d_pi
        )


def run_key(algo: str, seed: int, c: float, radius: float) -> str:
    return f"{algo}|seed={seed}|c={c:g}|r={radius:g}"


def _one_run(cfg: ConvergeConfig, ds: dy.TeacherDataset, seed: int, c: float, radius: float):
    theta_star = dy.construction(ds, c)
    z = np.random.default_rng([seed, 1]).standard_normal(theta_star.size)
    theta0 = theta_star + radius * np.linalg.norm(theta_star) * z / np.linalg.norm(z)
    U = dy.invisible_directions(ds)
    t0 = time.perf_counter()
    flow = dy.gradient_flow(
        ds, theta0, cfg.t_max, method=cfg.method, rtol=cfg.rtol, atol=cfg.atol, grad_floor=cfg.grad_floor
    )
    spec = dy.hessian_spectrum(ds, flow.theta_final)
    rich = dy.richness(ds, flow.theta_final)
    mu, n_pts = dy.fit_rate(flow.t, flow.loss, cfg.window)
    c_pred = dy.predict_scale(ds, theta0, U)
    row = {
        "algo": cfg.algo,
        "seed": seed,
        "radius": radius,
        "c0": c,
        "loss0": flow.loss[0],
        "loss_final": flow.loss[-1],
        "dist_final": flow.dist[-1],
        "rate_fit": mu,
        "rate_pred": spec.lambda_min_plus,
        "rate_ratio": mu / spec.lambda_min_plus,
        "rate_points": n_pts,
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
    return row, arrays


def run_converge(cfg: ConvergeConfig, out: str | Path | None = None) -> dict:
    """Run every (seed, c, radius) flow of ``cfg``; with ``out``, save and resume there.

    Returns ``{"config", "versions", "runs": [...]}``; the per-run trajectories go to
    ``out/converge.npz`` under ``"{index}/{name}"``.
    """
    out = Path(out) if out is not None else None
    done: dict[str, dict] = {}
    arrays: dict[str, np.ndarray] = {}
    if out is not None and (out / "converge.json").exists():
        prev = read_json(out / "converge.json")
        if prev.get("config") == _config_doc(cfg):
            done = {run_key(r["algo"], r["seed"], r["c0"], r["radius"]): r for r in prev["runs"]}
            if (out / "converge.npz").exists():
                with np.load(out / "converge.npz") as z:
                    arrays = {k: z[k] for k in z.files}
    runs = []
    jobs = [(s, c, r) for s in cfg.seeds for c in cfg.scales for r in cfg.radii]
    datasets: dict[int, dy.TeacherDataset] = {}
    for seed, c, radius in progress(jobs, desc=f"converge {cfg.algo}"):
        key = run_key(cfg.algo, seed, c, radius)
        if key in done:
            runs.append(done[key])
            continue
        if seed not in datasets:
            datasets[seed] = dy.teacher_dataset(cfg.spec(), np.random.default_rng(seed))
        row, arr = _one_run(cfg, datasets[seed], seed, c, radius)
        runs.append(row)
        arrays.update({f"{key}/{name}": v for name, v in arr.items()})
        if out is not None:
            atomic_savez(out / "converge.npz", **arrays)
            atomic_write_json(out / "converge.json", _doc(cfg, runs))
    return _doc(cfg, runs)


def _config_doc(cfg: ConvergeConfig) -> dict:
    return to_jsonable(asdict(cfg))


def _doc(cfg: ConvergeConfig, runs: list[dict]) -> dict:
    return {"config": _config_doc(cfg), "versions": versions(), "runs": runs}


def plot_converge(out: str | Path) -> list[Path]:
    """Figures from saved results in ``out``: log loss against t with the predicted slope
    ``-2 lambda_min^+`` through the window, and the Hessian spectra at the limits."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    doc = read_json(out / "converge.json")
    window = doc["config"]["window"]
    paths = []
    with np.load(out / "converge.npz") as z:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
        for r in doc["runs"]:
            key = run_key(r["algo"], r["seed"], r["c0"], r["radius"])
            t, loss = z[f"{key}/t"], z[f"{key}/loss"]
            label = f"c={r['c0']:g}, r={r['radius']:g}, seed {r['seed']}"
            for ax in axes:
                (line,) = ax.semilogy(t[1:], loss[1:], lw=1, label=label)
            sel = (loss > window[0]) & (loss < window[1])
            if sel.any() and r["rate_pred"]:
                t0, l0 = t[sel][0], loss[sel][0]
                tt = np.array([t0, t[sel][-1]])
                axes[1].semilogy(tt, l0 * np.exp(-2 * r["rate_pred"] * (tt - t0)), "k--", lw=0.8)
        for ax in axes:
            ax.axhspan(*window, color="0.9", zorder=0)
            ax.set_xlabel("t")
            ax.set_ylabel("L(theta(t))")
        axes[0].set_xscale("log")
        axes[0].set_title(f"{doc['runs'][0]['algo']}: loss along the flow")
        axes[1].set_title("linear t; dashed: slope -2 lambda_min^+; grey: fit window")
        axes[0].legend(fontsize=6)
        fig.tight_layout()
        paths.append(out / "converge_loss.png")
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)

        fig, ax = plt.subplots(figsize=(7, 4))
        for r in doc["runs"]:
            key = run_key(r["algo"], r["seed"], r["c0"], r["radius"])
            eig = np.sort(np.abs(z[f"{key}/eig"]))
            ax.semilogy(np.arange(1, eig.size + 1), np.maximum(eig, 1e-300), ".", ms=3)
        ax.set_xlabel("index")
        ax.set_ylabel("|eigenvalue| of the Hessian at the limit")
        ax.set_title("Hessian spectra at the limits (kernel at round-off)")
        fig.tight_layout()
        paths.append(out / "converge_spectrum.png")
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    return paths

r"""``lsa-theory diversity``: richness (M5) and the cost of missing task diversity (M7).

Rows: the (M5) table of THEORY.md (20 MDPs with resampled / one-hot / shared features; one MDP
with ``r(s, a)`` and with ``r(s, a, s')``) and a sweep over the number of training MDPs
``k = 1, 2, 4, ...`` with resampled or shared features. For each row: the Hessian kernel at the
construction against the (M4) tangent, ``lambda_min^+``, and ``heldout_err``: the gradient flow
is started off the scaling orbit (a random perturbation of relative size ``radius``), run to the
gradient floor, and its limit is scored against the teacher on held-out MDPs with fresh features,
as ``sqrt(mean ||TF - teacher||^2 / mean ||teacher - w||^2)``.

Data directions the training sample never shows (the invisible ``U`` of (M4)) are frozen by the
flow, so the limit keeps its initial error along them: zero only when the tangent is the
scaling direction alone.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

import dynamics as dy

from .io import atomic_write_json, progress, read_json, to_jsonable, versions

__all__ = ["DiversityConfig", "diversity_rows", "heldout_error", "run_diversity", "plot_diversity"]


@dataclass(frozen=True)
class DiversityConfig:
    """``total_frames`` training frames per row (split over its k MDPs); ``k_sweep`` values of k."""

    S: int = 2
    A: int = 2
    total_frames: int = 200
    k_sweep: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    heldout_k: int = 20
    radius: float = 0.05
    seed: int = 0
    t_max: float = 1e14
    rtol: float = 1e-11
    atol: float = 1e-14
    grad_floor: float = 1e-17

    def __post_init__(self) -> None:
        if self.radius < 0:
            raise ValueError(f"radius: must be non-negative, got {self.radius}")
        if any(k < 1 for k in self.k_sweep):
            raise ValueError(f"k_sweep: every k must be >= 1, got {self.k_sweep}")
        if self.total_frames < 1 or self.heldout_k < 1:
            raise ValueError("total_frames and heldout_k must be >= 1")

    @classmethod
    def quick(cls) -> DiversityConfig:
        return cls(k_sweep=(1, 2, 4, 8, 16))


def diversity_rows(cfg: DiversityConfig) -> list[dict]:
    """The row specifications: the five (M5) rows, then the k sweep (resampled, then shared)."""
    F = cfg.total_frames
    rows = [
        {"k": 20, "features": "uniform", "shared_features": False, "reward": "sa", "table": "M5"},
        {"k": 20, "features": "onehot", "shared_features": False, "reward": "sa", "table": "M5"},
        {"k": 20, "features": "uniform", "shared_features": True, "reward": "sa", "table": "M5"},
        {"k": 1, "features": "uniform", "shared_features": True, "reward": "sa", "table": "M5"},
        {"k": 1, "features": "uniform", "shared_features": True, "reward": "sas", "table": "M5"},
    ]
    for shared in (False, True):
        for k in cfg.k_sweep:
            rows.append(
                {"k": k, "features": "uniform", "shared_features": shared, "reward": "sa", "table": "k"}
            )
    for r in rows:
        r["frames"] = max(1, F // r["k"])
    return rows


def heldout_error(theta: np.ndarray, heldout: dy.TeacherDataset) -> float:
    """``sqrt(mean_f ||A Sigma_f B wt_f - y_f||^2 / mean_f ||y_f||^2)`` on held-out frames
    (:func:`dynamics.relative_error`)."""
    return dy.relative_error(heldout, theta)


def _row(cfg: DiversityConfig, row: dict, index: int) -> dict:
    spec = dy.TeacherSpec(
        S=cfg.S,
        A=cfg.A,
        k=row["k"],
        frames=row["frames"],
        features=row["features"],
        shared_features=row["shared_features"],
        reward=row["reward"],
    )
    ds = dy.teacher_dataset(spec, np.random.default_rng([cfg.seed, index]))
    held = dy.teacher_dataset(
        spec.replace(k=cfg.heldout_k, frames=10, shared_features=False),
        np.random.default_rng([cfg.seed, index, 1]),
    )
    theta_star = dy.construction(ds, 1.0)
    rich = dy.richness(ds, theta_star)
    z = np.random.default_rng([cfg.seed, index, 2]).standard_normal(theta_star.size)
    theta0 = theta_star + cfg.radius * np.linalg.norm(theta_star) * z / np.linalg.norm(z)
    t0 = time.perf_counter()
    flow = dy.gradient_flow(ds, theta0, cfg.t_max, rtol=cfg.rtol, atol=cfg.atol, grad_floor=cfg.grad_floor)
    return {
        **{k: row[k] for k in ("k", "features", "shared_features", "reward", "frames", "table")},
        "ker_dim": rich.ker_dim,
        "tangent_dim": rich.tangent_dim,
        "invisible_dim": rich.invisible_dim,
        "morse_bott": rich.morse_bott,
        "scaling_only": rich.scaling_only,
        "lambda_min_plus": rich.lambda_min_plus,
        "lambda_max": rich.lambda_max,
        "kernel_max": rich.kernel_max,
        "heldout_err": heldout_error(flow.theta_final, held),
        "heldout_err_construction": heldout_error(theta_star, held),
        "train_loss_final": flow.loss[-1],
        "dist_final": flow.dist[-1],
        "converged": flow.converged,
        "message": flow.message,
        "wall_time": time.perf_counter() - t0,
    }


def run_diversity(cfg: DiversityConfig, out: str | Path | None = None) -> dict:
    """Every row of :func:`diversity_rows`; with ``out``, ``diversity.json`` is rewritten
    atomically after each row and a rerun with the same config skips finished rows."""
    out = Path(out) if out is not None else None
    config = to_jsonable(asdict(cfg))
    done: list[dict] = []
    if out is not None and (out / "diversity.json").exists():
        prev = read_json(out / "diversity.json")
        if prev.get("config") == config:
            done = prev["rows"]
    rows = list(done)
    specs = diversity_rows(cfg)
    for index, row in progress(list(enumerate(specs))[len(done) :], desc="diversity"):
        rows.append(_row(cfg, row, index))
        if out is not None:
            atomic_write_json(
                out / "diversity.json", {"config": config, "versions": versions(), "rows": rows}
            )
    return {"config": config, "versions": versions(), "rows": rows}


def plot_diversity(out: str | Path) -> Path:
    """Held-out error and kernel dimension against k (resampled vs shared) from ``diversity.json``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    rows = [r for r in read_json(out / "diversity.json")["rows"] if r["table"] == "k"]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
    for shared, style in ((False, "o-"), (True, "s--")):
        sel = [r for r in rows if r["shared_features"] == shared]
        ks = [r["k"] for r in sel]
        label = "shared features" if shared else "resampled features"
        axes[0].loglog(ks, [max(r["heldout_err"], 1e-18) for r in sel], style, label=label)
        axes[1].semilogx(ks, [r["ker_dim"] for r in sel], style, label=label)
    axes[0].set_xlabel("training MDPs k")
    axes[0].set_ylabel("held-out relative error of the flow limit")
    axes[1].set_xlabel("training MDPs k")
    axes[1].set_ylabel("Hessian kernel dimension")
    for ax in axes:
        ax.legend(fontsize=8)
    fig.suptitle("(M7): task diversity and the optimal manifold")
    fig.tight_layout()
    path = out / "diversity.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

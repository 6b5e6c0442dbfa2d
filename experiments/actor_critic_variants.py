r"""Finding (A6), measured: the state-value critic against the action-value critic.

Two measurements on the [LL] random family (|S| = 9, |A| = 4, gamma = 0.5, ``n_mdps`` held-out
MDPs with fresh features, docs/theory.md §3):

1. **The expected actor step at the critic's fixed point**, exactly (no sampling):
   :meth:`constructions.algorithms.actor_critic.ActorCritic.expected_actor_step` for each variant,
   at a random actor ``lambda ~ U(-1, 1)^{d_pi}``: its norm ``|E[delta g]|`` and its cosine with
   the true policy gradient ``grad J(pi_lambda)``. With the action-value critic
   ``E[delta | s, a] = 0`` at the fixed point, so the step vanishes; with the state-value critic
   it is the advantage-weighted score.
2. **The closed loop (A5)** of both variants, the exact teacher and the frozen construction (A3),
   ``n_updates`` updates of ``n`` steps, alpha, beta as in :class:`experiments.control.ControlConfig`,
   paired (same MDPs and seeds for both variants): the greedy normalised return.

Results: ``actor_critic_variants.json`` (+ the control run's files under ``control/``).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

import constructions

from .control import ControlConfig, run_control
from .envs import HELDOUT_NAME, heldout_family, heldout_rng
from .io import atomic_write_json, provenance, single_blas_thread, to_jsonable, versions

__all__ = ["VARIANTS", "expected_steps", "run_variants"]

#: The two registered critics compared by (A6).
VARIANTS = ("actor_critic", "actor_critic_q")


def expected_steps(n_mdps: int = 20, seed: int = 0) -> list[dict]:
    """Per variant and held-out MDP ``j`` (the MDP of :func:`experiments.envs.heldout_family`; its
    features and ``lambda`` from ``heldout_rng(seed, j, 3)``, a stream of their own): ``|E[delta g]|``,
    the cosine with ``grad J`` and ``max |delta|`` at the critic's fixed point."""
    rows, mdps = [], list(heldout_family(n_mdps, seed))
    for name in VARIANTS:
        alg = constructions.ALGORITHMS[name]
        dims = alg.dims(9, 4)
        for j, mdp in enumerate(mdps):
            rng = heldout_rng(seed, j, 3)
            phi, phi_pi = alg.draw_tables(9, 4, dims, rng)
            lam = rng.uniform(-1.0, 1.0, dims.d_pi)
            out = alg.expected_actor_step(mdp, phi, phi_pi, lam)
            rows.append(
                {
                    "algo": name,
                    "mdp": j,
                    "step_norm": float(np.linalg.norm(out["step"])),
                    "policy_gradient_norm": float(np.linalg.norm(out["policy_gradient"])),
                    "cosine": out["cosine"],
                    "max_abs_delta": out["max_abs_delta"],
                }
            )
    return rows


def _mean_sem(values: list[float]) -> tuple[float, float]:
    x = np.asarray(values, dtype=np.float64)
    return float(x.mean()), float(x.std(ddof=1) / np.sqrt(x.size)) if x.size > 1 else 0.0


@single_blas_thread
def run_variants(
    out: str | Path | None = None, *, n_mdps: int = 20, n_updates: int = 1000, seed: int = 0
) -> dict:
    """Both (A6) measurements (module docstring); writes ``out/actor_critic_variants.json``
    with ``rows`` (one summary per variant), ``expected_steps`` (every MDP's row), ``config``,
    ``provenance`` (:func:`experiments.io.provenance` of ``config``), ``versions`` and
    ``wall_time`` (s)."""
    start = time.perf_counter()
    steps = expected_steps(n_mdps, seed)
    cfg = dataclasses.replace(
        ControlConfig(),
        envs=(HELDOUT_NAME,),
        env_algos=(),
        actor_critic_envs=(HELDOUT_NAME,),
        actor_critic_algos=VARIANTS,
        n_heldout=n_mdps,
        n_updates=n_updates,
        tabular=False,
        seed=seed,
    )
    control = run_control(cfg, None if out is None else Path(out) / "control")
    summary = []
    for name in VARIANTS:
        mine = [r for r in steps if r["algo"] == name]
        env = next(e for e in control["envs"] if e["algo"] == name)
        step, step_sem = _mean_sem([r["step_norm"] for r in mine])
        cos, cos_sem = _mean_sem([r["cosine"] for r in mine])
        summary.append(
            {
                "algo": name,
                "critic": constructions.ALGORITHMS[name].critic,
                "n_mdps": n_mdps,
                "step_norm_mean": step,
                "step_norm_sem": step_sem,
                "step_norm_max": max(r["step_norm"] for r in mine),
                "cosine_mean": cos,
                "cosine_sem": cos_sem,
                "updates": n_updates,
                "normalized_return": env["normalized_return"],
                "normalized_return_sem": env["normalized_return_sem"],
                "normalized_return_teacher": env["normalized_return_teacher"],
                "normalized_return_teacher_sem": env["normalized_return_teacher_sem"],
                "max_w_diff": env["max_w_diff"],
                "diverged": env.get("n_diverged"),
            }
        )
    config = {
        "n_mdps": n_mdps,
        "n_updates": n_updates,
        "seed": seed,
        "alpha": cfg.alpha,
        "beta": cfg.beta,
        "n": cfg.n,
    }
    doc = to_jsonable(
        {
            "rows": summary,
            "expected_steps": steps,
            "config": config,
            "provenance": provenance(config, seed),
            "versions": versions(),
            "wall_time": time.perf_counter() - start,
        }
    )
    if out is not None:
        atomic_write_json(Path(out) / "actor_critic_variants.json", doc)
    return doc

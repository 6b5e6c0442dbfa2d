r"""The (A6) experiment, measured: the state-value critic against the action-value critic.

Two measurements on the [LL] random family (|S| = 9, |A| = 4, gamma = 0.5, ``n_mdps`` held-out
MDPs with fresh features, docs/theory.md §3):

1. **The expected actor step at the critic's fixed point**, exactly (no sampling):
   :meth:`lsa_theory.constructions.algorithms.actor_critic.ActorCritic.expected_actor_step` for each variant,
   at a random actor ``lambda ~ U(-1, 1)^{d_pi}``: its norm ``|E[delta g]|`` and its cosine with
   the true policy gradient ``grad J(pi_lambda)``. With the action-value critic
   ``E[delta | s, a] = 0`` at the fixed point, so the step vanishes; with the state-value critic
   it is the advantage-weighted score.
2. **The closed loop (A5)** of both variants, the exact teacher and the frozen construction (A3),
   ``n_updates`` updates of ``n`` steps, alpha, beta as in
   :class:`lsa_theory.experiments.control.ControlConfig`,
   paired (same MDPs and seeds for both variants): the greedy normalised return.

Results: ``actor_critic_variants.json`` (+ the control run's files under ``control/``).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lsa_theory import TabularMDP, constructions
from lsa_theory.roundoff import gamma as gamma_k
from lsa_theory.roundoff import perturbed, sum_error_bound

from ..control import ControlConfig, run_control
from ..envs import HELDOUT_NAME, heldout_family, heldout_rng
from ..io import atomic_write_json, provenance, single_blas_thread, to_jsonable, versions
from ..stats import mean_sem_columns

__all__ = [
    "Config",
    "units",
    "run_unit",
    "run",
    "control_config",
    "Q_STEP_CEILING",
    "VARIANTS",
    "expected_steps",
    "run_variants",
    "step_quantities",
    "step_roundoff_bound",
]

#: The two registered critics compared by (A6).
VARIANTS = ("actor_critic", "actor_critic_q")


def step_quantities(alg, mdp: TabularMDP, phi, phi_pi, lam) -> np.ndarray:
    """``(|E[delta g]|, cosine with grad J)`` (2,) of ``alg.expected_actor_step`` (the two numbers
    of (A6) per MDP)."""
    out = alg.expected_actor_step(mdp, phi, phi_pi, lam)
    return np.array([np.linalg.norm(out["step"]), out["cosine"]])


#: Ceiling on the action-value critic's computed ``|E[delta g]|`` at S = 9, A = 4: zero exactly, its
#: value is the round-off of the (36, 36) fixed-point solve (largest measured 1.1e-11 here, 6.2e-12
#: with OpenBLAS's Haswell kernel); 1e-9 is 4e-9 of the state-value critic's step.
Q_STEP_CEILING = 1e-9

#: (A6) round-off model: relative size of the input perturbations that estimate the sensitivity,
#: how many of them, and the safety factor on top of sqrt(number of inputs) (see step_roundoff_bound).
SENSITIVITY_STEP, SENSITIVITY_COPIES, SENSITIVITY_SAFETY = 1e-7, 3, 3.0


def step_roundoff_bound(alg, mdp: TabularMDP, phi, phi_pi, lam, rng: np.random.Generator) -> np.ndarray:
    r"""Bound (2,) on the round-off of :func:`step_quantities` as computed, on any machine.

    Model: every dense step of ``expected_actor_step`` (the eigenvector of the (SA, SA) pair kernel,
    the critic's fixed-point least squares, the solve for ``d_gamma``, the products) is backward
    stable, so the computed value is the exact value at inputs moved by a relative
    ``eta = gamma_k`` with ``k = (SA)^2`` (Higham's normwise bounds for these algorithms are
    ``O(n u)`` to ``O(n^2 u)`` at size ``n = SA``; ``eta = 1.4e-13`` at S = 9, A = 4). To first
    order the error is at most ``kappa eta``, ``kappa`` the sensitivity to relative input
    perturbations of size one. ``kappa`` is estimated by ``SENSITIVITY_COPIES`` random
    perturbations (:func:`lsa_theory.roundoff.perturbed` of every float of ``P, r, mu0, phi,
    phi_pi, lam`` by relative ``h = SENSITIVITY_STEP``, ``P`` and ``mu0`` renormalised):
    ``kappa_hat = max |q(perturbed) - q| / h`` (the same to two digits for h = 1e-6 to 1e-8). A random
    direction typically sees about ``1 / sqrt(n_inputs)`` of the worst one; the bound is
    ``SENSITIVITY_SAFETY sqrt(n_inputs) kappa_hat eta`` plus the rounding of ``q`` itself
    (``gamma_k |q|``). It is a first-order statistical estimate (Kenney-Laub style) with a safety
    factor, not a rigorous bound: measured at the saved (A6) run, OpenBLAS's Haswell kernel moves the
    rows by at most 0.8 % of it and inputs moved by relative 1e-13 by at most 2.3 %. Meaningful for
    quantities that are not zero in exact arithmetic (the state-value critic's); the action-value
    critic's step is zero exactly and its computed value *is* round-off (``kappa_hat`` then measures
    nothing)."""
    S, A = mdp.n_states, mdp.n_actions
    eta = gamma_k((S * A) ** 2)
    q0 = step_quantities(alg, mdp, phi, phi_pi, lam)
    inputs = {"P": mdp.P, "r": mdp.r, "mu0": mdp.mu0, "phi": phi, "phi_pi": phi_pi, "lam": lam}
    n_inputs = sum(np.size(v) for v in inputs.values())
    kappa = np.zeros(2)
    for _ in range(SENSITIVITY_COPIES):
        x = perturbed(inputs, rng, rel=SENSITIVITY_STEP)
        m = TabularMDP(x["P"] / x["P"].sum(-1, keepdims=True), x["r"], mdp.gamma, x["mu0"] / x["mu0"].sum())
        q = step_quantities(alg, m, x["phi"], x["phi_pi"], x["lam"])
        kappa = np.maximum(kappa, np.abs(q - q0) / SENSITIVITY_STEP)
    return SENSITIVITY_SAFETY * np.sqrt(n_inputs) * kappa * eta + eta * np.abs(q0)


def expected_steps(n_mdps: int = 20, seed: int = 0, bounds: bool = True) -> list[dict]:
    """Per variant and held-out MDP ``j`` (the MDP of :func:`lsa_theory.experiments.envs.heldout_family`; its
    features and ``lambda`` from ``heldout_rng(seed, j, 3)``, a stream of their own): ``|E[delta g]|``,
    the cosine with ``grad J`` and ``max |delta|`` at the critic's fixed point; with ``bounds``, the
    state-value critic's rows also carry ``step_norm_roundoff`` and ``cosine_roundoff``
    (:func:`step_roundoff_bound`, perturbations from ``heldout_rng(seed, j, 4)``)."""
    rows, mdps = [], list(heldout_family(n_mdps, seed))
    for name in VARIANTS:
        alg = constructions.ALGORITHMS[name]
        dims = alg.dims(9, 4)
        for j, mdp in enumerate(mdps):
            rng = heldout_rng(seed, j, 3)
            phi, phi_pi = alg.draw_tables(9, 4, dims, rng)
            lam = rng.uniform(-1.0, 1.0, dims.d_pi)
            out = alg.expected_actor_step(mdp, phi, phi_pi, lam)
            row = {
                "algo": name,
                "mdp": j,
                "step_norm": float(np.linalg.norm(out["step"])),
                "policy_gradient_norm": float(np.linalg.norm(out["policy_gradient"])),
                "cosine": out["cosine"],
                "max_abs_delta": out["max_abs_delta"],
            }
            if bounds and alg.critic == "state":
                b = step_roundoff_bound(alg, mdp, phi, phi_pi, lam, heldout_rng(seed, j, 4))
                row |= {"step_norm_roundoff": float(b[0]), "cosine_roundoff": float(b[1])}
            rows.append(row)
    return rows


@dataclass(frozen=True)
class Config:
    """The (A6) measurements' configuration: ``n_mdps`` held-out MDPs, ``n_updates`` closed-loop
    updates, ``seed``. ``quick()`` is ``reproduce --quick``'s (5 MDPs, 300 updates)."""

    n_mdps: int = 20
    n_updates: int = 1000
    seed: int = 0

    @classmethod
    def quick(cls) -> Config:
        return cls(n_mdps=5, n_updates=300)

    @classmethod
    def full(cls) -> Config:
        return cls()


#: The units of an (A6) run: the exact expected steps, then the closed loop (a control run, which
#: keeps its own units in ``out/control``, :func:`lsa_theory.experiments.control.run_control`).
UNITS = ("expected_steps", "closed_loop")


def units(cfg: Config) -> list[str]:
    """The units of ``cfg``: :data:`UNITS`."""
    return list(UNITS)


def control_config(cfg: Config) -> ControlConfig:
    """The control run of the closed-loop unit: both variants on the held-out family, paired."""
    return dataclasses.replace(
        ControlConfig(),
        envs=(HELDOUT_NAME,),
        env_algos=(),
        actor_critic_envs=(HELDOUT_NAME,),
        actor_critic_algos=VARIANTS,
        n_heldout=cfg.n_mdps,
        n_updates=cfg.n_updates,
        tabular=False,
        seed=cfg.seed,
    )


def run_unit(cfg: Config, unit: str, out: str | Path | None = None):
    """The unit ``unit``: ``"expected_steps"`` (:func:`expected_steps`, every MDP's row) or
    ``"closed_loop"`` (the control document of :func:`control_config`, saved in ``out/control``)."""
    if unit == "expected_steps":
        return expected_steps(cfg.n_mdps, cfg.seed)
    if unit == "closed_loop":
        return run_control(control_config(cfg), None if out is None else Path(out) / "control")
    raise ValueError(f"unit: expected one of {UNITS}, got {unit!r}")


def run(cfg: Config, out: str | Path | None = None) -> dict:
    """Both (A6) measurements of ``cfg`` (:func:`run_variants`)."""
    return run_variants(out, n_mdps=cfg.n_mdps, n_updates=cfg.n_updates, seed=cfg.seed)


@single_blas_thread
def run_variants(
    out: str | Path | None = None, *, n_mdps: int = 20, n_updates: int = 1000, seed: int = 0
) -> dict:
    """Both (A6) measurements (module docstring). Each row of ``rows`` has the means, standard
    errors and maxima over the MDPs (``step_norm_*``, ``cosine_*``, ``max_abs_delta_max``), for
    the state-value critic the round-off bounds of the two means (``step_norm_mean_roundoff``,
    ``cosine_mean_roundoff``: the mean of the rows' :func:`step_roundoff_bound` plus the rounding
    of the sum), and the closed loop's returns; writes ``out/actor_critic_variants.json``
    with ``rows`` (one summary per variant), ``expected_steps`` (every MDP's row), ``config``,
    ``provenance`` (:func:`lsa_theory.experiments.io.provenance` of ``config``), ``versions`` and
    ``wall_time`` (s)."""
    start = time.perf_counter()
    face = Config(n_mdps=n_mdps, n_updates=n_updates, seed=seed)
    steps = run_unit(face, "expected_steps")
    cfg = control_config(face)
    control = run_unit(face, "closed_loop", out)
    summary = []
    for name in VARIANTS:
        mine = [r for r in steps if r["algo"] == name]
        env = next(e for e in control["envs"] if e["algo"] == name)
        step, step_sem = map(float, mean_sem_columns([r["step_norm"] for r in mine]))
        cos, cos_sem = map(float, mean_sem_columns([r["cosine"] for r in mine]))
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
                "max_abs_delta_max": max(r["max_abs_delta"] for r in mine),
            }
        )
        if all("step_norm_roundoff" in r for r in mine):  # the mean's bound: mean of the rows' + its sum
            for key in ("step_norm", "cosine"):
                x = [r[key] for r in mine]
                bound = np.mean([r[f"{key}_roundoff"] for r in mine]) + sum_error_bound(x) / len(x)
                summary[-1][f"{key}_mean_roundoff"] = float(bound)
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

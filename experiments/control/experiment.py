r"""The control experiment: a frozen LSA block deployed as an in-context controller, the closed
loops (S6) and (A5).

At deployment the weights ``(P, V)`` never change; each update of the loop is the block's readout
``TF_theta(H(z; w))`` of (L1) on the prompt (H) (or (A1)) built from the last ``n`` on-policy
transitions, and the epsilon-greedy policy on ``Q_w`` (the softmax actor ``pi_lambda`` for
actor-critic) improves because ``w`` does. Every ``eval_every`` updates the greedy policy
(``argmax_a w^T phi(s, a)``; for actor-critic ``argmax_a lambda^T phi_pi(s, a)``) is scored by the
normalised return of §0, ``(J(pi) - J(uniform)) / (J(pi*) - J(uniform))``, with one cached
:func:`lsa_theory.optimal` solution per MDP.

Results of :func:`run_control` go to ``control.json`` / ``control.npz`` in ``out``; each
(env, algo, seed) :class:`Unit` is kept by the unit store (:mod:`lsa_theory.experiments.store`)
and a rerun skips finished ones.
"""

from __future__ import annotations

import functools
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

import lsa_theory as lt
from lsa_theory import TabularMDP, constructions
from lsa_theory.checks import check_int, check_real
from lsa_theory.constructions import ClosedLoopAlgorithm, closed_loop_algorithm

from ..envs import HELDOUT_NAME, heldout_rng, make_env, parse_env_key
from ..io import (
    config_hash,
    file_sha256,
    progress,
    single_blas_thread,
    to_jsonable,
    versions,
)
from ..stats import mean_sem_columns
from ..store import UnitStore
from .deployment import deploy, tabular_sarsa
from .result import first_mismatch, max_w_diff
from .roundoff import block_teacher_check
from .weights import ALGOS, FORWARDS

__all__ = [
    "ENV_FIELDS",
    "ControlConfig",
    "Unit",
    "unit_key",
    "units",
    "run_unit",
    "run_control",
]

#: Seed offset of the deployment streams on a gymnasium environment: seed ``j`` uses
#: ``default_rng([seed, GYM_OFFSET + j, stream])`` (stream 1: block and teacher, 2: tabular SARSA).
GYM_OFFSET = 20_000


#: The keys every ``envs`` row of :func:`run_control` carries (the public JSON contract).
ENV_FIELDS = (
    "name",
    "algo",
    "weights",
    "updates",
    "normalized_return",
    "normalized_return_teacher",
    "n_seeds",
)


# --------------------------------------------------------------------------------------------------
# experiment driver
# --------------------------------------------------------------------------------------------------

#: Version of the per-unit record; units saved under another version are recomputed on resume.
UNIT_SCHEMA = 2

DEFAULT_ENVS = (
    HELDOUT_NAME,
    "FrozenLake-v1:is_slippery=False",
    "FrozenLake-v1:is_slippery=True",
    "CliffWalking-v1",
    "Taxi-v4",
)


@dataclass(frozen=True)
class ControlConfig:
    """Deployment experiment. ``envs``: :data:`lsa_theory.experiments.envs.HELDOUT_NAME` (``n_heldout`` MDPs,
    one seed each) and gymnasium keys (:func:`lsa_theory.experiments.envs.env_key`, ``n_seeds`` seeds each,
    discount ``gym_gamma``); every env runs the algorithms ``env_algos`` (default SARSA), those in
    ``actor_critic_envs`` also ``actor_critic_algos`` (default the state-value actor-critic; add
    ``"actor_critic_q"`` for the (A6) comparison); every name is a registered closed-loop
    algorithm, or one declared in the user's file ``module`` (a ``.py`` path, loaded with
    :func:`lsa_theory.constructions.load_module`; its names must not clash with registered ones).
    ``weights``: ``"constructed"`` (each algorithm's own construction, from its declaration) or a
    ``.npz`` path (see :func:`resolve_weights`). The default is the full configuration;
    ``quick()`` the small one."""

    envs: tuple[str, ...] = DEFAULT_ENVS
    actor_critic_envs: tuple[str, ...] = (HELDOUT_NAME,)
    env_algos: tuple[str, ...] = ("sarsa",)
    actor_critic_algos: tuple[str, ...] = ("actor_critic",)
    weights: str = "constructed"
    n: int = 20
    n_updates: int = 1000
    epsilon: float = 0.1
    alpha: float = 0.2
    beta: float = 0.1
    eval_every: int = 10
    n_heldout: int = 20
    n_seeds: int = 5
    gym_gamma: float = 0.9
    seed: int = 0
    forward: str = "auto"
    tabular: bool = True
    module: str | None = None

    def __post_init__(self) -> None:
        if self.module is not None:
            self.user_algorithms()  # a malformed file or a name clash: ValueError now
        for name in ("n", "n_updates", "eval_every", "n_heldout", "n_seeds"):
            check_int(getattr(self, name), name)
        check_int(self.seed, "seed", minimum=0)
        check_real(self.epsilon, "epsilon", low=0.0, high=1.0)
        check_real(self.alpha, "alpha", low=0.0, low_open=True)
        check_real(self.beta, "beta", low=0.0, low_open=True)
        check_real(self.gym_gamma, "gym_gamma", low=0.0, high=1.0, high_open=True)
        if not self.envs:
            raise ValueError("envs: need at least one environment")
        for key in self.envs:
            parse_env_key(key)
        for name in ("env_algos", "actor_critic_algos"):
            value = getattr(self, name)
            if not isinstance(value, tuple):
                raise ValueError(f"{name}: expected a tuple of algorithm names, got {value!r}")
            for a in value:
                self.algorithm(a)
        extra = set(self.actor_critic_envs) - set(self.envs)
        if extra:
            raise ValueError(f"actor_critic_envs: {sorted(extra)} are not in envs")
        if self.forward not in FORWARDS:
            raise ValueError(f"forward: expected one of {FORWARDS}, got {self.forward!r}")
        if not isinstance(self.weights, str) or self.weights == "teacher":
            raise ValueError(f"weights: expected 'constructed' or a .npz path, got {self.weights!r}")

    @classmethod
    def full(cls) -> ControlConfig:
        """The full run: the defaults above (every env of :data:`DEFAULT_ENVS`, Taxi included)."""
        return cls()

    @classmethod
    def quick(cls) -> ControlConfig:
        """5 held-out MDPs and 3 seeds per gymnasium env, 300 updates, no Taxi, SARSA only."""
        return cls(
            envs=DEFAULT_ENVS[:4],
            actor_critic_envs=(),
            n_updates=300,
            n_heldout=5,
            n_seeds=3,
        )

    def user_algorithms(self) -> dict[str, ClosedLoopAlgorithm]:
        """The closed-loop declarations of the user's file ``module`` by name (empty without one).
        ValueError naming ``module`` if the file cannot be loaded, declares no closed-loop algorithm,
        or declares a name that is already registered (a clash is refused, never shadowed)."""
        return dict(self._user_algorithms)

    @functools.cached_property
    def _user_algorithms(self) -> dict[str, ClosedLoopAlgorithm]:
        # the file is read and imported once per configuration, not once per unit
        return {} if self.module is None else constructions.load_closed_loop_module(self.module)

    @functools.cached_property
    def _module_sha256(self) -> str | None:
        return None if self.module is None else file_sha256(self.module)

    def algorithm(self, name: str) -> ClosedLoopAlgorithm:
        """The declaration named ``name``: the user's file's, else a registered closed-loop one."""
        user = self._user_algorithms
        return user[name] if isinstance(name, str) and name in user else closed_loop_algorithm(name)

    def unit_config(self, algo: str) -> dict:
        """What a unit's result depends on besides (env, seed) (resume key); with ``module``, also
        the file's sha256 (a changed declaration is recomputed)."""
        extra = {"module_sha256": self._module_sha256} if self.module is not None else {}
        return {
            **extra,
            "schema": UNIT_SCHEMA,
            "algo": algo,
            "weights": self.weights,
            "n": self.n,
            "n_updates": self.n_updates,
            "epsilon": self.epsilon,
            "alpha": self.alpha,
            "beta": self.beta if self.algorithm(algo).has_actor else None,
            "eval_every": self.eval_every,
            "gym_gamma": self.gym_gamma,
            "seed": self.seed,
            "forward": self.forward,
            "tabular": self.tabular,
        }


def unit_key(env: str, algo: str, seed: int) -> str:
    """Identifier of one (env, algo, seed) unit in ``control.json`` / ``control.npz``."""
    return f"{env}|{algo}|seed={seed}"


class Unit(NamedTuple):
    """One (env, algo, seed) unit of a control run; ``key`` (:func:`unit_key`) names it in
    ``control.json`` / ``control.npz``; ``seed`` is the seed index within the env."""

    key: str
    env: str
    algo: str
    seed: int


def units(cfg: ControlConfig) -> list[Unit]:
    """The units of ``cfg`` in run order: per env, its algorithms (``env_algos``, then
    ``actor_critic_algos`` on ``actor_critic_envs``), each over its seed indices (``n_heldout``
    held-out MDPs, else ``n_seeds``)."""
    out = []
    for env in cfg.envs:
        algos = list(cfg.env_algos) + (list(cfg.actor_critic_algos) if env in cfg.actor_critic_envs else [])
        count = cfg.n_heldout if env == HELDOUT_NAME else cfg.n_seeds
        out += [Unit(unit_key(env, algo, i), env, algo, i) for algo in algos for i in range(count)]
    return out


class _MDPCache:
    """MDPs and their ``optimal`` solutions, computed once per (env, seed index)."""

    def __init__(self, cfg: ControlConfig):
        self.cfg = cfg
        self._gym: dict[str, tuple[TabularMDP, lt.OptimalSolution]] = {}

    def get(
        self, env: str, i: int
    ) -> tuple[TabularMDP, lt.OptimalSolution, np.random.Generator, np.random.Generator]:
        cfg = self.cfg
        if env == HELDOUT_NAME:
            mdp = lt.random_mdp(9, 4, 0.5, heldout_rng(cfg.seed, i))
            return mdp, lt.optimal(mdp), heldout_rng(cfg.seed, i, 1), heldout_rng(cfg.seed, i, 2)
        if env not in self._gym:
            mdp = make_env(env, cfg.gym_gamma)
            self._gym[env] = (mdp, lt.optimal(mdp))
        mdp, sol = self._gym[env]
        return (
            mdp,
            sol,
            np.random.default_rng([cfg.seed, GYM_OFFSET + i, 1]),
            np.random.default_rng([cfg.seed, GYM_OFFSET + i, 2]),
        )


def run_unit(cfg: ControlConfig, unit: Unit, cache: _MDPCache | None = None) -> tuple[dict, dict]:
    """``(row, arrays)`` of one (env, algo, seed) :class:`Unit` of ``cfg``: the block, the teacher,
    tabular SARSA, uniform and optimal on the same MDP and streams. ``cache`` keeps the MDPs and
    their solutions across units (:func:`run_control` passes one; a sweep job runs a unit alone)."""
    cache = _MDPCache(cfg) if cache is None else cache
    env, algo, i = unit.env, unit.algo, unit.seed
    t0 = time.perf_counter()
    mdp, sol, rng_loop, rng_tab = cache.get(env, i)
    alg = cfg.algorithm(algo)
    unit_config = cfg.unit_config(algo)
    kw = dict(
        n=cfg.n,
        n_updates=cfg.n_updates,
        epsilon=cfg.epsilon,
        alpha=cfg.alpha,
        eval_every=cfg.eval_every,
        algo=alg,
        beta=unit_config["beta"],
        solution=sol,
    )
    state = rng_loop.bit_generator.state
    bounds = cfg.weights == "constructed" and alg.error_model_is_current()
    block = deploy(mdp, cfg.weights, rng=rng_loop, forward=cfg.forward, error_bounds=bounds, **kw)
    rng_loop.bit_generator.state = state
    teacher = deploy(mdp, "teacher", rng=rng_loop, error_bounds=bounds, **kw)
    tab = None
    if cfg.tabular:
        tab = tabular_sarsa(
            mdp,
            n=cfg.n,
            n_updates=cfg.n_updates,
            epsilon=cfg.epsilon,
            alpha=cfg.alpha,
            rng=rng_tab,
            eval_every=cfg.eval_every,
            solution=sol,
        )
    mismatch = first_mismatch(block, teacher)
    row = {
        "key": unit_key(env, algo, i),
        "env": env,
        "algo": algo,
        "seed": i,
        "unit_config": unit_config,
        "forward": block.forward,
        "normalized_return": block.normalized_return[-1],
        "normalized_return_teacher": teacher.normalized_return[-1],
        "normalized_return_tabular": tab.normalized_return[-1] if tab is not None else None,
        "normalized_return_uniform": lt.normalized_return(mdp, lt.uniform_policy(mdp), sol),
        "normalized_return_optimal": lt.normalized_return(mdp, sol.pi, sol),
        "max_w_diff": max_w_diff(block, teacher),
        "max_w_rel_diff": max_w_diff(block, teacher, relative=True),
        "max_w_diff_before_mismatch": max_w_diff(block, teacher, mismatch),
        "max_w_rel_diff_before_mismatch": max_w_diff(block, teacher, mismatch, relative=True),
        "max_abs_w": float(np.nanmax(np.abs(teacher.ws))),
        "first_trajectory_mismatch": mismatch,
        "diverged_at": block.diverged_at,
        "diverged_at_teacher": teacher.diverged_at,
        "resets": block.resets,
    }
    if bounds:
        row.update(block_teacher_check(block, teacher))
    row["wall_time"] = time.perf_counter() - t0
    arrays = {
        "updates": block.updates,
        "block": block.normalized_return,
        "teacher": teacher.normalized_return,
        "block_behaviour": block.normalized_return_behaviour,
    }
    if tab is not None:
        arrays["tabular"] = tab.normalized_return
    return row, arrays


def _nanmean(x: np.ndarray) -> float | None:
    """Mean over the seeds whose loop did not diverge (``None`` if all diverged)."""
    x = np.asarray(x, dtype=np.float64)
    return float(x[np.isfinite(x)].mean()) if np.isfinite(x).any() else None


def _summaries(cfg: ControlConfig, units: list[dict], arrays: dict[str, np.ndarray]) -> list[dict]:
    out = []
    names = list(ALGOS) + list(cfg.user_algorithms())  # registration order, then the user's file
    for env in cfg.envs:
        for algo in names:
            rows = [u for u in units if u["env"] == env and u["algo"] == algo]
            if not rows:
                continue
            curves = {}
            for name in ("block", "teacher", "tabular", "block_behaviour"):
                keys = [f"{u['key']}/{name}" for u in rows]
                if all(k in arrays for k in keys):
                    curves[name] = np.stack([arrays[k] for k in keys])
            updates = arrays[f"{rows[0]['key']}/updates"]
            final = {name: c[:, -1] for name, c in curves.items()}
            mismatches = [u["first_trajectory_mismatch"] for u in rows if u["first_trajectory_mismatch"]]
            row = {
                "name": env,
                "algo": algo,
                "weights": cfg.weights,
                "updates": cfg.n_updates,
                "normalized_return": float(np.mean(final["block"])),
                "normalized_return_teacher": float(np.mean(final["teacher"])),
                "n_seeds": len(rows),
                "normalized_return_sem": float(mean_sem_columns(final["block"][:, None])[1][0]),
                "normalized_return_teacher_sem": float(mean_sem_columns(final["teacher"][:, None])[1][0]),
                "normalized_return_nanmean": _nanmean(final["block"]),
                "normalized_return_teacher_nanmean": _nanmean(final["teacher"]),
                "normalized_return_std": float(np.std(final["block"], ddof=1)) if len(rows) > 1 else 0.0,
                "normalized_return_tabular": (
                    float(np.mean(final["tabular"])) if "tabular" in final else None
                ),
                "normalized_return_tabular_sem": (
                    float(mean_sem_columns(final["tabular"][:, None])[1][0]) if "tabular" in final else None
                ),
                "normalized_return_uniform": float(np.mean([u["normalized_return_uniform"] for u in rows])),
                "normalized_return_optimal": float(np.mean([u["normalized_return_optimal"] for u in rows])),
                "max_w_diff": max(u["max_w_diff"] for u in rows),
                "max_w_rel_diff": max(u["max_w_rel_diff"] for u in rows),
                "max_w_diff_before_mismatch": max(u["max_w_diff_before_mismatch"] for u in rows),
                "max_w_rel_diff_before_mismatch": max(u["max_w_rel_diff_before_mismatch"] for u in rows),
                "max_abs_w": max(u["max_abs_w"] for u in rows),
                "n_trajectory_mismatch": len(mismatches),
                "first_trajectory_mismatch": min(mismatches) if mismatches else None,
                "n_diverged": sum(u["diverged_at"] is not None for u in rows),
                "n_diverged_teacher": sum(u["diverged_at_teacher"] is not None for u in rows),
                "env_steps": cfg.n * cfg.n_updates,
                **_check_summary(rows),
                "curves": {"updates": updates}
                | {f"{k}_mean": mean_sem_columns(v)[0] for k, v in curves.items()}
                | {f"{k}_sem": mean_sem_columns(v)[1] for k, v in curves.items()},
            }
            out.append(row)
    return out


def _min_or_none(values) -> int | None:
    values = [v for v in values if v is not None]
    return min(values) if values else None


def _check_summary(rows: list[dict]) -> dict:
    """The env row's keys of :func:`lsa_theory.experiments.control.block_teacher_check` over its units
    (empty for weights without the identity)."""
    if not rows or "block_equals_teacher" not in rows[0]:
        return {}
    return {
        "block_equals_teacher": all(u["block_equals_teacher"] for u in rows),
        "n_block_teacher_failed": sum(not u["block_equals_teacher"] for u in rows),
        "identity_max_ratio": max(u["identity_max_ratio"] for u in rows),
        "max_w_diff_over_tol": max(u["max_w_diff_over_tol"] for u in rows),
        "first_flip_at": _min_or_none(u["first_flip_at"] for u in rows),
        "flip_possible_at": _min_or_none(u["flip_possible_at"] for u in rows),
        "equality_unresolvable_at": _min_or_none(u["equality_unresolvable_at"] for u in rows),
        "teacher_diverged": any(u["teacher_diverged"] for u in rows),
        "n_teacher_diverged": sum(u["teacher_diverged"] for u in rows),
        "teacher_diverged_at": _min_or_none(u["teacher_diverged_at"] for u in rows),
    }


def _config_doc(cfg: ControlConfig) -> dict:
    return to_jsonable(asdict(cfg))


@single_blas_thread
def run_control(cfg: ControlConfig, out: str | Path | None = None) -> dict:
    """Deploy ``cfg.weights`` on every (env, algo, seed) unit of ``cfg`` with its baselines.

    Returns ``{"config", "versions", "envs": [...], "units": [...]}``. Each ``envs`` row has
    ``name`` (the env key; the held-out family is ``"random-S9-A4"``), ``algo``, ``weights``,
    ``updates`` (``n_updates``), ``normalized_return`` (mean over seeds at the final update,
    greedy policy of the deployed block; ``None`` if a seed's loop diverged, see
    ``normalized_return_nanmean`` and ``n_diverged``), ``normalized_return_teacher`` (same for the
    exact teacher on the same seeds), ``n_seeds``, plus standard errors, the tabular-SARSA, uniform and
    optimal baselines, ``max_w_diff`` (largest ``|w_block - w_teacher|`` over the loops),
    trajectory mismatches, divergences and mean learning ``curves``. With ``out``, writes
    ``control.json`` and ``control.npz`` (per-unit curves ``"{key}/{name}"``) atomically after
    every unit; a rerun skips units already saved with the same unit configuration.
    """
    if not isinstance(cfg, ControlConfig):
        raise ValueError(f"cfg: expected a ControlConfig, got {type(cfg).__name__}")
    out = Path(out) if out is not None else None
    todo = units(cfg)
    unit_configs = {u.key: to_jsonable(cfg.unit_config(u.algo)) for u in todo}

    def render(store: UnitStore) -> dict:
        return _doc(cfg, [store.records[u.key] for u in todo if u.key in store], store.arrays)

    store = UnitStore(
        out, "control.json", config=unit_configs.get, arrays="control.npz", label="control",
        saved_units=_saved_units, render=render,
    )  # fmt: skip
    cache = _MDPCache(cfg)
    for unit in progress(todo, desc="control"):
        if unit.key not in store:
            store.put(unit.key, *run_unit(cfg, unit, cache))
    return to_jsonable(store.save())


def _saved_units(doc: dict):
    """The units of a saved ``control.json``, each with the hash of its ``unit_config``."""
    for u in doc.get("units", []) if isinstance(doc, dict) else []:
        if isinstance(u, dict) and "key" in u:
            yield u["key"], u, config_hash(u.get("unit_config"))


def _doc(cfg: ControlConfig, units: list[dict], arrays: dict) -> dict:
    return {
        "config": _config_doc(cfg),
        "versions": versions(),
        "envs": _summaries(cfg, units, arrays),
        "units": units,
    }

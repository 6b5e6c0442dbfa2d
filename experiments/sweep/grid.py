"""The grid of ``lsa-theory sweep`` (:mod:`lsa_theory.experiments.sweep`): the config file, its parameters per
kind, the job count, expansion and hashing.

**Config** (TOML, read with :mod:`tomllib`)::

    [sweep]
    kind = "control"          # "converge" | "diversity" | "control"
    out = "results/sweep"     # default output directory (``--out`` overrides)

    [grid]                    # parameter name -> list of values; jobs = Cartesian product
    seed = [0, 1, 2]
    n_updates = [20, 50]

In Python the same configuration is a :class:`SweepConfig` (:meth:`SweepConfig.from_file`).
Parameters not named in ``[grid]`` take the defaults of :data:`PARAMS`. Per kind:

- ``converge`` (one gradient flow, :func:`lsa_theory.experiments.converge.run_unit`): ``algo`` ("sarsa" |
  "actor_critic"), ``seed`` (teacher data ``default_rng(seed)`` and the perturbation), ``c``
  (scale of the construction, non-zero), ``radius`` (relative size of the perturbation), ``S``,
  ``A``, ``k`` (training MDPs), ``frames`` (frames per MDP). Metrics: ``loss0``, ``loss_final``,
  ``dist_final``, ``rate_fit``, ``rate_pred``, ``rate_ratio``, ``rate_ratio_a_priori``,
  ``pl_min_ratio``, ``conserved_drift``, ``c_pred``,
  ``c_final``, ``ker_dim``, ``tangent_dim``, ``rich``, ``scaling_only``, ``converged``, ...
- ``diversity`` (one row, :func:`lsa_theory.experiments.diversity.run_unit`): ``k``, ``features`` ("uniform" |
  "onehot" | ...), ``shared_features`` (bool), ``reward`` ("sa" | "sas"), ``frames``, ``seed``,
  and ``index`` (row index of the random streams ``default_rng([seed, index, ...])``; 0 by default).
  Metrics: ``ker_dim`` (certified; None when undecided), ``kernel_certified``, ``tangent_dim``,
  ``morse_bott``, ``scaling_only``, ``lambda_min_plus``,
  ``heldout_err``, ``dist_final``, ...
- ``control`` (one deployment unit, :func:`lsa_theory.experiments.control.run_unit`): ``env`` (env key, e.g.
  "random-S9-A4" or "FrozenLake-v1:is_slippery=False"), ``algo``, ``seed`` (the unit index: the
  held-out MDP index for "random-S9-A4", the seed index for gymnasium envs; family seed 0),
  ``n`` (context length), ``n_updates``, ``weights`` ("constructed" or an ``.npz`` path),
  ``alpha``, ``epsilon``, ``tabular`` (bool). Metrics: ``normalized_return`` (block),
  ``normalized_return_teacher``, ``normalized_return_tabular``, ``max_w_diff``, ...

Wall times are kept out of the metrics (they are in each job file as ``seconds``), so the metrics
of a job are a deterministic function of (kind, params).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import math
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..io import to_jsonable

KINDS = ("converge", "diversity", "control")

#: Parameters accepted by each kind: name -> (type, default). ``float`` parameters accept ints.
PARAMS: dict[str, dict[str, tuple[type, Any]]] = {
    "converge": {
        "algo": (str, "sarsa"),
        "seed": (int, 0),
        "c": (float, 1.0),
        "radius": (float, 1e-2),
        "S": (int, 2),
        "A": (int, 2),
        "k": (int, 20),
        "frames": (int, 10),
    },
    "diversity": {
        "k": (int, 20),
        "features": (str, "uniform"),
        "shared_features": (bool, False),
        "reward": (str, "sa"),
        "frames": (int, 10),
        "seed": (int, 0),
        "index": (int, 0),
    },
    "control": {
        "env": (str, "random-S9-A4"),
        "algo": (str, "sarsa"),
        "seed": (int, 0),
        "n": (int, 20),
        "n_updates": (int, 300),
        "weights": (str, "constructed"),
        "alpha": (float, 0.2),
        "epsilon": (float, 0.1),
        "tabular": (bool, True),
    },
}


#: Largest ``radius`` of a converge job: the start's (M3) quantity is ``~ (radius ||theta*||)^2`` and
#: :func:`lsa_theory.dynamics.distance_to_manifold` solves a quartic in ``c`` built from it, which overflows
#: float64 from ``radius ~ 1e77`` (measured: ``c`` is NaN at 1e78 for the default job, finite at 1e60).
RADIUS_MAX = 1e50


def _package_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("lsa-theory")
    except metadata.PackageNotFoundError:  # pragma: no cover - always installed in practice
        return "unknown"


def _coerce(kind: str, name: str, value: Any) -> Any:
    """``value`` of parameter ``name`` as its declared type (ints accepted for floats)."""
    typ = PARAMS[kind][name][0]
    if typ is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if typ is int and isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    if typ in (str, bool) and type(value) is typ:
        return value
    raise ValueError(f"grid.{name}: expected {typ.__name__} values for kind {kind!r}, got {value!r}")


def _check_kind(kind: Any) -> str:
    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
    return kind


def _check_grid(kind: str, grid: Any) -> dict[str, list]:
    """Validated grid: known parameter names, non-empty lists of values of the right type."""
    if not isinstance(grid, dict) or not grid:
        raise ValueError("grid: expected a non-empty table of parameter -> list of values")
    out = {}
    for name, values in grid.items():
        if name not in PARAMS[kind]:
            raise ValueError(
                f"grid.{name}: unknown parameter for kind {kind!r}; expected one of {sorted(PARAMS[kind])}"
            )
        if not isinstance(values, list) or not values:
            raise ValueError(f"grid.{name}: expected a non-empty list of values, got {values!r}")
        out[name] = [_coerce(kind, name, v) for v in values]
    return out


def load_config(path: str | Path) -> dict:
    """Read a sweep TOML file: ``{"kind", "out", "grid"}`` validated (ValueError naming the field)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config: no such file {str(path)!r}")
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"config: {path} is not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ValueError(f"config: {path} is not UTF-8 text (TOML must be): {exc}") from None
    except OSError as exc:
        raise ValueError(f"config: cannot read {path} ({exc.strerror})") from None
    extra = set(doc) - {"sweep", "grid"}
    if extra:
        raise ValueError(f"config: unknown tables {sorted(extra)}; expected [sweep] and [grid]")
    sweep = doc.get("sweep")
    if not isinstance(sweep, dict):
        raise ValueError("sweep: missing [sweep] table with 'kind'")
    extra = set(sweep) - {"kind", "out"}
    if extra:
        raise ValueError(f"sweep: unknown keys {sorted(extra)}; expected 'kind' and 'out'")
    kind = _check_kind(sweep.get("kind"))
    out = sweep.get("out", "results/sweep")
    if not isinstance(out, str) or not out:
        raise ValueError(f"sweep.out: expected a directory name, got {out!r}")
    if "grid" not in doc:
        raise ValueError("grid: missing [grid] table")
    return {"kind": kind, "out": out, "grid": _check_grid(kind, doc["grid"])}


#: The grid of ``examples/sweep.toml`` (the README's ``lsa-theory sweep examples/sweep.toml``): 10
#: held-out MDPs x 2 context lengths x 2 run lengths = 40 control jobs; :meth:`SweepConfig.full`.
EXAMPLE_GRID: tuple[tuple[str, tuple[Any, ...]], ...] = (
    ("env", ("random-S9-A4",)),
    ("seed", tuple(range(10))),
    ("n", (10, 20)),
    ("n_updates", (100, 300)),
)


@dataclass(frozen=True)
class SweepConfig:
    """A sweep's configuration, as its TOML file (:func:`load_config`) states it: ``kind`` (one of
    :data:`KINDS`), ``grid`` (parameter -> values, kept as ``((name, (value, ...)), ...)`` in the
    file's order; the jobs are their Cartesian product, last name fastest, the other parameters at
    the defaults of :data:`PARAMS`) and ``out`` (the default output directory). A mapping is
    accepted for ``grid``; values are checked and coerced as the file's are (ValueError naming
    ``grid.<name>``).

    A sweep has no quick and full runs of its own (the command runs the file it is given):
    :meth:`full` is the example grid ``examples/sweep.toml`` (:data:`EXAMPLE_GRID`, 40 control
    jobs) and :meth:`quick` its first two held-out MDPs and shorter run (4 jobs)."""

    kind: str
    grid: tuple[tuple[str, tuple[Any, ...]], ...]
    out: str = "results/sweep"

    def __post_init__(self) -> None:
        kind = _check_kind(self.kind)
        pairs = list(self.grid.items()) if isinstance(self.grid, Mapping) else self.grid
        if not isinstance(pairs, list | tuple) or not all(
            isinstance(pair, list | tuple) and len(pair) == 2 and isinstance(pair[0], str) for pair in pairs
        ):
            raise ValueError(f"grid: expected (name, values) pairs or a table, got {self.grid!r}")
        names = [name for name, _ in pairs]
        if len(set(names)) != len(names):
            raise ValueError(f"grid: a parameter named twice in {names}")
        checked = _check_grid(kind, {name: list(v) if isinstance(v, tuple) else v for name, v in pairs})
        if not isinstance(self.out, str) or not self.out:
            raise ValueError(f"out: expected a directory name, got {self.out!r}")
        object.__setattr__(self, "grid", tuple((name, tuple(v)) for name, v in checked.items()))

    def as_dict(self) -> dict:
        """``{"kind", "out", "grid": {name: [values]}}``: what :func:`load_config` returns."""
        return {"kind": self.kind, "out": self.out, "grid": {name: list(v) for name, v in self.grid}}

    @classmethod
    def from_file(cls, path: str | Path) -> SweepConfig:
        """The configuration of a sweep TOML file (:func:`load_config`)."""
        return cls(**load_config(path))

    @classmethod
    def full(cls) -> SweepConfig:
        """The example grid, ``examples/sweep.toml``: 40 control jobs into ``results/sweep-control``."""
        return cls(kind="control", grid=EXAMPLE_GRID, out="results/sweep-control")

    @classmethod
    def quick(cls) -> SweepConfig:
        """The example grid cut to held-out MDPs 0 and 1 and 100 updates: 4 control jobs."""
        grid = dict(EXAMPLE_GRID) | {"seed": (0, 1), "n_updates": (100,)}
        return cls(kind="control", grid=tuple(grid.items()), out="results/sweep-control-quick")


def _control_config(p: dict):
    from ..control import ControlConfig

    return ControlConfig(
        envs=(p["env"],),
        actor_critic_envs=(),
        env_algos=(p["algo"],),
        weights=p["weights"],
        n=p["n"],
        n_updates=p["n_updates"],
        alpha=p["alpha"],
        epsilon=p["epsilon"],
        tabular=p["tabular"],
    )


def _validate_params(kind: str, p: dict) -> None:
    """Build the configuration objects of one job (cheap) so that bad values fail before running.

    The configuration objects do not depend on ``seed`` and ``index`` (checked here directly), so
    the rest is validated once per distinct combination (:func:`_validate_config`)."""
    if p["seed"] < 0:
        raise ValueError(f"grid.seed: must be >= 0, got {p['seed']}")
    if kind == "diversity" and p["index"] < 0:
        raise ValueError(f"grid.index: must be >= 0, got {p['index']}")
    if kind == "converge":  # the start theta*(c) + radius ||theta*(c)|| z: finite (issue 24, item 9)
        if not (math.isfinite(p["radius"]) and 0 <= p["radius"] <= RADIUS_MAX):
            raise ValueError(f"grid.radius: must be in [0, {RADIUS_MAX:g}], got {p['radius']}")
        if not math.isfinite(p["c"]):  # c = 0: ConvergeConfig's "scales: c must be non-zero"
            raise ValueError(f"grid.c: must be finite, got {p['c']}")
    rest = tuple(sorted((k, v) for k, v in p.items() if k not in ("seed", "index")))
    _validate_config(kind, rest)


@functools.lru_cache(maxsize=4096)
def _validate_config(kind: str, rest: tuple) -> None:
    p = {**dict(rest), "seed": 0, "index": 0}
    if kind == "converge":
        from ..converge import ConvergeConfig

        ConvergeConfig(
            algo=p["algo"], S=p["S"], A=p["A"], k=p["k"], frames=p["frames"], seeds=(p["seed"],),
            scales=(p["c"],), radii=(p["radius"],),
        )  # fmt: skip
    elif kind == "diversity":
        from lsa_theory import dynamics as dy

        dy.TeacherSpec(
            k=p["k"], frames=p["frames"], features=p["features"], shared_features=p["shared_features"],
            reward=p["reward"],
        )  # fmt: skip
    else:
        _control_config(p)
        _check_env(p["env"])
        if p["weights"] != "constructed":
            _check_weights_file(p["weights"])


@functools.lru_cache(maxsize=256)
def _check_env(key: str) -> None:
    """ValueError naming ``grid.env`` unless ``key`` is the held-out family or a gymnasium
    environment that builds (:func:`lsa_theory.experiments.envs.make_env`, once per key)."""
    from ..envs import HELDOUT_NAME, make_env

    if key == HELDOUT_NAME:
        return
    try:
        make_env(key)
    except Exception as exc:  # gymnasium's NameNotFound, bad keyword arguments, ...
        raise ValueError(
            f"grid.env: {key!r} is not {HELDOUT_NAME!r} or a gymnasium environment that builds "
            f"({type(exc).__name__}: {' '.join(str(exc).split())})"
        ) from None


def _check_weights_file(path: str) -> None:
    """ValueError naming ``grid.weights`` unless ``path`` is an ``.npz`` file with arrays P and V."""
    from ..io import check_npz_arrays

    check_npz_arrays(path, "grid.weights")


def count_jobs(kind: str, grid: dict[str, list]) -> int:
    """Number of jobs of ``grid``: the product of its axis lengths, known before any expansion."""
    return math.prod(len(v) for v in _check_grid(_check_kind(kind), grid).values())


def iter_grid(kind: str, grid: dict[str, list]) -> Iterator[dict]:
    """The jobs of :func:`expand_grid` one at a time (lazily): a job is built and validated only
    when it is reached, so the first ``m`` jobs of a huge grid cost ``O(m)``."""
    kind = _check_kind(kind)
    grid = _check_grid(kind, grid)
    defaults = {name: default for name, (_, default) in PARAMS[kind].items()}
    names = list(grid)
    for values in itertools.product(*(grid[n] for n in names)):
        params = {**defaults, **dict(zip(names, values, strict=True))}
        _validate_params(kind, params)
        yield params


def expand_grid(kind: str, grid: dict[str, list]) -> list[dict]:
    """Cartesian product of ``grid`` (last key fastest), each point completed with the defaults
    of :data:`PARAMS` and coerced to the declared types; every job's values are validated."""
    return list(iter_grid(kind, grid))


def job_hash(kind: str, params: dict, version: str | None = None) -> str:
    """sha256 (hex) of the canonical JSON (sorted keys, no spaces) of ``{"kind", "params",
    "version"}``; ``version`` defaults to the installed ``lsa-theory`` version. Independent of
    the order of ``params``."""
    doc = {"kind": kind, "params": params, "version": _package_version() if version is None else version}
    text = json.dumps(to_jsonable(doc), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()

r"""``lsa-theory sweep CONFIG.toml``: a grid of converge / diversity / control jobs, resumable: the
face of the sweep.

Face: :data:`Config` (:class:`SweepConfig`, frozen: ``kind``, ``grid``, ``out``, as the TOML file
states them, :meth:`SweepConfig.from_file`; ``quick()`` and ``full()`` are cuts of the example grid
``examples/sweep.toml``, since a sweep has no runs of its own), :func:`units` (one :class:`Job` per
grid point, named by :func:`job_hash`), :func:`run_unit` (one job, through the face of its
experiment: ``converge``, ``diversity``, ``control``) and :func:`run` (:func:`run_sweep`:
``OUT/jobs/<hash>.json`` per job and ``OUT/sweep.json``, resumed by job). No :func:`plot`: a sweep
draws no figure (``sweep.json`` is a table of its jobs' metrics).

Files: ``grid.py`` (the configuration: the TOML file, the parameters per kind, the job count,
expansion and hashing), ``jobs.py`` (the units, one job, the executors), ``driver.py``
(:func:`run_sweep`), ``command.py`` (the command line, also ``python -m
lsa_theory.experiments.sweep``: ``__main__.py``).
"""

from __future__ import annotations

from .command import add_parser, main, main_sweep
from .driver import EXECUTORS, MAX_JOBS, PROGRESS_EVERY, run_sweep
from .grid import (
    EXAMPLE_GRID,
    KINDS,
    PARAMS,
    SweepConfig,
    count_jobs,
    expand_grid,
    iter_grid,
    job_hash,
    load_config,
)
from .jobs import Job, check_dask, run_job, run_unit, units

__all__ = [
    "Config",
    "units",
    "run_unit",
    "run",
    "SweepConfig",
    "Job",
    "KINDS",
    "EXECUTORS",
    "PARAMS",
    "EXAMPLE_GRID",
    "MAX_JOBS",
    "PROGRESS_EVERY",
    "load_config",
    "count_jobs",
    "iter_grid",
    "expand_grid",
    "job_hash",
    "run_job",
    "check_dask",
    "run_sweep",
    "add_parser",
    "main_sweep",
    "main",
]

#: The face of the sweep: its configuration and run (no figure).
Config = SweepConfig
run = run_sweep

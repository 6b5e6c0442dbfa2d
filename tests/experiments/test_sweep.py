"""``lsa_theory.experiments.sweep``: grid expansion, hashing, resumption, failures and executor agreement."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lsa_theory.experiments.io import read_json
from lsa_theory.experiments.sweep import (
    PARAMS,
    add_parser,
    expand_grid,
    job_hash,
    load_config,
    main_sweep,
    run_sweep,
)

#: Fast control jobs (random-S9-A4, 20 updates: ~20 ms each).
CONTROL_GRID = {"seed": [0, 1, 2, 3], "n": [10, 20], "n_updates": [20]}


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _mtimes(out: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (out / "jobs").glob("*.json")}


def test_expand_grid_order_defaults_and_types():
    jobs = expand_grid("converge", {"seed": [0, 1], "c": [1, -2], "radius": [0.01]})
    assert [(j["seed"], j["c"]) for j in jobs] == [(0, 1.0), (0, -2.0), (1, 1.0), (1, -2.0)]
    assert all(set(j) == set(PARAMS["converge"]) for j in jobs)
    assert all(isinstance(j["c"], float) and j["algo"] == "sarsa" and j["S"] == 2 for j in jobs)
    assert len(expand_grid("control", CONTROL_GRID)) == 8
    assert expand_grid("diversity", {"k": [1]})[0]["frames"] == 10


def test_job_hash_stable_and_order_independent():
    p = expand_grid("converge", {"seed": [3]})[0]
    reordered = dict(reversed(list(p.items())))
    assert list(reordered) != list(p)
    h = job_hash("converge", p, "0.1.0")
    assert h == job_hash("converge", reordered, "0.1.0")
    assert len(h) == 64 and int(h, 16) >= 0
    assert h == job_hash("converge", json.loads(json.dumps(p)), "0.1.0")
    # int and float spellings of the same grid point give the same job
    assert expand_grid("converge", {"c": [1]}) == expand_grid("converge", {"c": [1.0]})
    assert h != job_hash("converge", {**p, "seed": 4}, "0.1.0")
    assert h != job_hash("converge", p, "0.2.0")
    assert h != job_hash("diversity", p, "0.1.0")


def test_job_hash_known_value():
    """The hash is a fixed function of the canonical JSON (guards against accidental changes)."""
    import hashlib

    p = {"b": 1, "a": [1.5, "x", True]}
    text = '{"kind":"control","params":{"a":[1.5,"x",true],"b":1},"version":"9"}'
    assert job_hash("control", p, "9") == hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('[sweep]\nkind = "nope"\n[grid]\nseed = [0]\n', "kind"),
        ('[sweep]\nkind = "control"\n[grid]\nbogus = [0]\n', "grid.bogus"),
        ('[sweep]\nkind = "control"\n[grid]\n', "grid"),
        ('[sweep]\nkind = "control"\n', "grid"),
        ('[sweep]\nkind = "control"\n[grid]\nseed = []\n', "grid.seed"),
        ('[sweep]\nkind = "control"\n[grid]\nseed = 3\n', "grid.seed"),
        ('[sweep]\nkind = "control"\n[grid]\nseed = ["a"]\n', "grid.seed"),
        ('[sweep]\nkind = "converge"\n[grid]\nc = [0]\n', "scales"),
        ('[sweep]\nkind = "converge"\n[grid]\nalgo = ["td"]\n', "algorithm"),
        ('[sweep]\nkind = "control"\nworkers = 3\n[grid]\nseed = [0]\n', "sweep"),
        ("[grid]\nseed = [0]\n", "sweep"),
        ('[sweep]\nkind = "control"\n[grid]\nseed = [0]\n[extra]\nx = 1\n', "config"),
    ],
)
def test_bad_config_names_field(tmp_path, text, field):
    path = _write(tmp_path / "bad.toml", text)
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        run_sweep(path, tmp_path / "out", executor="serial")
    assert not (tmp_path / "out").exists()


def test_bad_arguments(tmp_path):
    cfg = {"kind": "control", "grid": CONTROL_GRID}
    with pytest.raises(ValueError, match="executor"):
        run_sweep(cfg, tmp_path, executor="threads")
    with pytest.raises(ValueError, match="workers"):
        run_sweep(cfg, tmp_path, workers=0)
    with pytest.raises(ValueError, match="limit"):
        run_sweep(cfg, tmp_path, limit=-1)
    with pytest.raises(ValueError, match="address"):
        run_sweep(cfg, tmp_path, executor="local", address="tcp://x:1")
    with pytest.raises(ValueError, match="config"):
        load_config(tmp_path / "missing.toml")


@pytest.mark.slow  # about 10-30 s of CPU: kept out of the 5-minute default suite
def test_local_and_dask_identical_and_rerun_skips(tmp_path):
    cfg = {"kind": "control", "grid": CONTROL_GRID}
    local = run_sweep(cfg, tmp_path / "local", executor="local", workers=2)
    assert (local["n_jobs"], local["n_done"], local["n_computed"]) == (8, 8, 8)
    assert read_json(tmp_path / "local" / "sweep.json")["jobs"] == local["jobs"]
    serial = run_sweep(cfg, tmp_path / "serial", executor="serial")
    assert serial["jobs"] == local["jobs"]
    pytest.importorskip("dask.distributed")
    dask = run_sweep(cfg, tmp_path / "dask", executor="dask", workers=2)
    assert dask["jobs"] == local["jobs"]
    assert (
        read_json(tmp_path / "dask" / "sweep.json")["jobs"]
        == read_json(tmp_path / "local" / "sweep.json")["jobs"]
    )
    # a rerun recomputes nothing: counts and file mtimes
    before = _mtimes(tmp_path / "local")
    again = run_sweep(cfg, tmp_path / "local", executor="local", workers=2)
    assert (again["n_computed"], again["n_skipped"]) == (0, 8)
    assert _mtimes(tmp_path / "local") == before
    assert again["jobs"] == local["jobs"]


@pytest.mark.slow  # about 10-30 s of CPU: kept out of the 5-minute default suite
def test_converge_jobs_local_match_serial(tmp_path):
    cfg = {"kind": "converge", "grid": {"c": [1, -2], "radius": [1e-2]}}
    a = run_sweep(cfg, tmp_path / "a", executor="local", workers=2)
    b = run_sweep(cfg, tmp_path / "b", executor="serial")
    assert a["jobs"] == b["jobs"]
    for row in a["jobs"]:
        r = row["result"]
        assert r["converged"] and r["dist_final"] < 1e-8 and abs(r["rate_ratio"] - 1) < 0.1
        assert abs(r["c_final"] / r["c_pred"] - 1) < 1e-6 and "wall_time" not in r


def test_diversity_job_runs(tmp_path):
    doc = run_sweep({"kind": "diversity", "grid": {"k": [20], "frames": [10]}}, tmp_path, executor="serial")
    r = doc["jobs"][0]["result"]
    assert doc["n_done"] == 1 and r["ker_dim"] == r["tangent_dim"] == 1 and r["scaling_only"]


def test_failed_job_recorded_and_retried(tmp_path):
    import numpy as np

    # weights that pass the scan (an .npz with P and V) and fail when the job runs (wrong size D)
    bad = tmp_path / "wrong-size.npz"
    np.savez(bad, P=np.zeros((3, 3)), V=np.zeros((3, 3)))
    cfg = {
        "kind": "control",
        "grid": {"seed": [0, 1], "n_updates": [20], "weights": ["constructed", str(bad)]},
    }
    doc = run_sweep(cfg, tmp_path, executor="local", workers=2)
    assert (doc["n_done"], doc["n_failed"]) == (2, 2)
    for row in doc["jobs"]:
        rec = read_json(tmp_path / "jobs" / f"{row['hash']}.json")
        assert rec["status"] == row["status"]
        if row["params"]["weights"] == str(bad):
            assert row["status"] == "failed" and "weights" in rec["error"] and "Traceback" in rec["error"]
            assert "result" not in rec
        else:
            assert row["status"] == "done" and rec["result"]["normalized_return"] is not None
    before = _mtimes(tmp_path)
    again = run_sweep(cfg, tmp_path, executor="serial")
    assert (again["n_computed"], again["n_skipped"], again["n_failed"]) == (2, 2, 2)
    after = _mtimes(tmp_path)
    done = {f"{r['hash']}.json" for r in doc["jobs"] if r["status"] == "done"}
    assert all(after[name] == before[name] for name in done)
    assert all(after[name] != before[name] for name in set(before) - done)


def test_interrupted_sweep_resumes_without_recomputing(tmp_path):
    cfg = {"kind": "control", "grid": CONTROL_GRID}
    first = run_sweep(cfg, tmp_path, executor="local", workers=2, limit=3)
    assert (first["n_done"], first["n_pending"], first["n_computed"]) == (3, 5, 3)
    assert [r["status"] for r in first["jobs"]].count("pending") == 5
    before = _mtimes(tmp_path)
    assert len(before) == 3
    rest = run_sweep(cfg, tmp_path, executor="local", workers=2)
    assert (rest["n_done"], rest["n_computed"], rest["n_skipped"]) == (8, 5, 3)
    after = _mtimes(tmp_path)
    assert all(after[name] == t for name, t in before.items())
    # deleting finished files recomputes exactly those
    for name in list(before)[:2]:
        (tmp_path / "jobs" / name).unlink()
    again = run_sweep(cfg, tmp_path, executor="serial")
    assert again["n_computed"] == 2 and again["jobs"] == rest["jobs"]


def test_cli_entry_point(tmp_path, capsys):
    path = _write(
        tmp_path / "s.toml",
        f'[sweep]\nkind = "control"\nout = "{tmp_path / "out"}"\n[grid]\nseed = [0, 1]\nn_updates = [20]\n',
    )
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["sweep", str(path), "--workers", "1"])
    assert args.func is main_sweep
    assert args.func(args) == 0
    assert "2 done, 0 failed" in capsys.readouterr().out
    assert read_json(tmp_path / "out" / "sweep.json")["n_done"] == 2


def test_example_config_parses():
    cfg = load_config(Path(__file__).parents[2] / "examples" / "sweep.toml")
    assert cfg["kind"] == "control" and len(expand_grid(cfg["kind"], cfg["grid"])) == 40


# --------------------------------------------------------------------------------------------------
# the face: Config (SweepConfig), units (the grid's jobs), run_unit (one job), run (run_sweep)
# --------------------------------------------------------------------------------------------------


def test_sweep_config_is_the_config_file():
    """``SweepConfig.full()`` is examples/sweep.toml (one grid, in the file and in the code);
    ``quick()`` is a cut of it; a mapping or pairs give the same frozen configuration, values
    coerced as the file's are; bad values name their field as the file's do."""
    from lsa_theory.experiments.sweep import Config, SweepConfig

    example = Path(__file__).parents[2] / "examples" / "sweep.toml"
    assert Config is SweepConfig
    assert SweepConfig.from_file(example) == SweepConfig.full()
    assert SweepConfig.full().as_dict() == load_config(example)
    full, quick = SweepConfig.full(), SweepConfig.quick()
    assert quick.kind == full.kind and set(dict(quick.grid)) == set(dict(full.grid))
    assert all(set(v) <= set(dict(full.grid)[k]) for k, v in quick.grid)
    cfg = SweepConfig("control", {"seed": [0, 1], "alpha": [1]})
    assert cfg == SweepConfig("control", (("seed", (0, 1)), ("alpha", (1.0,))))
    assert cfg.grid == (("seed", (0, 1)), ("alpha", (1.0,))) and isinstance(cfg.grid[1][1][0], float)
    assert hash(cfg) == hash(SweepConfig("control", {"seed": [0, 1], "alpha": [1.0]}))
    for bad, field in [
        (dict(kind="nope", grid={"seed": [0]}), "kind"),
        (dict(kind="control", grid={"bogus": [0]}), r"grid\.bogus"),
        (dict(kind="control", grid={}), "grid"),
        (dict(kind="control", grid=(("seed", (0,)), ("seed", (1,)))), "grid: a parameter named twice"),
        (dict(kind="control", grid=(("seed",),)), "grid: expected"),
        (dict(kind="control", grid={"seed": ["a"]}), r"grid\.seed"),
        (dict(kind="control", grid={"seed": [0]}, out=""), "out"),
    ]:
        with pytest.raises(ValueError, match=f"^{field}"):
            SweepConfig(**bad)


def test_sweep_units_are_the_jobs_run_sweep_writes(tmp_path):
    """``units(cfg)``: the jobs of ``sweep.json`` in its order (a repeated value repeats its job),
    keyed by their job files' hashes; ``run_unit`` of one gives the metrics ``run_sweep`` saved for
    it; ``run_sweep`` takes the configuration as it takes its dict."""
    from lsa_theory.experiments import sweep

    cfg = sweep.Config("control", {"seed": [0, 1, 1], "n": [10], "n_updates": [20]})
    units = sweep.units(cfg)
    assert [u.params["seed"] for u in units] == [0, 1, 1] and units[1] == units[2] != units[0]
    doc = sweep.run(cfg, tmp_path / "a", executor="serial")
    assert [u.key for u in units] == [j["hash"] for j in doc["jobs"]]
    assert [u.params for u in units] == [j["params"] for j in doc["jobs"]]
    assert doc["n_computed"] == 2 and all((tmp_path / "a" / "jobs" / f"{u.key}.json").exists() for u in units)
    rec = sweep.run_unit(cfg, units[0])
    assert rec["status"] == "done" and rec["result"] == doc["jobs"][0]["result"]
    listed = run_sweep(cfg.as_dict(), tmp_path / "b", executor="serial", limit=0)["jobs"]
    assert [(j["hash"], j["params"]) for j in listed] == [(u.key, u.params) for u in units]
    other = sweep.Config("converge", {"seed": [0]})
    with pytest.raises(ValueError, match="unit: a 'control' job is not a unit of a 'converge' sweep"):
        sweep.run_unit(other, units[0])


# --------------------------------------------------------------------------------------------------
# slow: 200 jobs, local vs dask, and a killed run resumed
# --------------------------------------------------------------------------------------------------

BIG = '[sweep]\nkind = "control"\n[grid]\nseed = {seeds}\nn = [10, 20]\nn_updates = [{updates}]\n'


@pytest.mark.slow
def test_200_jobs_local_dask_identical(tmp_path):
    pytest.importorskip("dask.distributed")
    path = _write(tmp_path / "big.toml", BIG.format(seeds=list(range(100)), updates=100))
    t0 = time.perf_counter()
    local = run_sweep(path, tmp_path / "local", executor="local", workers=2)
    t_local = time.perf_counter() - t0
    t0 = time.perf_counter()
    dask = run_sweep(path, tmp_path / "dask", executor="dask", workers=2)
    t_dask = time.perf_counter() - t0
    print(f"200 jobs: local {t_local:.1f} s, dask {t_dask:.1f} s")
    assert local["n_done"] == dask["n_done"] == 200
    a = read_json(tmp_path / "local" / "sweep.json")
    b = read_json(tmp_path / "dask" / "sweep.json")
    assert a["jobs"] == b["jobs"]


@pytest.mark.slow
def test_killed_halfway_then_rerun(tmp_path):
    path = _write(tmp_path / "big.toml", BIG.format(seeds=list(range(50)), updates=300))
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "lsa_theory.experiments.sweep",
        str(path),
        "--out",
        str(out),
        "--workers",
        "2",
    ]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while len(list((out / "jobs").glob("*.json"))) < 50 and time.monotonic() < deadline:
            time.sleep(0.05)
            assert proc.poll() is None, "sweep finished before it could be interrupted"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    before = _mtimes(out)
    assert 50 <= len(before) < 100
    assert not (out / "sweep.json").exists()
    doc = run_sweep(path, out, executor="local", workers=2)
    assert doc["n_done"] == 100 and doc["n_skipped"] == len(before)
    assert doc["n_computed"] == 100 - len(before)
    after = _mtimes(out)
    assert all(after[name] == t for name, t in before.items())  # no finished job recomputed


def test_dask_missing_gives_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    with pytest.raises(ValueError, match=r"^--executor dask: .*dask\[distributed\]"):  # before any work
        run_sweep({"kind": "control", "grid": {"seed": [0], "n_updates": [20]}}, tmp_path, executor="dask")


# --------------------------------------------------------------------------------------------------
# issue 13: huge grids are counted before expansion, refused without --force, --limit is honoured
# early, and progress is visible off a terminal
# --------------------------------------------------------------------------------------------------

#: 10^6 control jobs (1000 x 1000): the grid of the issue report.
HUGE = {"seed": list(range(1000)), "n": list(range(1, 1001)), "n_updates": [20]}


def test_count_jobs_from_axis_lengths():
    from lsa_theory.experiments.sweep import count_jobs

    assert count_jobs("control", HUGE) == 10**6
    assert count_jobs("control", CONTROL_GRID) == len(expand_grid("control", CONTROL_GRID)) == 8
    with pytest.raises(ValueError, match=r"^grid\.seed"):
        count_jobs("control", {"seed": []})


def test_huge_grid_refused_at_once_without_force(tmp_path):
    from lsa_theory.experiments.sweep import MAX_JOBS

    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=rf"^grid: 1000000 jobs > max_jobs = {MAX_JOBS}.*--force"):
        run_sweep({"kind": "control", "grid": HUGE}, tmp_path / "out", executor="serial")
    assert time.perf_counter() - t0 < 1.0
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match=r"^grid: 8 jobs > max_jobs = 7"):
        run_sweep({"kind": "control", "grid": CONTROL_GRID}, tmp_path / "out", executor="serial", max_jobs=7)
    with pytest.raises(ValueError, match=r"^max_jobs"):
        run_sweep({"kind": "control", "grid": CONTROL_GRID}, tmp_path / "out", max_jobs=0)


def test_limit_is_honoured_before_the_grid_is_expanded(tmp_path):
    import tracemalloc

    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        doc = run_sweep({"kind": "control", "grid": HUGE}, tmp_path, executor="serial", limit=1, force=True)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    seconds = time.perf_counter() - t0
    assert seconds < 10.0, seconds
    assert peak < 50e6, peak
    assert (doc["n_jobs"], doc["n_done"], doc["n_computed"], doc["n_listed"]) == (10**6, 1, 1, 1)
    assert doc["n_pending"] == 10**6 - 1
    assert doc["jobs"][0]["params"]["seed"] == 0 and doc["jobs"][0]["params"]["n"] == 1
    again = run_sweep({"kind": "control", "grid": HUGE}, tmp_path, executor="serial", limit=1, force=True)
    assert (again["n_done"], again["n_skipped"], again["n_computed"], again["n_listed"]) == (2, 1, 1, 2)


def test_progress_lines_off_a_terminal(tmp_path, capsys):
    grid = {"seed": list(range(3)), "n_updates": [20]}
    run_sweep({"kind": "control", "grid": grid}, tmp_path, executor="serial", progress_every=0.0)
    err = capsys.readouterr().err.splitlines()
    scans = [line for line in err if line.startswith("sweep control: scanned")]
    runs = [line for line in err if line.startswith("sweep control: ran")]
    # every 0 s: one line per job, in order
    assert [line.split(" jobs")[0] for line in scans] == [f"sweep control: scanned {i}/3" for i in (1, 2, 3)]
    assert [line.split(" jobs")[0] for line in runs] == [f"sweep control: ran {i}/3" for i in (1, 2, 3)]
    # a sweep shorter than the interval stays quiet
    run_sweep({"kind": "control", "grid": grid}, tmp_path / "b", executor="serial", progress_every=1e9)
    assert capsys.readouterr().err == ""


def test_cli_force_flag(tmp_path):
    path = _write(
        tmp_path / "huge.toml",
        '[sweep]\nkind = "control"\n[grid]\n' + "\n".join(f"{k} = {v}" for k, v in HUGE.items()) + "\n",
    )
    out = tmp_path / "out"
    base = [sys.executable, "-m", "lsa_theory.experiments.sweep", str(path), "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    t0 = time.perf_counter()
    refused = subprocess.run(base, capture_output=True, text=True, env=env, timeout=60)
    assert refused.returncode != 0 and "--force" in refused.stderr
    assert time.perf_counter() - t0 < 30
    forced = subprocess.run(
        [*base, "--force", "--limit", "1", "--workers", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert forced.returncode == 0, forced.stderr
    assert "1000000 jobs, 1 done" in forced.stdout

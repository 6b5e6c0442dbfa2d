"""The command line as a tool (issue 13): exit codes 0/1/2/130, one-line errors, outputs checked
before any work, provenance and refusal to resume over different results, file modes, threads."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from lsa_theory import cli
from lsa_theory.experiments import io as eio


def _run(argv, capsys):
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["verify", "--seed", "-1"], "--seed"),
        (["verify", "--threads", "0"], "--threads"),
        (["control", "--updates", "0", "--quick"], "n_updates"),
        (["control", "--algo", "actor_critic", "--weights", "trained"], "--weights trained"),
        (["control", "--weights", "teacher"], "--weights teacher"),
        (["verify", "--module", "missing.py"], "module"),
    ],
)
def test_bad_input_is_exit_2_with_one_line(argv, needle, capsys):
    rc, _, err = _run(argv, capsys)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in err


def test_argparse_choices_are_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["reproduce", "--parts", "bogus"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_out_that_is_a_file_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    import lsa_theory.experiments.converge as cv

    def boom(*a, **k):
        raise AssertionError("computed before checking --out")

    monkeypatch.setattr(cv, "run_converge", boom)
    f = tmp_path / "file.json"
    f.write_text("{}")
    rc, _, err = _run(["converge", "--quick", "--out", str(f)], capsys)
    assert rc == 2 and "not a directory" in err


def test_failed_check_is_exit_1_and_interrupt_is_130(monkeypatch, capsys):
    import lsa_theory.constructions.verify as cv
    from lsa_theory.constructions.derive import Row

    monkeypatch.setattr(cv, "run_claims", lambda *a, **k: [Row("(X)", "a failing row", 1.0, 0.0, False)])
    rc, out, _ = _run(["verify", "--quick"], capsys)
    assert rc == 1 and "FAIL" in out

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(cv, "run_claims", interrupted)
    rc, _, err = _run(["verify", "--quick"], capsys)
    assert rc == 130 and "interrupted; nothing was kept" in err  # verify has no --out: no resume


def test_control_exits_1_when_the_block_leaves_its_teacher(monkeypatch, capsys):
    import lsa_theory.experiments.control as ctl

    row = {"name": "random-S9-A4", "algo": "sarsa", "weights": "constructed", "updates": 1, "n_seeds": 1,
           "normalized_return": 0.5, "normalized_return_teacher": 0.5, "n_diverged": 0,
           "n_diverged_teacher": 0, "max_w_rel_diff_before_mismatch": 1e-3}  # fmt: skip
    monkeypatch.setattr(ctl, "run_control", lambda cfg, out=None: {"envs": [row], "config": {}})
    rc, _, _ = _run(["control", "--quick", "--json"], capsys)
    assert rc == 1
    row["max_w_rel_diff_before_mismatch"] = 1e-15
    rc, out, _ = _run(["control", "--quick", "--json"], capsys)
    assert rc == 0 and json.loads(out)["passed"] is True


def test_reproduce_marks_skipped_parts_and_exits_1_on_a_failed_part(tmp_path, monkeypatch, capsys):
    import lsa_theory.experiments.reproduce as rp

    parts = {"good": lambda o, q, s: {"ok": True}, "bad": lambda o, q, s: {"ok": False}}
    monkeypatch.setattr(rp, "PARTS", parts)
    rc, out, _ = _run(["reproduce", "--out", str(tmp_path), "--parts", "good"], capsys)
    assert rc == 0
    rc, out, _ = _run(["reproduce", "--out", str(tmp_path), "--parts", "good", "bad"], capsys)
    assert rc == 1 and "good" in out and "skipped" in out.splitlines()[0] and "CHECK FAILED" in out


def test_resume_refuses_results_of_another_configuration(tmp_path, monkeypatch, capsys):
    import lsa_theory.experiments.diversity as dv

    monkeypatch.setattr(dv, "run_diversity", lambda cfg, out=None: {"rows": [], "config": {}})
    monkeypatch.setattr(dv, "plot_diversity", lambda out: None)
    out = str(tmp_path / "d")
    assert _run(["diversity", "--quick", "--out", out], capsys)[0] == 0
    prov = json.loads((tmp_path / "d" / "provenance.json").read_text())
    assert set(prov) >= {"version", "git_commit", "config_hash", "seed", "blas_threads", "dependencies"}
    assert _run(["diversity", "--quick", "--out", out], capsys)[0] == 0  # same configuration resumes
    rc, _, err = _run(["diversity", "--out", out], capsys)  # another configuration
    assert rc == 2 and "config_hash" in err and "--reuse" in err
    assert _run(["diversity", "--out", out, "--reuse"], capsys)[0] == 0


def test_result_files_get_the_usual_mode_and_provenance(tmp_path):
    old = os.umask(0o022)
    try:
        eio.atomic_write_json(tmp_path / "a.json", {"config": {"seed": 3}})
        eio.atomic_savez(tmp_path / "a.npz", x=[1.0])
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "a.npz").stat().st_mode & 0o777 == 0o644
    doc = json.loads((tmp_path / "a.json").read_text())
    assert doc["provenance"]["seed"] == 3 and len(doc["provenance"]["config_hash"]) == 64


def test_threads_are_applied_and_recorded(monkeypatch, capsys):
    import lsa_theory.constructions.verify as cv

    seen = {}

    def fake(*a, **k):
        seen["threads"] = eio.blas_threads()
        return []

    monkeypatch.setattr(cv, "run_claims", fake)
    cli.main(["verify", "--quick", "--threads", "1", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert seen["threads"] == 1 and doc["provenance"]["blas_threads"] == 1


@pytest.mark.parametrize(
    "command",
    [
        "verify",
        "converge",
        "diversity",
        "control",
        "regression",
        "pretrain",
        "context-length",
        "autoregressive",
        "distill",
        "td-pretrain",
        "attention",
        "depth",
    ],
)
def test_commands_that_draw_random_numbers_take_seed(command):
    sub = cli.build_parser()._subparsers._group_actions[0].choices[command]
    assert "--seed" in sub.format_help()


# --------------------------------------------------------------------------------------------------
# issue 24: refusals before --out is touched; --threads caps torch too (item 24)
# --------------------------------------------------------------------------------------------------

_COMMANDS = {
    "converge": ["converge", "--quick"],
    "diversity": ["diversity", "--quick"],
    "control": ["control", "--quick"],
    "regression": ["regression", "--quick"],
    "autoregressive": ["autoregressive", "--quick"],
    "distill": ["distill", "--mode", "in-context", "--quick"],
    "td-pretrain": ["td-pretrain", "--quick"],
    "attention": ["attention", "--quick"],
    "depth": ["depth", "--quick"],
    "context-length": ["context-length", "--regime", "in-context", "--quick"],
    "pretrain": ["pretrain", "--quick"],
    "reproduce": ["reproduce", "--quick", "--parts", "diversity"],
    "sweep": [
        "sweep",
        str(Path(__file__).resolve().parents[2] / "examples" / "sweep.toml"),
        "--workers",
        "1",
    ],
}

#: command -> (module, configuration class) whose construction the command's precheck runs
_CONFIGS = {
    "converge": ("lsa_theory.experiments.converge", "ConvergeConfig"),
    "diversity": ("lsa_theory.experiments.diversity", "DiversityConfig"),
    "control": ("lsa_theory.experiments.control", "ControlConfig"),
    "regression": ("lsa_theory.experiments.regression", "RegressionConfig"),
    "autoregressive": ("lsa_theory.experiments.autoregressive", "ARConfig"),
    "distill": ("lsa_theory.experiments.distill", "DistillConfig"),
    "td-pretrain": ("lsa_theory.experiments.td_pretrain", "TDPConfig"),
    "attention": ("lsa_theory.experiments.attention", "AttentionConfig"),
    "depth": ("lsa_theory.experiments.depth", "DepthConfig"),
    "context-length": ("lsa_theory.experiments.context_length", "InContextConfig"),
    "pretrain": ("lsa_theory.experiments.pretrain", "PretrainConfig"),
}


@pytest.mark.parametrize("command", sorted(_COMMANDS))
def test_a_too_large_seed_is_refused_before_out_is_created(tmp_path, capsys, command):
    """--seed 2**64 ran (and pretrain ended in an OverflowError traceback, exit 1) after creating
    --out: now one line, exit 2, naming --seed, and --out does not exist."""
    out = tmp_path / "o"
    rc, stdout, err = _run([*_COMMANDS[command], "--seed", str(2**64), "--out", str(out)], capsys)
    assert rc == 2 and stdout == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "--seed" in lines[0] and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("command", sorted(_CONFIGS))
def test_a_configuration_error_is_reported_before_out_is_created(tmp_path, monkeypatch, capsys, command):
    """A ValueError raised while the command's configuration is built (a bad option the
    configuration refuses) is one line, exit 2, with --out not created: every command builds its
    configuration in its precheck, before the lock and provenance.json are written."""
    import importlib

    module, name = _CONFIGS[command]
    cls = getattr(importlib.import_module(module), name)

    def refuse(self):
        raise ValueError(f"{name}: refused on purpose")

    monkeypatch.setattr(cls, "__post_init__", refuse, raising=False)
    out = tmp_path / "o"
    rc, stdout, err = _run([*_COMMANDS[command], "--out", str(out)], capsys)
    assert rc == 2 and stdout == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "refused on purpose" in lines[0]
    assert not out.exists(), sorted(p.name for p in out.iterdir())


def test_threads_cap_torch_and_are_recorded(monkeypatch, capsys):
    """item 24: --threads N set BLAS only; torch kept its own thread count (4.4-15.6 s a training
    step with two threads against 0.9 s with one). Now torch's intra-op threads follow --threads
    and provenance records them."""
    import torch

    import lsa_theory.experiments.regression as rg

    seen = {}

    def fake(cfg, out=None):
        seen["torch"] = torch.get_num_threads()
        return {"passed": True, "provenance": eio.provenance({}, 0)}

    monkeypatch.setattr(rg, "run_regression", fake)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert cli.main(["regression", "--quick", "--threads", "1", "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert seen["torch"] == 1
        assert doc["provenance"]["torch_threads"]["intra_op"] == 1
        assert doc["provenance"]["blas_threads"] == 1
    finally:
        torch.set_num_threads(before)


# --------------------------------------------------------------------------------------------------
# item 25: reproduce --json, failed parts named, progress; verify's table fits 100 columns
# --------------------------------------------------------------------------------------------------


def test_reproduce_json_is_one_document_and_names_the_failed_part(tmp_path, monkeypatch, capsys):
    """--json printed the text table (stdout not JSON); exit 1 did not name the failed part; nothing
    on stderr while parts ran. Now stdout is one JSON document, the table and the progress (with
    elapsed times) go to stderr, and the failed part is named with its criterion and failing items."""
    import lsa_theory.experiments.reproduce as rp

    parts = {
        "verify": lambda o, q, s: {"ok": True},
        "control": lambda o, q, s: {"ok": False, "failing": ["random-S9-A4 sarsa constructed"]},
    }
    monkeypatch.setattr(rp, "PARTS", parts)
    argv = ["reproduce", "--out", str(tmp_path), "--parts", "verify", "control", "--json"]
    rc, out, err = _run(argv, capsys)
    assert rc == 1
    doc = json.loads(out)  # the whole of stdout is one JSON document
    assert doc["passed"] is False and set(doc["failed"]) == {"control"}
    assert doc["failed"]["control"]["failing"] == ["random-S9-A4 sarsa constructed"]
    assert doc["provenance"]["seed"] == 0 and "parts" in doc
    failed = [line for line in err.splitlines() if "failed its check" in line]
    assert len(failed) == 1 and "part control" in failed[0] and "block_equals_teacher" in failed[0]
    assert "random-S9-A4" in failed[0]
    assert "part 1/2 verify: started" in err and "part 2/2 control: finished in" in err
    assert "CHECK FAILED" in err  # the table went to stderr


def test_reproduce_prints_a_heartbeat_while_a_part_runs(tmp_path, monkeypatch, capsys):
    import lsa_theory.experiments.reproduce as rp

    monkeypatch.setattr(rp, "PARTS", {"slow": lambda o, q, s: time.sleep(0.35) or {}})
    monkeypatch.setattr(rp, "HEARTBEAT_EVERY", 0.1)
    rc, _, err = _run(["reproduce", "--out", str(tmp_path)], capsys)
    assert rc == 0
    beats = [line for line in err.splitlines() if "part slow running" in line]
    assert len(beats) >= 2 and "total" in beats[0]


def test_verify_table_fits_100_columns_and_json_keeps_the_whole_check(monkeypatch, capsys):
    """verify's table was about 250 columns wide (the check's text in one column)."""
    import lsa_theory.constructions.verify as cv
    from lsa_theory.constructions.derive import Row

    long = "columns == naive on every prompt of the held-out family " * 4 + "end"
    rows = [Row("(S4)", long, 1e-15, 1e-10, True), Row("(A4)", "short", 2e-15, 1e-10, True)]
    monkeypatch.setattr(cv, "run_claims", lambda *a, **k: rows)
    rc, out, _ = _run(["verify", "--quick", "--seed", "0"], capsys)
    assert rc == 0 and max(len(line) for line in out.splitlines()) <= 100
    assert " ".join(out.split()).count("end") == 1 and "(A4)" in out
    rc, out, _ = _run(["verify", "--quick", "--seed", "0", "--json"], capsys)
    assert json.loads(out)["rows"][0]["check"] == long


def test_interrupt_promises_resume_only_with_out(tmp_path, monkeypatch, capsys):
    """item 15: Ctrl-C printed "rerun the same command to resume" even where nothing was kept
    (regression saved nothing until it finished; no --out). Now regression keeps its finished
    units (tests/cli/test_faults.py::test_interrupted_regression_resumes_from_its_finished_units),
    and a command without --out says that nothing was kept."""
    import lsa_theory.experiments.regression as rg

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(rg, "run_regression", interrupted)
    rc, _, err = _run(["regression", "--quick"], capsys)
    assert rc == 130 and "resume" not in err and "nothing was kept" in err
    rc, _, err = _run(["regression", "--quick", "--out", str(tmp_path / "r")], capsys)
    assert rc == 130 and "rerun the same command to resume" in err


def test_verify_module_imports_only_what_it_needs():
    """``verify --module`` (a user's own declarations) loads neither torch, matplotlib, gymnasium,
    dask nor the dynamics/experiment modules: they are imported where a command needs them. (Before:
    building the parser imported ``lsa_theory.experiments.reproduce`` and with it torch; 4.7 s against 1.4 s
    wall for ``examples/offpolicy_td0.py``.)"""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    script = (
        "import sys\n"
        "from lsa_theory import cli\n"
        f"rc = cli.main(['verify', '--module', {str(root / 'examples' / 'offpolicy_td0.py')!r}, '--quick',"
        " '--seed', '0', '--threads', '1'])\n"
        "heavy = ('torch', 'matplotlib', 'gymnasium', 'dask', 'distributed', 'lsa_theory.dynamics',"
        " 'lsa_theory.experiments.train')\n"
        "print(rc, sorted(m for m in sys.modules if m.startswith(heavy))[:5])\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "0 []", done.stdout

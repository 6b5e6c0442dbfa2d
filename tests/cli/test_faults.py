"""Issue 24: every fault and bad input gets a clear answer (one line, exit 2, naming the flag or
file, before anything is written), and results survive crashes, races and truncation.

Item numbers are those of the issue; each test failed before the change it guards.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import lsa_theory as lt
from lsa_theory import cli
from lsa_theory.experiments import io as eio


def _run(argv, capsys):
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def _one_line(err: str, *needles: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# --------------------------------------------------------------------------------------------------
# items 1, 16, 26: verify --module
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source, needle",
    [
        ("import sys\nsys.exit(0)\n", "sys.exit(0)"),  # item 1: was exit 0, silent
        ("import sys\nsys.exit(3)\n", "sys.exit(3)"),
        ("def f(:\n    pass\n", "syntax error at line 1"),  # item 16: was a traceback, exit 1
        ("x = 1\nraise RuntimeError('boom')\n", "RuntimeError at line 2: boom"),
    ],
)
def test_verify_module_import_failures_are_exit_2_naming_the_file(tmp_path, capsys, source, needle):
    m = tmp_path / "m.py"
    m.write_text(source)
    rc, out, err = _run(["verify", "--module", str(m)], capsys)
    assert rc == 2 and out == ""
    _one_line(err, "--module", str(m), needle)


@pytest.mark.parametrize(
    "make", [lambda m: m.write_text("x = (\n"), lambda m: None], ids=["syntax error", "no file"]
)
def test_every_module_command_names_a_bad_file_the_same_way(tmp_path, capsys, make):
    """verify, converge and control say ``lsa-theory CMD: error: --module: <the loader's words>``
    (they said ``verify: --module:``, ``converge: error: --module:`` and ``control: error:
    module:`` before)."""
    m = tmp_path / "m.py"
    make(m)
    tails = set()
    for cmd in (["verify"], ["converge", "--algo", "x", "--quick"], ["control", "--algo", "x", "--quick"]):
        rc, out, err = _run([cmd[0], "--module", str(m), *cmd[1:]], capsys)
        line = _one_line(err, str(m))
        assert rc == 2 and out == "" and line.startswith(f"lsa-theory {cmd[0]}: error: --module: "), line
        tails.add(line.split(": error: ", 1)[1])
    assert len(tails) == 1, tails


def _example_with(tmp_path, old: str, new: str):
    text = (Path(__file__).resolve().parents[2] / "examples" / "offpolicy_td0.py").read_text()
    assert old in text
    m = tmp_path / "decl.py"
    m.write_text(text.replace(old, new, 1))
    return m


@pytest.mark.parametrize(
    "old, new, needles",
    [  # issue 19: a missing method was NotImplementedError mid-run; wrong size names a KeyError traceback
        ("    def naive(self", "    def naive_loop(self", ["(line 35)", "does not define naive"]),
        (
            "    def size_ranges(self):\n",
            "    def size_ranges(self):\n        return {'zzz': (1, 2)}\n",
            ["size_ranges() (line 50)", "['zzz'] differ from"],
        ),
        ("    def size_ranges(self):\n", "    def size_ranges(self):\n        1 / 0\n", ["ZeroDivision"]),
    ],
)
def test_verify_module_malformed_declaration_is_one_line_exit_2(tmp_path, capsys, old, new, needles):
    m = _example_with(tmp_path, old, new)
    rc, out, err = _run(["verify", "--module", str(m), "--quick"], capsys)
    assert rc == 2 and out == ""
    _one_line(err, "--module", str(m), *needles)


def test_verify_module_json_records_path_and_hash(tmp_path, monkeypatch, capsys):
    """item 26: the JSON names the verified file and the sha256 of its bytes."""
    import hashlib
    from types import SimpleNamespace

    import lsa_theory.constructions.verify as cv
    from lsa_theory import constructions

    m = tmp_path / "mine.py"
    m.write_text("# my algorithms\n")

    class Mine(constructions.Algorithm):  # a declaration (checked as data), never run: run_claims is stubbed
        name, claim = "mine_x1", "(X1)"

    monkeypatch.setattr(constructions, "load_module", lambda path: [Mine()])
    row = SimpleNamespace(claim="(X1)", check="mine", residual=0.0, tol=1e-12, passed=True)
    monkeypatch.setattr(cv, "run_claims", lambda *a, **k: [row])
    rc, out, _ = _run(["verify", "--module", str(m), "--json", "--seed", "1"], capsys)
    doc = json.loads(out)
    assert rc == 0
    assert doc["module"] == {"path": str(m.resolve()), "sha256": hashlib.sha256(m.read_bytes()).hexdigest()}


# --------------------------------------------------------------------------------------------------
# item 2: policy iteration is scale-free
# --------------------------------------------------------------------------------------------------


def _scaled(mdp, c):
    return lt.TabularMDP(P=mdp.P, r=mdp.r * c, gamma=mdp.gamma, mu0=mdp.mu0)


@pytest.mark.parametrize(
    "S, A, reward, scale",
    [
        (9, 4, "sa", 1e-12),
        (3, 2, "sa", 1e-13),
        (9, 4, "sas", 2.0**-900),
        (9, 4, "sa", 1e250),
        (3, 2, "sas", 1e-13),
    ],
)
def test_optimal_policy_does_not_depend_on_the_reward_scale(S, A, reward, scale):
    """Rewards times c > 0 have the same optimal policy, Q* times c and the same normalised
    returns (before: 1e-12 at 9 x 4 gave J/s 0.375 instead of 1.126, 1e-13 at 3 x 2 a policy
    below uniform, as the improvement threshold had an absolute floor)."""
    for seed in range(5):
        mdp = lt.random_mdp(S, A, 0.5, np.random.default_rng(seed), reward=reward)
        small = _scaled(mdp, scale)
        sol, sol_c = lt.optimal(mdp), lt.optimal(small)
        assert np.array_equal(sol.policy, sol_c.policy), (seed, sol.policy, sol_c.policy)
        np.testing.assert_allclose(sol_c.Q / scale, sol.Q, rtol=1e-10)
        assert lt.normalized_return(mdp, sol_c.pi) == pytest.approx(1.0, abs=1e-12)
        pi = 0.5 * sol.pi + 0.5 * lt.uniform_policy(mdp)
        assert lt.normalized_return(small, pi) == pytest.approx(lt.normalized_return(mdp, pi), rel=1e-9)


def test_optimal_policy_survives_roundoff_perturbations(rng):
    """The scaled policy is decided by the MDP, not by rounding (1e-13 perturbations)."""
    from lsa_theory.roundoff import assert_same_verdicts

    mdp = _scaled(lt.random_mdp(9, 4, 0.5, rng), 1e-12)
    tree = {"P": mdp.P, "r": mdp.r, "mu0": mdp.mu0}

    def check(t):
        P = t["P"] / t["P"].sum(axis=-1, keepdims=True)
        return tuple(
            lt.optimal(lt.TabularMDP(P=P, r=t["r"], gamma=0.5, mu0=t["mu0"] / t["mu0"].sum())).policy
        )

    assert assert_same_verdicts(check, tree, rng) == tuple(lt.optimal(mdp).policy)


def test_q_error_bound_covers_the_solve_and_scales():
    """The bound of item 2's threshold holds against a reference refined with long-double
    residuals (measured: the bound is 25-700x the actual error at gamma 0.5-0.99, about 1e-14 to
    5e-13 relative) and is homogeneous in the rewards."""
    from lsa_theory.mdp import q_error_bound

    S, A, L = 6, 3, np.longdouble
    for seed in range(5):
        for gamma in (0.5, 0.9, 0.99):
            mdp = lt.random_mdp(S, A, gamma, np.random.default_rng(seed), reward="sas")
            pi = lt.uniform_policy(mdp)
            Q = lt.q_pi(mdp, pi)
            P_pi = np.einsum("sat,tb->satb", mdp.P.astype(L), pi.astype(L)).reshape(S * A, S * A)
            M = np.eye(S * A, dtype=L) - L(gamma) * P_pi
            rbar = np.einsum("sat,sat->sa", mdp.P.astype(L), mdp.r.astype(L)).reshape(-1)
            ref = Q.reshape(-1).astype(L)
            for _ in range(3):  # iterative refinement, residuals in long double
                ref = ref + np.linalg.solve(M.astype(float), (rbar - M @ ref).astype(float)).astype(L)
            err = q_error_bound(mdp, pi, Q)
            assert float(np.abs(Q.reshape(-1) - ref).max()) <= err, (seed, gamma)
            assert 0 < err < 1e-12 * np.abs(Q).max()
            scaled = q_error_bound(_scaled(mdp, 2.0**-40), pi, Q * 2.0**-40)
            assert scaled == pytest.approx(err * 2.0**-40, rel=1e-6)


# --------------------------------------------------------------------------------------------------
# items 3, 4, 11: reproduce notices damaged parts; one process per --out; damaged files named
# --------------------------------------------------------------------------------------------------


def _json_part(name):
    def part(out, quick, seed):
        eio.atomic_write_json(out / f"{name}.json", {"values": list(range(50)), "seed": seed})
        return {"ok": True}

    return part


def test_reproduce_recomputes_a_finished_part_whose_result_is_truncated(tmp_path, monkeypatch, capsys):
    """item 3: cutting converge.json of a finished part in half; the rerun recomputes that part
    (the damaged file kept as .damaged) and skips the intact one."""
    import lsa_theory.experiments.reproduce as rp

    calls = []

    def counted(name):
        inner = _json_part("converge")

        def part(out, quick, seed):
            calls.append(name)
            return inner(out, quick, seed)

        return part

    monkeypatch.setattr(rp, "PARTS", {"converge-sarsa": counted("converge-sarsa"), "other": counted("other")})
    assert _run(["reproduce", "--out", str(tmp_path)], capsys)[0] == 0
    f = tmp_path / "converge-sarsa" / "converge.json"
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    rc, out, err = _run(["reproduce", "--out", str(tmp_path)], capsys)
    assert rc == 0 and calls == ["converge-sarsa", "other", "converge-sarsa"]
    assert "converge-sarsa" in err and "converge.json" in err and "recomputing" in err
    assert json.loads(f.read_text())["values"] == list(range(50))
    assert (f.parent / "converge.json.damaged").read_bytes() == data[: len(data) // 2]
    assert "skipped" in next(line for line in out.splitlines() if line.startswith("other"))
    assert "skipped" not in next(line for line in out.splitlines() if line.startswith("converge-sarsa"))
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert "converge.json" in summary["parts"]["converge-sarsa"]["files"]


def test_reproduce_checks_parts_of_summaries_without_digests(tmp_path, monkeypatch, capsys):
    """A summary written before the digests: a finished part whose JSON does not read back is
    recomputed too."""
    import lsa_theory.experiments.reproduce as rp

    monkeypatch.setattr(rp, "PARTS", {"a": _json_part("a")})
    rp.reproduce(tmp_path)
    doc = json.loads((tmp_path / "summary.json").read_text())
    del doc["parts"]["a"]["files"]
    (tmp_path / "summary.json").write_text(json.dumps(doc))
    assert rp.reproduce(tmp_path)["skipped"] == ["a"]  # intact: skipped
    (tmp_path / "a" / "a.json").write_text('{"values": [1, 2')
    summary = rp.reproduce(tmp_path)
    assert summary["skipped"] == [] and (tmp_path / "a" / "a.json.damaged").exists()
    capsys.readouterr()


_HOLD = """
import sys, time
from lsa_theory.experiments.io import out_lock
with out_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


def test_second_process_on_the_same_out_is_refused(tmp_path, monkeypatch, capsys):
    """item 4: while one process works in --out, a second reproduce (or any command) on it is
    refused at once, exit 2, naming --out and the holder, and writes nothing."""
    import lsa_theory.experiments.reproduce as rp

    monkeypatch.setattr(rp, "PARTS", {"a": _json_part("a")})
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        rc, _, err = _run(["reproduce", "--out", str(tmp_path)], capsys)
        assert rc == 2
        _one_line(err, "--out", str(tmp_path), f"pid {holder.pid}", "in use")
        assert not (tmp_path / "summary.json").exists() and not (tmp_path / "a").exists()
        rc, _, err = _run(["diversity", "--quick", "--out", str(tmp_path)], capsys)
        assert rc == 2 and not (tmp_path / "provenance.json").exists()
    finally:
        holder.kill()
        holder.wait()
    assert _run(["reproduce", "--out", str(tmp_path)], capsys)[0] == 0  # released with the process


def test_lock_is_reentrant_in_one_process(tmp_path):
    with eio.out_lock(tmp_path), eio.out_lock(tmp_path / "."):
        pass
    with eio.out_lock(tmp_path):
        pass


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_truncated_state_files_are_named(tmp_path, monkeypatch, capsys):
    """item 11: provenance.json and summary.json cut in half: exit 2, one line naming the file
    and how to recompute."""
    import lsa_theory.experiments.reproduce as rp

    monkeypatch.setattr(rp, "PARTS", {"a": _json_part("a")})
    assert _run(["reproduce", "--out", str(tmp_path)], capsys)[0] == 0
    for name in ("summary.json", "provenance.json"):
        backup = (tmp_path / name).read_bytes()
        _truncate(tmp_path / name)
        rc, _, err = _run(["reproduce", "--out", str(tmp_path)], capsys)
        assert rc == 2
        _one_line(err, str(tmp_path / name), "not valid JSON", "delete it")
        (tmp_path / name).write_bytes(backup)


def test_truncated_converge_and_control_results_are_named(tmp_path):
    """item 11: converge.json, control.json (not JSON) and control.npz (was BadZipFile, no name)."""
    from lsa_theory.experiments.control import ControlConfig, run_control
    from lsa_theory.experiments.converge import ConvergeConfig, run_converge

    (tmp_path / "cv").mkdir()
    (tmp_path / "cv" / "converge.json").write_text('{"runs": [')
    with pytest.raises(eio.DamagedFile, match=r"converge\.json: not valid JSON"):
        run_converge(ConvergeConfig.quick("sarsa"), tmp_path / "cv")
    ct = tmp_path / "ct"
    ct.mkdir()
    eio.atomic_savez(ct / "control.npz", x=np.arange(100.0))
    (ct / "control.json").write_text("{")
    with pytest.raises(eio.DamagedFile, match=r"control\.json: not valid JSON"):
        run_control(ControlConfig.quick(), ct)
    eio.atomic_write_json(ct / "control.json", {"units": []})
    _truncate(ct / "control.npz")
    with pytest.raises(eio.DamagedFile, match=r"control\.npz: not a readable \.npz"):
        run_control(ControlConfig.quick(), ct)


def _tiny_train_config():
    from lsa_theory.experiments.training import TrainConfig

    return TrainConfig.quick().replace(steps=4, checkpoint_every=2, log_every=2, k=4, frames=3)


def test_truncated_checkpoint_is_named(tmp_path):
    """item 11: a checkpoint cut in half: DamagedFile naming it (was OSError/RuntimeError from
    torch.load with no hint)."""
    from lsa_theory.experiments.training import CHECKPOINT, train

    cfg = _tiny_train_config()
    train(cfg, tmp_path, stop_at=2)
    _truncate(tmp_path / CHECKPOINT)
    with pytest.raises(eio.DamagedFile, match=rf"{CHECKPOINT}: not a readable checkpoint"):
        train(cfg, tmp_path)


class _Payload:
    """Pickles to a call of :func:`_payload_ran`: what a hostile checkpoint would carry."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (_payload_ran, (self.marker,))


def _payload_ran(marker: str):
    Path(marker).write_text("code from a checkpoint ran")
    return {}


@pytest.mark.parametrize("module", ["training", "pretrain"])
def test_checkpoint_with_pickled_code_is_refused_not_run(tmp_path, module):
    """item 12: checkpoints load weights only; pickled code in one is refused (DamagedFile
    naming it), never executed."""
    import importlib

    import torch

    CHECKPOINT = importlib.import_module(f"lsa_theory.experiments.{module}").CHECKPOINT
    marker = tmp_path / "ran"
    out = tmp_path / "out"
    out.mkdir()
    torch.save({"config": _Payload(str(marker)), "step": 0}, out / CHECKPOINT)
    torch.load(out / CHECKPOINT, weights_only=False)  # the payload works when unpickled
    assert marker.exists()
    marker.unlink()
    if module == "training":
        from lsa_theory.experiments.training import train

        call = lambda: train(_tiny_train_config(), out)  # noqa: E731
    else:
        from lsa_theory.experiments.pretrain import PretrainConfig, train_rl

        call = lambda: train_rl(PretrainConfig.quick().replace(k=4, batch_mdps=4, steps=2, heldout_k=2), out)  # noqa: E731
    with pytest.raises(eio.DamagedFile, match=rf"{CHECKPOINT}: not a weights-only checkpoint, refused"):
        call()
    assert not marker.exists()


# --------------------------------------------------------------------------------------------------
# item 13: durable atomic writes
# --------------------------------------------------------------------------------------------------


def test_atomic_writes_fsync_file_before_and_directory_after_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", "dir" if os.path.isdir(f"/proc/self/fd/{fd}") else "file"))
        real_fsync(fd)

    def replace(a, b):
        events.append(("replace", Path(b).name))
        real_replace(a, b)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    eio.atomic_write_json(tmp_path / "a.json", {"x": 1})
    eio.atomic_savez(tmp_path / "b.npz", x=np.ones(3))
    one = [("fsync", "file"), ("replace", "a.json"), ("fsync", "dir")]
    assert events == one + [("fsync", "file"), ("replace", "b.npz"), ("fsync", "dir")]


# --------------------------------------------------------------------------------------------------
# items 5, 10, 19: --out, filesystem errors, messages naming flag and file
# --------------------------------------------------------------------------------------------------


def test_empty_out_is_refused_and_writes_nothing(tmp_path, monkeypatch, capsys):
    """item 5: --out '' wrote into the current directory."""
    monkeypatch.chdir(tmp_path)
    for argv in (["converge", "--quick", "--out", ""], ["reproduce", "--out", " "]):
        rc, _, err = _run(argv, capsys)
        assert rc == 2
        _one_line(err, "--out")
    assert list(tmp_path.iterdir()) == []


def test_out_under_a_file_is_refused(tmp_path, capsys):
    """item 19: --out FILE/sub named neither the flag nor the file."""
    f = tmp_path / "file"
    f.write_text("x")
    rc, _, err = _run(["converge", "--quick", "--out", str(f / "sub")], capsys)
    assert rc == 2
    _one_line(err, "--out", str(f), "not a directory")


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT])
def test_filesystem_errors_are_exit_2_naming_the_path(tmp_path, monkeypatch, capsys, code):
    """item 10: a full disk (also filling mid-run: the first write succeeds), a read-only
    filesystem, no permission: exit 2, one line naming the file (was a traceback, exit 1); the
    temporary file is removed and the earlier result is intact."""
    import lsa_theory.experiments.reproduce as rp

    real_fsync = os.fsync

    def fsync(fd):  # the disk fills up between the first document and the second
        if ".second.json." in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(code, os.strerror(code))
        real_fsync(fd)

    def part(out, quick, seed):
        eio.atomic_write_json(out / "first.json", {"a": 1})
        eio.atomic_write_json(out / "second.json", {"b": 2})
        return {}

    monkeypatch.setattr(rp, "PARTS", {"p": part})
    monkeypatch.setattr(os, "fsync", fsync)
    rc, _, err = _run(["reproduce", "--out", str(tmp_path)], capsys)
    assert rc == 2
    err = "\n".join(line for line in err.splitlines() if not line.startswith("reproduce: "))  # progress
    _one_line(err, str(tmp_path / "p" / "second.json"), os.strerror(code))
    assert json.loads((tmp_path / "p" / "first.json").read_text())["a"] == 1
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["first.json"]


@pytest.mark.parametrize(
    "exc",
    [
        PermissionError(errno.EACCES, "Permission denied", "/x/fig.png"),
        OSError(errno.EROFS, "Read-only file system", "/x/y.npz"),
        FileNotFoundError(errno.ENOENT, "No such file or directory", "/x/gone.json"),
    ],
)
def test_every_command_maps_filesystem_errors_to_exit_2(monkeypatch, capsys, exc):
    import lsa_theory.experiments.diversity as dv

    def boom(*a, **k):
        raise exc

    monkeypatch.setattr(dv, "run_diversity", boom)
    rc, _, err = _run(["diversity", "--quick"], capsys)
    assert rc == 2
    _one_line(err, exc.filename, exc.strerror)


def test_permission_denied_out_is_refused_before_work(tmp_path, monkeypatch, capsys):
    """item 10: an --out whose nearest existing ancestor is not writable."""
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == tmp_path else real(p, mode))
    rc, _, err = _run(["converge", "--quick", "--out", str(tmp_path / "new" / "deeper")], capsys)
    assert rc == 2
    _one_line(err, "--out", str(tmp_path), "not writable")
    assert not (tmp_path / "new").exists()


def test_weights_that_are_not_an_npz_name_the_flag_and_file(tmp_path, monkeypatch, capsys):
    """item 19: --weights pointing at a non-zip file (was numpy's pickle advice, no file name)."""
    import lsa_theory.experiments.control as ct

    monkeypatch.setattr(ct, "run_control", lambda *a, **k: pytest.fail("ran with bad weights"))
    w = tmp_path / "w.npz"
    w.write_text("not a zip")
    rc, _, err = _run(["control", "--quick", "--weights", str(w), "--out", str(tmp_path / "o")], capsys)
    assert rc == 2
    _one_line(err, "--weights", str(w), "not a readable .npz", "not a zip archive")  # no unpickling advice
    np.savez(tmp_path / "p.npz", P=np.eye(3))
    rc, _, err = _run(["control", "--quick", "--weights", str(tmp_path / "p.npz")], capsys)
    assert rc == 2
    _one_line(err, "--weights", "'V'")
    rc, _, err = _run(["control", "--quick", "--updates", "0", "--out", str(tmp_path / "o")], capsys)
    assert rc == 2 and "n_updates" in err  # refused before provenance.json is written
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "arrays, needle",
    [
        ({"P": (2,), "V": (3,)}, "needs both of shape (H, D, D)"),  # H of P and V differ
        ({"P": (2,), "V": (2,), "attention": "gelu"}, "array 'attention' must be a 0-d string"),
        ({"P": (2, 14), "V": (2, 14)}, "the environment needs (110, 110)"),  # heads of another D
    ],
    ids=["unequal-H", "unknown-attention", "wrong-D"],
)
def test_malformed_multi_head_weights_are_refused_before_work(tmp_path, monkeypatch, capsys, arrays, needle):
    """issue 23: a multi-head --weights .npz (P, V of shape (H, D, D), optional 0-d 'attention') that
    does not resolve to a block of the held-out family is one line naming --weights and the file,
    exit 2, nothing written."""
    import lsa_theory.experiments.control as ct

    monkeypatch.setattr(ct, "run_control", lambda *a, **k: pytest.fail("ran with bad weights"))
    built = {}
    for key, spec in arrays.items():
        if key == "attention":
            built[key] = np.array(spec)
        else:
            H, D = spec if len(spec) == 2 else (spec[0], 110)
            built[key] = np.zeros((H, D, D))
    w = tmp_path / "heads.npz"
    np.savez(w, **built)
    rc, _, err = _run(["control", "--quick", "--weights", str(w), "--out", str(tmp_path / "o")], capsys)
    assert rc == 2
    _one_line(err, "--weights", str(w), needle)
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------------------------------
# items 14, 19, 20: sweep
# --------------------------------------------------------------------------------------------------

SMALL = '[sweep]\nkind = "control"\nout = "unused"\n[grid]\nseed = [0, 1]\nn_updates = [20]\n'


def test_refused_sweep_writes_nothing_and_reruns_with_another_spelling(tmp_path, monkeypatch, capsys):
    """item 14: a refused sweep created --out and provenance.json; the same sweep was then refused
    with its config spelled ./x.toml (advice: --reuse, which sweep rejected)."""
    monkeypatch.chdir(tmp_path)
    Path("x.toml").write_text(SMALL)
    rc, _, err = _run(["sweep", "x.toml", "--out", "o", "--max-jobs", "1"], capsys)
    assert rc == 2 and "max_jobs" in err and not Path("o").exists()
    assert _run(["sweep", "x.toml", "--out", "o", "--limit", "0"], capsys)[0] == 0
    rc, _, err = _run(["sweep", "./x.toml", "--out", "o", "--limit", "0"], capsys)
    assert rc == 0, err
    prov = json.loads(Path("o/provenance.json").read_text())
    assert prov["config_hash"] == eio.config_hash(
        {"kind": "control", "grid": {"seed": [0, 1], "n_updates": [20]}}
    )


def test_sweep_takes_seed_and_threads(tmp_path, capsys):
    """item 14: README: every command takes --seed and --threads; sweep's --seed S shifts every
    job's seed by S."""
    cfg = tmp_path / "x.toml"
    cfg.write_text(SMALL)
    out = tmp_path / "o"
    rc, _, err = _run(
        ["sweep", str(cfg), "--out", str(out), "--limit", "0", "--seed", "5", "--threads", "1"], capsys
    )
    assert rc == 0, err
    doc = json.loads((out / "sweep.json").read_text())
    assert [j["params"]["seed"] for j in doc["jobs"]] == [5, 6]
    assert json.loads((out / "provenance.json").read_text())["seed"] == 5
    rc, _, err = _run(["sweep", str(cfg), "--threads", "0"], capsys)
    assert rc == 2 and "--threads" in err


@pytest.mark.parametrize(
    "grid, needle",
    [
        ('env = ["NoSuchEnv-v0"]', "grid.env"),
        ('weights = ["/nonexistent.npz"]', "grid.weights"),
        ("seed = [-1]", "grid.seed"),
    ],
)
def test_sweep_scan_refuses_values_that_would_fail_in_their_jobs(tmp_path, capsys, grid, needle):
    """item 20: the scan accepted them; they failed only when their jobs ran."""
    cfg = tmp_path / "x.toml"
    cfg.write_text(f'[sweep]\nkind = "control"\n[grid]\n{grid}\n')
    rc, _, err = _run(["sweep", str(cfg), "--out", str(tmp_path / "o")], capsys)
    assert rc == 2
    _one_line(err, needle)
    assert not (tmp_path / "o").exists()


def test_converge_sweep_refuses_a_negative_seed(tmp_path, capsys):
    cfg = tmp_path / "x.toml"
    cfg.write_text('[sweep]\nkind = "converge"\n[grid]\nseed = [-1]\n')
    rc, _, err = _run(["sweep", str(cfg), "--out", str(tmp_path / "o")], capsys)
    assert rc == 2
    _one_line(err, "grid.seed")


def test_non_utf8_sweep_config_names_the_file(tmp_path, capsys):
    """item 19: the message named neither the config nor its file."""
    cfg = tmp_path / "x.toml"
    cfg.write_bytes(b"\xff\xfe[sweep]\n")
    rc, _, err = _run(["sweep", str(cfg)], capsys)
    assert rc == 2
    _one_line(err, "config", str(cfg), "UTF-8")


def test_dask_address_that_does_not_answer_is_refused_fast(tmp_path, capsys):
    """item 19: a dask address nothing listens on: one line naming --address within seconds
    (was a 30 s traceback), nothing written."""
    import socket

    with socket.socket() as s:  # a port nobody listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        cfg = tmp_path / "x.toml"
        cfg.write_text(SMALL)
        cli.build_parser()  # the imports of the command line are not what is timed
        t0 = time.perf_counter()
        rc, _, err = _run(
            ["sweep", str(cfg), "--executor", "dask", "--address", f"tcp://127.0.0.1:{port}",
             "--out", str(tmp_path / "o")],
            capsys,
        )  # fmt: skip
    assert rc == 2 and time.perf_counter() - t0 < 10
    _one_line(err, "--address", f"tcp://127.0.0.1:{port}")
    assert not (tmp_path / "o").exists()


def test_dask_address_answered_by_something_else_is_refused(tmp_path, capsys):
    """item 19: a peer that accepts the connection but is no dask scheduler (here: replies with
    garbage) ended in a traceback (a 3 EiB allocation); now one line naming --address."""
    import socket
    import threading

    pytest.importorskip("dask.distributed")
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve():
        for _ in range(4):
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"\xff" * 64)

    threading.Thread(target=serve, daemon=True).start()
    cfg = tmp_path / "x.toml"
    cfg.write_text(SMALL)
    try:
        rc, _, err = _run(
            ["sweep", str(cfg), "--executor", "dask", "--address", f"127.0.0.1:{port}",
             "--out", str(tmp_path / "o")],
            capsys,
        )  # fmt: skip
    finally:
        server.close()
    assert rc == 2
    _one_line(err, "--address", f"127.0.0.1:{port}", "no dask scheduler")
    assert not (tmp_path / "o").exists()


def test_pretrain_with_an_impossible_k_is_refused_at_once(tmp_path, monkeypatch, capsys):
    """item 20: --k 1000000000 was not refused and printed nothing for minutes."""
    import lsa_theory.experiments.pretrain.compare as pc

    monkeypatch.setattr(pc, "run_pretrain", lambda *a, **k: pytest.fail("ran"))
    cli.build_parser()  # the imports of the command line are not what is timed
    t0 = time.perf_counter()
    rc, _, err = _run(["pretrain", "--k", "1000000000", "--steps", "1", "--out", str(tmp_path / "o")], capsys)
    assert rc == 2 and time.perf_counter() - t0 < 5
    _one_line(err, "--k", "GiB")
    assert not (tmp_path / "o").exists()
    for argv in (["pretrain", "--k", "0"], ["pretrain", "--steps", "0"]):
        rc, _, err = _run(argv, capsys)
        assert rc == 2 and argv[1] in err


# --------------------------------------------------------------------------------------------------
# items 21, 22: complex and bool inputs, TD-family loop scalars
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("C", [np.eye(2) * (1 + 1e-3j), np.eye(2).astype(complex), np.eye(2, dtype=bool)])
def test_td_constructions_refuse_complex_and_bool_C(C):
    from lsa_theory import constructions
    from lsa_theory.constructions.algorithms.td_precond import td_precond

    for fn in (lambda: constructions.td(2, 0.1, C), lambda: td_precond(2, 0.1, [C, C])):
        with pytest.raises(ValueError, match=r"^C: expected a real numeric array"):
            fn()


def test_dynamics_entry_points_refuse_complex_theta():
    from lsa_theory import dynamics as dy

    ds = dy.teacher_dataset(dy.TeacherSpec(k=4, frames=5), np.random.default_rng(0))
    theta = dy.construction(ds).astype(complex)
    with pytest.raises(ValueError, match=r"^theta: .*complex"):
        dy.loss_and_grad(ds, theta)
    with pytest.raises(ValueError, match=r"^theta0: .*complex"):
        dy.gradient_flow(ds, theta + 1e-3j, t_max=1.0)


@pytest.mark.parametrize(
    "kw, needle",
    [
        (dict(lam=1.5), "^lam: must be <= 1"),
        (dict(lam=-0.1), "^lam: must be >= 0"),
        (dict(gamma=1.0), "^gamma: must be < 1"),
        (dict(gamma=2.0), "^gamma: must be < 1"),
        (dict(alpha=1j), "^alpha: expected real"),
        (dict(r=[1.0, True]), "^r: expected real"),
    ],
)
def test_td_family_naive_loops_check_their_scalars_by_name(kw, needle):
    from lsa_theory.constructions.algorithms.td_average_reward import naive_average_reward_td
    from lsa_theory.constructions.algorithms.td_lambda import naive_batch_td_lambda
    from lsa_theory.constructions.algorithms.td_precond import naive_precond_td

    phi = [[1.0, 0.0], [0.0, 1.0]]
    a = {"gamma": 0.5, "alpha": 0.1, "lam": 0.5, "r": [1.0, 2.0], **kw}
    with pytest.raises(ValueError, match=needle):
        naive_batch_td_lambda(phi, phi, a["r"], a["gamma"], a["alpha"], a["lam"])
    if "lam" not in kw:
        with pytest.raises(ValueError, match=needle):
            naive_precond_td(phi, phi, a["r"], a["gamma"], a["alpha"], [np.eye(2).tolist()])
    if "lam" not in kw and "gamma" not in kw:
        with pytest.raises(ValueError, match=needle):
            naive_average_reward_td(phi, phi, a["r"], a["alpha"])


# --------------------------------------------------------------------------------------------------
# item 15: Ctrl-C on sweep stops at once and says what is kept; pool workers die with the sweep
# --------------------------------------------------------------------------------------------------

_SLOW_SWEEP = """[sweep]
kind = "control"
[grid]
env = ["random-S9-A4"]
seed = [0, 1, 2]
n_updates = [20, 200000]
"""


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (from /proc: the forkserver and the pool workers under it)."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.add(c)
            todo.append(c)
    return out


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
@pytest.mark.parametrize("sig", ["SIGINT", "SIGKILL"])
def test_sweep_interrupt_or_kill_ends_its_pool_workers(tmp_path, sig):
    """item 15: SIGINT on the sweep's main process waited ~28 s, silent, for the running jobs;
    SIGKILL of the main process (an out-of-memory kill) left the pool workers running. Now SIGINT:
    exit 130 within a few seconds, stderr says what was cancelled and which jobs are kept; either
    signal: every process under the sweep is gone within a few seconds."""
    import signal

    config = tmp_path / "s.toml"
    config.write_text(_SLOW_SWEEP)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    argv = [sys.executable, "-m", "lsa_theory.cli", "sweep", str(config), "--workers", "2"]
    argv += ["--out", str(out)]
    log = tmp_path / "stderr.txt"  # a file, not a pipe: surviving workers would hold a pipe open
    with open(log, "w") as fh:
        proc = subprocess.Popen(argv, stderr=fh, text=True, env=env)
    below: set[int] = set()
    try:
        t0 = time.monotonic()
        while not any((out / "jobs").glob("*.json")):  # the first (20-update) job is done
            assert proc.poll() is None and time.monotonic() - t0 < 180, log.read_text()
            time.sleep(0.2)
        time.sleep(1.0)  # the workers are on 200000-update jobs (minutes each)
        below = _descendants(proc.pid)
        assert len(below) >= 3  # forkserver and two workers (and the resource tracker)
        t1 = time.monotonic()
        proc.send_signal(getattr(signal, sig))
        rc = proc.wait(timeout=60)
        stopped = time.monotonic() - t1
        err = log.read_text()
        deadline = time.monotonic() + 10
        while any(_running(p) for p in below) and time.monotonic() < deadline:
            time.sleep(0.1)
        alive = [p for p in below if _running(p)]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for p in below:  # whatever survived this test (a regression): do not leave it running
            if _running(p):
                os.kill(p, 9)
    assert not alive, (sig, alive)
    if sig == "SIGINT":
        assert rc == 130 and stopped < 10, (rc, stopped, err)
        assert "interrupted: cancelled" in err and "kept in" in err and str(out / "jobs") in err


# --------------------------------------------------------------------------------------------------
# items 17, 18: verify --module says what it is doing, --timeout, errors name the declaration
# --------------------------------------------------------------------------------------------------

_EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "expected_sarsa.py"


def _broken_example(tmp_path: Path, patch: str) -> Path:
    """examples/expected_sarsa.py with one method replaced by a broken one (``patch``: methods of a
    subclass that overrides it)."""
    m = tmp_path / "broken.py"
    m.write_text(_EXAMPLE.read_text() + "\n\nclass Broken(ExpectedSarsa):\n    name = 'broken'\n" + patch)
    return m


@pytest.mark.parametrize(
    "patch, method, needle",
    [
        (  # naive drops one entry: "shapes differ: (8,) vs (9,)" named nothing
            "    def naive(self, inst, hyper, depth):\n"
            "        return super().naive(inst, hyper, depth)[:-1]\n",
            "readout against naive",
            "shapes differ: (9,) vs (8,)",
        ),
        (  # columns with a NaN: "H: contains NaN or inf" named nothing
            "    def columns(self, inst, hyper):\n"
            "        X, last = super().columns(inst, hyper)\n"
            "        return X * float('nan'), last\n",
            "columns",
            "contains NaN or inf",
        ),
        (  # a construction that raises
            "    def construction(self, sizes, hyper, c=1.0, depth=1):\n        raise KeyError('beta')\n",
            "construction",
            "KeyError: 'beta'",
        ),
    ],
)
def test_declaration_errors_name_the_declaration_method_and_sizes(tmp_path, capsys, patch, method, needle):
    """item 18: exit 2, one line naming the declaration, the method and the sizes / hyperparameters
    it was called with."""
    m = _broken_example(tmp_path, patch)
    rc, out, err = _run(["verify", "--module", str(m), "--quick", "--seed", "0"], capsys)
    assert rc == 2 and out == ""
    lines = [line for line in err.splitlines() if not line.startswith("verify: ")]  # progress lines
    line = _one_line("\n".join(lines), "declaration 'broken'", f", {method}:", needle)
    assert "sizes {'S': 3, 'A': 3, 'd': 9, 'n': 20}" in line and "gamma" in line and "depth = 1" in line


def test_verify_module_reports_progress_and_times_out(tmp_path, capsys):
    """item 17: a slow declaration printed nothing for minutes and had no --timeout. Now a line on
    stderr as each level starts, and --timeout ends it with exit 2 and one line naming the
    declaration's level that was running."""
    m = _broken_example(
        tmp_path,
        "    def naive(self, inst, hyper, depth):\n"
        "        import time\n"
        "        time.sleep(0.5)\n"
        "        return super().naive(inst, hyper, depth)\n",
    )
    t0 = time.monotonic()
    rc, out, err = _run(["verify", "--module", str(m), "--quick", "--timeout", "1.5"], capsys)
    assert rc == 2 and out == "" and time.monotonic() - t0 < 10
    assert "verify: expected_sarsa: numeric level" in err and "verify: broken: numeric level" in err
    errors = [line for line in err.splitlines() if not line.startswith("verify: ")]
    _one_line("\n".join(errors), "--timeout: 1.5 s", "broken: numeric level")
    rc, _, err = _run(["verify", "--module", str(m), "--timeout", "0"], capsys)
    assert rc == 2
    _one_line(err, "--timeout")


# --------------------------------------------------------------------------------------------------
# done-when: SIGKILL at a random point of reproduce, rerun, results equal to an uninterrupted run
# --------------------------------------------------------------------------------------------------

#: Parts of the kill test: two cheap ones (about 90 s together on a loaded 2-core machine).
_KILL_PARTS = ["converge-sarsa", "actor-critic-variants"]

#: Keys that hold timings or provenance, not results: left out of the comparison.
_NOT_RESULTS = {"provenance", "seconds", "wall_time", "files", "versions", "git_commit"}


def _results(x):
    """``x`` without timings and provenance (:data:`_NOT_RESULTS`), for an exact comparison."""
    if isinstance(x, dict):
        return {k: _results(v) for k, v in x.items() if k not in _NOT_RESULTS and not k.endswith("_seconds")}
    if isinstance(x, list):
        return [_results(v) for v in x]
    return x


def _reproduce(out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    argv = [sys.executable, "-m", "lsa_theory.cli", "reproduce", "--quick", "--threads", "1"]
    argv += ["--parts", *_KILL_PARTS, "--out", str(out)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.slow
def test_reproduce_killed_at_a_random_point_resumes_to_the_same_results(tmp_path):
    """SIGKILL at a random point (fixed rng: ``default_rng(24)``, uniform over 10-90 % of the
    uninterrupted run's wall time; the point is in the assertion messages) of ``reproduce --quick
    --parts converge-sarsa actor-critic-variants``, then a rerun: every JSON document equals the
    uninterrupted run's (timings and provenance aside) and every .npz array is bitwise equal."""
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    t0 = time.monotonic()
    proc = _reproduce(clean)
    assert proc.wait(timeout=900) == 0, proc.stderr.read()
    wall = time.monotonic() - t0
    at = float(np.random.default_rng(24).uniform(0.1, 0.9)) * wall
    proc = _reproduce(killed)
    time.sleep(at)
    assert proc.poll() is None, "the run ended before the kill"
    proc.kill()
    proc.wait()
    note = f"killed at {at:.1f} s of an uninterrupted {wall:.1f} s"
    print(note, "; summary.json before the rerun:", (killed / "summary.json").exists())
    proc = _reproduce(killed)
    assert proc.wait(timeout=900) == 0, (note, proc.stderr.read())
    files = sorted(p.relative_to(clean) for p in clean.rglob("*") if p.suffix in (".json", ".npz"))
    assert Path("summary.json") in files and len(files) >= 4, files
    for rel in files:
        a, b = clean / rel, killed / rel
        assert b.is_file(), (note, rel)
        if rel.suffix == ".json":
            assert _results(json.loads(a.read_text())) == _results(json.loads(b.read_text())), (note, rel)
        else:
            with np.load(a) as za, np.load(b) as zb:
                assert sorted(za.files) == sorted(zb.files), (note, rel)
                for k in za.files:
                    assert np.array_equal(za[k], zb[k], equal_nan=True), (note, rel, k)


def test_interrupted_regression_resumes_from_its_finished_units(tmp_path, monkeypatch):
    """item 15: regression saved nothing until it finished (an interrupt lost all its work). Now
    each finished unit is kept in ``.regression-units.json`` and a rerun computes only the rest,
    with the same numbers (arrays, NaN and tuples round-trip exactly); the file goes once the
    results are written."""
    import lsa_theory.experiments.regression as rg
    import lsa_theory.experiments.regression.experiment as rx
    import lsa_theory.experiments.regression.stack as rs

    calls = []

    def population_run(cfg, d, N, kappa):
        calls.append(("pop", d, N, kappa))
        row = {"d": d, "N": N, "kappa": kappa, "Lambda": np.diag([1.0, 1 / 3, np.pi])[:d, :d]}
        row |= {"rel_err": 1e-9 / 7, "passed": True, "rate_fit": float("nan"), "M_flow": np.eye(d) / 3}
        row |= {"M_star": np.eye(d) / 7, "loss_final": 0.1 / 3, "loss_star": 0.1 / 3 - 1e-17}
        return row, {"t": np.linspace(0, 1, 5) / 3, "n": np.arange(3)}

    def sampled_runs(cfg):
        calls.append(("sampled",))
        return [{"F": 250, "rel_err": 0.1 / 3, "converged": True}], -0.5 + 1e-3 / 7, np.full((1, 2), 1 / 3)

    def gamma_check(cfg):
        calls.append(("gamma",))
        return {"passed": True, "M_sample": np.eye(3) / 7, "wald": 2.0 / 3}

    interrupt = [True]

    def train_stacks(cfg, Lambda):
        calls.append(("trained",))
        assert isinstance(Lambda, np.ndarray) and Lambda.dtype == np.float64
        if interrupt[0]:
            raise KeyboardInterrupt
        return [{"L": 2, "diverged": False, "test_loss": 1 / 3}], {"trained/L2/loss": np.ones(4) / 3}

    for name, fn in [("population_run", population_run), ("sampled_runs", sampled_runs)]:
        monkeypatch.setattr(rx, name, fn)
    monkeypatch.setattr(rx, "gamma_check", gamma_check)
    monkeypatch.setattr(rs, "train_stacks", train_stacks)
    cfg = rg.RegressionConfig.quick()
    with pytest.raises(KeyboardInterrupt):
        rg.run_regression(cfg, tmp_path / "a")
    assert (tmp_path / "a" / rg.UNITS_FILE).exists() and len(calls) == len(cfg.population) + 3
    calls.clear()
    interrupt[0] = False
    resumed = rg.run_regression(cfg, tmp_path / "a")
    assert calls == [("trained",)]  # only the unit the interrupt cut
    assert not (tmp_path / "a" / rg.UNITS_FILE).exists()
    fresh = rg.run_regression(cfg, tmp_path / "b")
    drop = {"wall_time", "provenance"}
    assert {k: v for k, v in resumed.items() if k not in drop} == {
        k: v for k, v in fresh.items() if k not in drop
    }
    with np.load(tmp_path / "a" / "regression.npz") as a, np.load(tmp_path / "b" / "regression.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        assert all(np.array_equal(a[k], b[k]) and a[k].dtype == b[k].dtype for k in a.files)

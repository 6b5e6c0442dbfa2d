"""Deployment reaches a closed-loop algorithm's construction only through its declaration.

A closed-loop algorithm declared here, whose construction differs from (S3) (a preconditioned step
``Vbar21 = [alpha (I + eta 11^T / d), 0, 0]``), deployed with ``weights="constructed"`` must follow
its own teacher, not SARSA's; the same for the user file ``examples/reward_scaled_sarsa.py`` (kappa
in P12's reward entry). Before the registry route, deployment built (S3) from the layout's shape and
both tests failed (the block followed SARSA, ``max |w - w_teacher|`` of order 0.1).
"""

from pathlib import Path

import numpy as np
import pytest

import lsa_theory as lt
from lsa_theory import constructions
from lsa_theory.constructions.algorithms.sarsa import Sarsa
from lsa_theory.experiments.control import constructed_blocks, deploy

ROOT = Path(__file__).resolve().parents[2]

#: Held-out MDPs of the check, their sizes and loop settings.
N_HELDOUT, S, A, N_UPDATES, N_CTX = 20, 3, 2, 25, 10


class PrecondSarsa(constructions.ClosedLoopAlgorithm):
    """Batch SARSA with the step ``alpha (I + eta 11^T / d)``:
    ``w' = w + (alpha/n) (I + eta 11^T/d) sum_i delta_i phi_i``; construction (S3) but for
    ``Vbar21 = [alpha (I + eta 11^T/d), 0, 0]``."""

    name = "test_precond_sarsa"
    claim = "(PS)"
    statement = "(S3) with a preconditioned Vbar21 = preconditioned batch SARSA"
    hyper = {"gamma": 0.5, "alpha": 0.2, "eta": 0.5}

    def sizes(self, quick):
        return {"S": 2, "A": 2, "d": 4, "n": 5}

    def draw(self, sizes, rng):
        return Sarsa().draw(sizes, rng)

    def columns(self, inst, hyper):
        return Sarsa().columns(inst, hyper)

    def naive(self, inst, hyper, depth):
        raise NotImplementedError  # not needed for deployment

    def construction(self, sizes, hyper, c=1.0, depth=1):
        d = sizes["d"]
        P, V = constructions.sarsa(d, hyper["alpha"], c)
        m = 2 * d + 1
        V[m + 1 :, :d] = hyper["alpha"] / c * (np.eye(d) + hyper["eta"] * np.ones((d, d)) / d)
        return [(P, V)] * depth

    def readout(self, out, sizes):
        return out[-sizes["d"] :, -1]

    def dims(self, S, A, d=None, d_pi=None):
        return constructions.Dims(S * A if d is None else d)

    def teacher(self, hyper):
        alpha, eta = hyper["alpha"], hyper["eta"]

        def update(X, g, w, lam):
            step = lt.sarsa_update(X, w, alpha) - w
            return w + step + eta * step.sum() / w.size, None

        return update


def _follow(alg, hyper=None):
    """``max_t |w_block - w_teacher| / max(1, |w_teacher|)`` over the 20 held-out loops, and the
    same for SARSA's (S3) block against this teacher (must not be small: the check can fail)."""
    worst, worst_s3 = 0.0, 0.0
    for i in range(N_HELDOUT):
        mdp = lt.random_mdp(S, A, 0.9, np.random.default_rng([7, i]))
        kw = dict(n=N_CTX, n_updates=N_UPDATES, epsilon=0.1, alpha=0.2, eval_every=5, algo=alg, hyper=hyper)
        runs = {
            w: deploy(mdp, w, rng=np.random.default_rng([8, i]), **kw) for w in ("constructed", "teacher")
        }
        s3 = deploy(
            mdp, "constructed", rng=np.random.default_rng([8, i]), **{**kw, "algo": "sarsa", "hyper": None}
        )
        b, t = runs["constructed"], runs["teacher"]
        assert b.diverged_at is None and t.diverged_at is None
        scale = max(1.0, float(np.abs(t.ws).max()))
        worst = max(worst, float(np.abs(b.ws - t.ws).max()) / scale)
        worst_s3 = max(worst_s3, float(np.abs(s3.ws - t.ws).max()) / scale)
    return worst, worst_s3


def test_a_declared_construction_is_deployed_not_s3():
    worst, worst_s3 = _follow(PrecondSarsa())
    assert worst <= 1e-9, worst
    assert worst_s3 > 1e-3, worst_s3  # (S3) does not follow this teacher


def test_the_user_file_reward_scaled_sarsa_is_deployed_with_its_own_construction():
    (alg,) = constructions.load_module(ROOT / "examples" / "reward_scaled_sarsa.py")
    for kappa in (2.0, 0.5):
        worst, worst_s3 = _follow(alg, {"kappa": kappa})
        assert worst <= 1e-9, (kappa, worst)
        assert worst_s3 > 1e-3, (kappa, worst_s3)


@pytest.mark.parametrize("d", [1, 4])
def test_sparse_blocks_come_from_the_declaration(d):
    """Above the dense limit the blocks are the declaration's: its own sparse form where it has a
    current one, else its dense construction converted; never SARSA's sparse (S3)."""
    layout = lt.Layout(d)
    for alg in (PrecondSarsa(), constructions.ALGORITHMS["sarsa"]):
        dense = constructed_blocks(layout, 0.3, algo=alg)
        sparse = constructed_blocks(layout, 0.3, algo=alg, dense_max_D=0)
        assert sparse.P is None
        for k in ("P12", "P22", "Vbar21", "Vbar22"):
            np.testing.assert_array_equal(getattr(dense, k).toarray(), getattr(sparse, k).toarray())


class _ChangedConstruction(Sarsa):
    """A subclass that changes the construction and not the sparse form it inherits."""

    name = "test_changed_sarsa"

    def construction(self, sizes, hyper, c=1.0, depth=1):
        P, V = super().construction(sizes, hyper, c, 1)[0]
        return [(2.0 * P, V / 2.0)] * depth


def test_an_inherited_sparse_form_is_not_used_for_a_changed_construction():
    alg = _ChangedConstruction()
    assert not alg.sparse_form_is_current()
    assert constructions.ALGORITHMS["sarsa"].sparse_form_is_current()
    dims = constructions.Dims(3)
    P, _ = alg.construction_blocks(dims, {"alpha": 0.2}, sparse=True)
    np.testing.assert_array_equal(P.toarray(), alg.construction_blocks(dims, {"alpha": 0.2})[0])


def test_deploy_refuses_hyper_that_shadows_its_own_arguments():
    mdp = lt.random_mdp(2, 2, 0.9, np.random.default_rng(0))
    kw = dict(n=5, n_updates=2, epsilon=0.1, alpha=0.2, eval_every=1, rng=np.random.default_rng(1))
    with pytest.raises(ValueError, match="hyper: 'alpha'"):
        deploy(mdp, "constructed", hyper={"alpha": 0.3}, **kw)
    with pytest.raises(ValueError, match="hyper: expected a mapping"):
        deploy(mdp, "constructed", hyper=[1], **kw)


# ------------------------------------------------------------------ the command line, --module
def _control(argv, capsys):
    from lsa_theory import cli

    rc = cli.main(["control", *argv])
    return rc, capsys.readouterr()


def test_control_module_deploys_the_users_declaration(capsys):
    import json

    example = str(ROOT / "examples" / "reward_scaled_sarsa.py")
    argv = ["--module", example, "--algo", "reward_scaled_sarsa", "--weights", "constructed"]
    rc, out = _control([*argv, "--quick", "--updates", "20", "--json"], capsys)
    doc = json.loads(out.out)
    assert rc == 0 and doc["passed"]
    assert {e["algo"] for e in doc["envs"]} == {"reward_scaled_sarsa"}
    for e in doc["envs"]:
        assert {"normalized_return", "normalized_return_teacher", "max_w_diff"} <= set(e)
        assert e["max_w_rel_diff_before_mismatch"] <= 1e-9


def test_a_users_file_is_imported_once_per_content(tmp_path, capsys):
    """``control --module`` reads the user's file for its configuration, every unit and the
    provenance, and runs its code once (it ran it 6 times); an edited file is imported afresh."""
    counter = tmp_path / "imports.txt"
    user = tmp_path / "mine.py"
    user.write_text(
        (ROOT / "examples" / "reward_scaled_sarsa.py").read_text()
        + f"\nimport pathlib as _p\n_f = _p.Path({str(counter)!r})\n"
        + "_f.write_text((_f.read_text() if _f.exists() else '') + 'x')\n"
    )
    argv = ["--module", str(user), "--algo", "reward_scaled_sarsa", "--weights", "constructed"]
    rc, _ = _control([*argv, "--quick", "--updates", "2", "--json"], capsys)
    assert rc == 0 and counter.read_text() == "x"
    constructions.load_module(user)
    assert counter.read_text() == "x"
    user.write_text(user.read_text() + "\n# edited\n")
    constructions.load_module(user)
    assert counter.read_text() == "xx"


def test_control_module_with_a_construction_that_is_not_its_teacher_exits_1(tmp_path, capsys):
    """Mutation: the user's file deploys plain (S3) (no kappa in P12) against its kappa teacher."""
    text = (ROOT / "examples" / "reward_scaled_sarsa.py").read_text()
    broken = text.replace('P[2 * d, 2 * d + 1] = hyper["kappa"] * c', "P[2 * d, 2 * d + 1] = c")
    assert broken != text
    path = tmp_path / "broken.py"
    path.write_text(broken)
    argv = ["--module", str(path), "--algo", "reward_scaled_sarsa", "--quick", "--updates", "5", "--json"]
    rc, _ = _control(argv, capsys)
    assert rc == 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--algo", "no_such_algo"], "--algo: expected a registered closed-loop algorithm"),
        (["--module", "__clash__", "--algo", "sarsa"], "the name of a registered algorithm"),
        (["--module", "__missing__.py", "--algo", "x"], "module:"),
    ],
)
def test_control_module_refusals_are_one_line_exit_2(tmp_path, capsys, argv, message):
    if "__clash__" in argv:
        text = (ROOT / "examples" / "reward_scaled_sarsa.py").read_text()
        clash = tmp_path / "clash.py"
        clash.write_text(text.replace('name = "reward_scaled_sarsa"', 'name = "sarsa"'))
        argv = [str(clash) if a == "__clash__" else a for a in argv]
    out_dir = tmp_path / "out"
    rc, out = _control([*argv, "--quick", "--out", str(out_dir)], capsys)
    assert rc == 2 and message in out.err
    assert len(out.err.strip().splitlines()) == 1
    assert not out_dir.exists()


# ------------------------------------------------------------------------ converge, --module
def _converge_one(module):
    from lsa_theory.experiments.converge import ConvergeConfig, run_converge
    from lsa_theory.experiments.criteria import converge_passed

    cfg = ConvergeConfig(
        algo="reward_scaled_sarsa",
        module=str(module),
        seeds=(0,),
        scales=(-2.0,),
        radii=(1e-2,),
        noise=(),
        sweep_radii=(),
    )
    doc = run_converge(cfg)
    return doc, [converge_passed(r) for r in doc["runs"]]


def test_converge_module_flows_to_the_users_construction():
    doc, passed = _converge_one(ROOT / "examples" / "reward_scaled_sarsa.py")
    assert passed == [True], doc["runs"]
    assert doc["config"]["module_sha256"]
    assert doc["runs"][0]["dist_final"] < 1e-8


@pytest.mark.slow
def test_converge_module_with_a_construction_that_is_not_its_teacher_fails(tmp_path):
    """Mutation: the declared construction is plain (S3) while the teacher data are kappa's: the
    construction is not a zero of the loss, the runs fail."""
    text = (ROOT / "examples" / "reward_scaled_sarsa.py").read_text()
    path = tmp_path / "broken.py"
    path.write_text(text.replace('P[2 * d, 2 * d + 1] = hyper["kappa"] * c', "P[2 * d, 2 * d + 1] = c"))
    _, passed = _converge_one(path)
    assert passed == [False]


def test_converge_refuses_an_unknown_algo_in_one_line(tmp_path, capsys):
    from lsa_theory import cli

    out_dir = tmp_path / "out"
    rc = cli.main(["converge", "--algo", "no_such_algo", "--quick", "--out", str(out_dir)])
    err = capsys.readouterr().err
    assert rc == 2 and "--algo" in err and len(err.strip().splitlines()) == 1
    assert not out_dir.exists()

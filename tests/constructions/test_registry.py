"""The algorithm registry: every declaration's identity at every level, mutations caught,
user modules from outside the package (docs/extending.md)."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings

from lsa_theory import constructions
from lsa_theory.constructions import derive
from lsa_theory.constructions.registry import Registry, instance_hyper

ROOT = pathlib.Path(__file__).resolve().parents[2]
NAMES = constructions.ALGORITHMS.names()


def test_registry_has_the_package_algorithms():
    assert {"sarsa", "actor_critic", "actor_critic_q", "td"} <= set(NAMES)
    assert constructions.ALGORITHMS["actor_critic"].critic == "state"
    assert constructions.ALGORITHMS["actor_critic_q"].critic == "action"


@pytest.mark.parametrize("name", NAMES)
def test_property_sweep_against_the_naive_loop(name):
    """Hypothesis sweep of sizes, hyperparameters and instances: readout = naive loop to 1e-12
    at every declared depth and scale; the invariant entries change by exactly 0."""
    alg = constructions.ALGORITHMS[name]

    @settings(max_examples=25, deadline=None)
    @given(derive.instances(alg))
    def check(case):
        sizes, inst, hyper = case
        for L in alg.depths:
            for c in alg.scales:
                res = derive.residuals(alg, inst, sizes, hyper, c=c, depth=L)
                assert res.readout <= derive.READOUT_TOL
                assert res.invariant == 0.0
                if not np.isnan(res.teacher):
                    assert res.teacher <= derive.READOUT_TOL

    check()


@pytest.mark.parametrize("name", NAMES)
def test_sympy_identity_holds(name):
    alg = constructions.ALGORITHMS[name]
    for L in alg.symbolic_depths or alg.depths[:2]:
        proof = derive.prove(alg, depth=L)
        assert proof.holds and proof.n_entries > 0, proof


def _perturb_first_layer(layers, symbolic: bool):
    """Copy ``layers`` with the first non-zero entry of the first layer's first matrix changed
    (times 1 + 1e-3 numerically, doubled symbolically); layers may nest (two heads per layer)."""
    dtype = object if symbolic else float

    def copy(x):
        if isinstance(x, tuple | list):
            return type(x)(copy(v) for v in x) if isinstance(x, tuple) else [copy(v) for v in x]
        return np.array(x, dtype=dtype)

    layers = [copy(layer) for layer in layers]

    def leaves(x):
        if isinstance(x, tuple | list):
            for v in x:
                yield from leaves(v)
        else:
            yield x

    M = next(iter(leaves(layers[0])))
    i, j = np.argwhere(M != 0)[0]
    M[i, j] = M[i, j] * 2 if symbolic else M[i, j] * (1 + 1e-3)
    return layers


class _Perturbed:
    """A declaration's one construction with one entry of the first layer perturbed (times
    ``1 + 1e-3`` on floats, doubled on symbols: the same mutation reaches both backends)."""

    def __init__(self, alg):
        self.alg = alg

    def __call__(self, sizes, hyper, c=1.0, depth=1):
        layers = self.alg.__class__.construction(self.alg, sizes, hyper, c, depth)
        exact = any(np.asarray(M).dtype == object for M in _leaves(layers))
        return _perturb_first_layer(layers, exact)


def _leaves(x):
    if isinstance(x, tuple | list):
        return [leaf for v in x for leaf in _leaves(v)]
    return [x]


@pytest.mark.parametrize("name", NAMES)
def test_a_perturbed_construction_fails_every_level(name, rng):
    """One construction for both backends: perturbing it fails the float rows and the exact proof."""
    alg = constructions.ALGORITHMS[name]
    bad = type(alg)()
    bad.construction = _Perturbed(alg)
    sizes = alg.sizes(quick=True)
    res = derive.residuals(bad, alg.draw(sizes, rng), sizes)
    assert res.readout > 1e-6
    assert not derive.prove(bad).holds
    rows = derive.verify_rows(bad, rng, quick=True, k=2)
    assert not all(r.passed for r in rows)
    assert not [r for r in rows if "sympy" in r.check][0].passed


def test_the_package_writes_each_construction_once():
    """No package declaration keeps a second (sympy) construction: ``construction_symbolic`` is the
    registry's default (the one ``construction``), and no ``pair_symbolic``/``stack_symbolic``."""
    from lsa_theory.constructions.registry import Algorithm

    for alg in constructions.ALGORITHMS.values():
        assert type(alg).construction_symbolic is Algorithm.construction_symbolic, alg.name
        assert not hasattr(alg, "pair_symbolic") and not hasattr(alg, "stack_symbolic"), alg.name


def _sympy_sarsa(d, alpha, c):
    """(S3)/(S4) written by hand as sympy matrices (a user's separate sympy construction)."""
    import sympy as sp

    lay = constructions.sarsa(d, 1.0)[0].shape[0]
    P, V = sp.zeros(lay, lay), sp.zeros(lay, lay)
    for j in range(d):
        P[j, 2 * d + 2 + j], P[d + j, 2 * d + 2 + j], V[2 * d + 2 + j, j] = -c, c, alpha / c
    P[2 * d, 2 * d + 1] = c
    return P, V


@pytest.mark.parametrize(("factor", "holds"), [(1, True), (2, False)])
def test_a_users_own_construction_symbolic_still_works(factor, holds):
    """A declaration that still defines ``construction_symbolic`` (sympy matrices) is proved with
    that one; a wrong one (alpha doubled) fails."""
    alg = constructions.ALGORITHMS["sarsa"]
    own = type(alg)()
    own.construction_symbolic = lambda sizes, hyper, c, depth=1: (
        [_sympy_sarsa(sizes["d"], factor * hyper["alpha"], c)] * depth
    )
    assert derive.prove(own, depth=2).holds is holds


def test_registry_refuses_bad_declarations():
    reg = Registry()
    with pytest.raises(ValueError, match="expected an Algorithm"):
        reg.add(object())
    alg = constructions.ALGORITHMS["sarsa"]
    reg.add(alg)
    with pytest.raises(ValueError, match="already registered"):
        reg.add(alg)
    with pytest.raises(ValueError, match="expected one of"):
        reg["nope"]

    class NoName(constructions.Algorithm):
        claim = "(X)"

    with pytest.raises(ValueError, match="name: must be"):
        reg.add(NoName())

    class BadBlock(constructions.Algorithm):
        name, claim, block = "bad", "(X)", "softmax"

    with pytest.raises(ValueError, match="block: must be"):
        reg.add(BadBlock())


def test_load_module_errors(tmp_path):
    with pytest.raises(ValueError, match="existing .py"):
        constructions.load_module(tmp_path / "missing.py")
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    with pytest.raises(ValueError, match="defines no Algorithm"):
        constructions.load_module(empty)


def _verify(module: pathlib.Path, cwd: pathlib.Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "lsa_theory.cli",
            "verify",
            "--module",
            str(module),
            "--quick",
            "--seed",
            "3",
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**_env(), "PYTHONPATH": str(ROOT)},
        timeout=300,
    )


def _env() -> dict:
    import os

    return dict(os.environ)


def test_user_module_from_a_temporary_directory(tmp_path):
    """docs/extending.md: the expected-SARSA file, copied outside the package, passes every row."""
    user = tmp_path / "my_algorithm.py"
    shutil.copy(ROOT / "examples" / "expected_sarsa.py", user)
    out = _verify(user, tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "expected_sarsa" in out.stdout and "4/4 claims pass" in out.stdout


@pytest.mark.parametrize(
    "example, name, rows", [("nstep_td", "nstep_sarsa", 7), ("offpolicy_td0", "offpolicy_td0", 4)]
)
def test_worked_examples_verify(tmp_path, capsys, example, name, rows):
    """docs/extending.md's second and third worked examples: ``lsa-theory verify --module
    examples/X.py --quick`` exits 0 with every row passed (in process; the subprocess path is the
    test above)."""
    from lsa_theory import cli

    user = tmp_path / f"{example}.py"
    shutil.copy(ROOT / "examples" / f"{example}.py", user)
    code = cli.main(["verify", "--module", str(user), "--quick", "--seed", "3"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert name in out and f"{rows}/{rows} claims pass" in out


def _sqrt_ratio_layout(alg):
    """The off-policy example with the ratio put into (S3)'s own rows as ``sqrt(rho)`` (the
    pitfall of docs/extending.md): ``rho ** 0.5`` squares back to ``rho`` in floats, to the
    symbol ``rho ** 1.0`` in sympy."""
    bad = type(alg)()

    def columns(inst, hyper):
        s = inst["rho"] ** 0.5
        X = np.concatenate(
            [
                (s[:, None] * inst["phi"]).T,
                hyper["gamma"] * (s[:, None] * inst["phi_next"]).T,
                (s * inst["r"])[None, :],
            ]
        )
        return X, np.concatenate([[1], inst["w"]])

    bad.columns = columns
    bad.construction = lambda sizes, hyper, c=1.0, depth=1: (
        [constructions.sarsa(sizes["d"], hyper["alpha"], c)] * depth
    )
    return bad


def test_a_float_power_fails_the_sympy_level_with_a_hint(rng):
    """docs/extending.md, "Pitfalls": every float row passes, the sympy row fails and says why."""
    (alg,) = constructions.load_module(ROOT / "examples" / "offpolicy_td0.py")
    rows = derive.verify_rows(_sqrt_ratio_layout(alg), rng, quick=True, k=2)
    floats = [r for r in rows if "sympy" not in r.check]
    (sym,) = [r for r in rows if "sympy" in r.check]
    assert floats and all(r.passed for r in floats), [(r.check, r.residual) for r in floats]
    assert not sym.passed and sym.residual > 0
    assert derive.SYMPY_HINT in sym.check and "** 0.5" in sym.check


def test_a_wrong_user_construction_fails_with_exit_code_1(tmp_path):
    """The same file with the discount dropped from the prompt: a wrong construction for the
    declared update, reported as failing rows and exit code 1."""
    text = (ROOT / "examples" / "expected_sarsa.py").read_text()
    wrong = text.replace('hyper["gamma"] * phibar.T', "phibar.T")
    assert wrong != text
    user = tmp_path / "wrong.py"
    user.write_text(wrong)
    out = _verify(user, tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "FAIL" in out.stdout


def test_a_broken_user_module_is_bad_input(tmp_path):
    user = tmp_path / "empty.py"
    user.write_text("value = 3\n")
    out = _verify(user, tmp_path)
    assert out.returncode == 2
    assert "defines no Algorithm" in out.stderr


@pytest.mark.parametrize("name", NAMES)
def test_the_invariant_check_sees_a_construction_that_writes_into_the_context(name, rng):
    """A value matrix with one extra entry ``(i, j)`` writes row ``j`` of the prompt into row ``i``
    of every column: with ``i`` the first row the declaration holds unchanged and ``j`` the first
    row of the prompt that is not all zero (row 0 for every declaration whose first row carries
    data; (AR2)'s tokens start with a zero block), the invariant residual must see it."""
    alg = constructions.ALGORITHMS[name]
    bad = type(alg)()
    cls = type(alg)
    sizes = alg.sizes(quick=True)
    inst = alg.draw(sizes, rng)
    X, last = alg.columns(inst, instance_hyper(alg, inst))
    Z = derive.prompt(alg, np.asarray(X, dtype=float), np.asarray(last, dtype=float))
    m, k = np.asarray(X).shape[0], np.asarray(alg.naive(inst, instance_hyper(alg, inst), 1)).size

    def held(i):
        E = np.zeros_like(Z)
        E[i, :] = 1.0
        return np.abs(np.asarray(alg.invariant(Z, Z + E, m, k), dtype=float)).max(initial=0.0) > 0

    i = next(i for i in range(Z.shape[0]) if held(i))
    j = next(j for j in range(Z.shape[0]) if np.any(Z[j] != 0))

    def construction(sizes, hyper, c=1.0, depth=1):
        layers = [
            tuple(np.array(M, dtype=float) for M in pv)
            for pv in cls.construction(alg, sizes, hyper, c, depth)
        ]
        P, V = layers[0]
        (P if alg.block == "masked" else V)[i, j] += 1.0
        return layers

    bad.construction = construction
    res = derive.residuals(bad, inst, sizes)
    assert res.invariant > 1e-6


# ------------------------------------------ a user's file: name clashes and malformed attributes
def _expected_sarsa_text() -> str:
    return (pathlib.Path(__file__).resolve().parents[2] / "examples" / "expected_sarsa.py").read_text()


@pytest.mark.parametrize(
    "old, new, message",
    [
        ('name = "expected_sarsa"', 'name = "sarsa"', "'sarsa', the name of a registered algorithm"),
        (
            'hyper_ranges = {"gamma": (0.0, 0.99), "alpha": (0.05, 2.0)}',
            'hyper_ranges = {"gamma": (0.99, 0.0), "alpha": (0.05, 2.0)}',
            "hyper_ranges['gamma']: low 0.99 > high 0.0",
        ),
        (
            'hyper_ranges = {"gamma": (0.0, 0.99), "alpha": (0.05, 2.0)}',
            'hyper_ranges = {"gamma": (0.0, 0.99), "eta": (0.05, 2.0)}',
            "hyper_ranges: 'eta' is not a hyperparameter",
        ),
        ("scales = (1.0, -2.0)", "scales = (1.0, 0.0)", "scales: expected non-zero finite reals"),
    ],
)
def test_verify_module_refuses_a_clash_or_a_malformed_declaration(tmp_path, capsys, old, new, message):
    from lsa_theory import cli

    text = _expected_sarsa_text()
    assert old in text
    path = tmp_path / "decl.py"
    path.write_text(text.replace(old, new))
    rc = cli.main(["verify", "--module", str(path), "--quick"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert message in err and "--module" in err
    assert len([line for line in err.strip().splitlines() if line.startswith("lsa-theory")]) == 1

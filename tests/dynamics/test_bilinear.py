"""(M2) for every registered algorithm from its declaration: the bilinear effective form equals
the block, the construction is a zero of the objective, gradients agree with differences."""

from __future__ import annotations

import numpy as np
import pytest

from lsa_theory import constructions
from lsa_theory import dynamics as dy
from lsa_theory.constructions import derive
from lsa_theory.dynamics.bilinear import effective_theta, full_params, instance_dataset

NAMES = tuple(n for n in constructions.ALGORITHMS.names() if constructions.ALGORITHMS[n].bilinear)


def _small(alg):
    return {k: lo + 1 if k != "n" else 6 for k, (lo, hi) in alg.size_ranges().items()} | {"n": 6}


@pytest.mark.parametrize("name", NAMES)
def test_effective_form_equals_the_block(name, rng):
    """readout(TF(Z)) - readout(Z) = A Sigma B wt for random (A, B) embedded in (P, V)."""
    alg = constructions.ALGORITHMS[name]
    sizes = _small(alg)
    ds = instance_dataset(alg, sizes, 5, rng)
    sh = dy.shapes(ds)
    A, B = rng.standard_normal((sh.k, sh.m)), rng.standard_normal((sh.m, sh.p))
    P, V = full_params(ds, dy.pack(A, B))
    assert np.array_equal(effective_theta(ds, P, V), dy.pack(A, B))
    for _ in range(5):
        inst = alg.draw(sizes, rng)
        X, last = (np.asarray(a, dtype=float) for a in alg.columns(inst, alg.hyper))
        Z = derive.prompt(alg, X, last)
        out = derive.forward(alg, Z, [(P, V)])
        lhs = np.asarray(alg.readout(out, sizes)) - np.asarray(alg.readout(Z, sizes))
        rhs = A @ (X @ X.T / X.shape[1]) @ B @ last
        assert np.allclose(lhs, rhs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_construction_is_a_zero_of_the_objective(name, rng):
    alg = constructions.ALGORITHMS[name]
    ds = instance_dataset(alg, _small(alg), 20, rng)
    for c in alg.scales:
        L, g = dy.loss_and_grad(ds, dy.construction(ds, c))
        assert L < 1e-26 and np.abs(g).max() < 1e-12


@pytest.mark.parametrize("name", NAMES)
def test_gradient_matches_finite_differences(name, rng):
    alg = constructions.ALGORITHMS[name]
    ds = instance_dataset(alg, _small(alg), 8, rng)
    theta = dy.construction(ds) + 0.1 * rng.standard_normal(dy.shapes(ds).size)
    _, g = dy.loss_and_grad(ds, theta)
    fd = dy.finite_difference_grad(lambda t: dy.loss(ds, t), theta)
    assert np.allclose(g, fd, rtol=1e-6, atol=1e-9)


def test_non_bilinear_declarations_are_refused(rng):
    with pytest.raises(ValueError, match="bilinear"):
        instance_dataset(constructions.ALGORITHMS["td_average_reward"], {"S": 2, "d": 2, "n": 3}, 2, rng)


def test_a_wrong_effective_map_is_caught(rng):
    """If a declaration's effective blocks dropped the value sign, the form test would fail."""
    alg = constructions.ALGORITHMS["td"]
    bad = type(alg)()
    bad.value_sign = 1
    sizes = _small(alg)
    ds = instance_dataset(bad, sizes, 3, rng)
    P, V = alg.construction(sizes, alg.hyper)[0]
    L, _ = dy.loss_and_grad(ds, effective_theta(ds, P, V))
    assert L > 1e-6

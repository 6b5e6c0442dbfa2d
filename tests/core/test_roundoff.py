"""The round-off model's primitives hold their stated bounds, and the perturbation helper catches a
verdict decided by rounding."""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import numpy as np
import pytest

from lsa_theory import roundoff as ro


def _exact_sum(x) -> float:
    return float(sum(Fraction(float(v)) for v in np.ravel(x)))


@pytest.mark.parametrize("seed", range(5))
def test_sum_and_matmul_bounds_hold_against_exact_arithmetic(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(200) * 10.0 ** rng.uniform(-8, 8, 200)
    assert abs(float(np.sum(x)) - _exact_sum(x)) <= ro.sum_error_bound(x)
    A, B = rng.standard_normal((4, 30)), rng.standard_normal((30, 3))

    def dot(a, b):
        return float(sum(Fraction(u) * Fraction(v) for u, v in zip(a, b, strict=True)))

    exact = np.array([[dot(A[i], B[:, j]) for j in range(3)] for i in range(4)])
    assert np.all(np.abs(A @ B - exact) <= ro.matmul_error_bound(A, B))


def test_gamma_refuses_bad_counts():
    assert ro.gamma(0) == 0.0
    assert math.isclose(ro.gamma(10), 10 * ro.UNIT_ROUNDOFF, rel_tol=1e-12)
    for bad in (-1, float("nan"), 1e17):
        with pytest.raises(ValueError, match="k"):
            ro.gamma(bad)


@dataclasses.dataclass(frozen=True)
class _Cfg:
    theta: np.ndarray
    n: int
    name: str


def test_perturbed_moves_floats_only_and_by_at_most_rel():
    rng = np.random.default_rng(0)
    tree = {"a": np.arange(1.0, 6.0), "k": np.arange(5), "c": _Cfg(np.ones(3), 4, "x"), "t": (2.0, 3, True)}
    p = ro.perturbed(tree, rng)
    assert np.all(np.abs(p["a"] / tree["a"] - 1) <= ro.PERTURBATION) and np.any(p["a"] != tree["a"])
    assert np.array_equal(p["k"], tree["k"]) and p["c"].n == 4 and p["c"].name == "x"
    assert p["t"][1:] == (3, True) and p["t"][0] != 2.0
    assert np.all(tree["a"] == np.arange(1.0, 6.0))  # input untouched
    with pytest.raises(ValueError, match="rng"):
        ro.perturbed(tree, 0)


def test_a_verdict_at_the_floor_is_caught_and_a_sized_one_survives():
    rng = np.random.default_rng(1)
    x = np.array([1.0, 1e-16, -1.0])

    def naive(v):  # a sign decided by rounding
        return bool(np.sum(v) > 0)

    with pytest.raises(AssertionError, match="rounding"):
        ro.assert_same_verdicts(naive, x, rng)

    def sized(v):  # undecided within the bound: report it as such
        s = float(np.sum(v))
        return "unresolved" if abs(s) <= 2 * ro.sum_error_bound(v) + 2e-13 * np.abs(v).sum() else s > 0

    assert ro.assert_same_verdicts(sized, x, rng) == "unresolved"

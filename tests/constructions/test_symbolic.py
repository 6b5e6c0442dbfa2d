"""Level 1 of the three proofs: exact identities on fully symbolic prompts, through the registry.

:func:`lsa_theory.constructions.derive.prove` runs each declaration's one construction on symbols
in the exact ring of :mod:`lsa_theory.constructions.symbolic` and counts the readout and invariant
entries of ``lhs - rhs`` that are not the zero polynomial: (S4)/(S5), (A4), (W3) here at several
sizes and depths, the TD family in ``tests/constructions/test_td_family.py``, (R2)/(R3) in
``tests/experiments/test_regression.py``; (L2) and (R4) (arbitrary ``P``, ``V``: block claims, no
declaration) through the proofs of the ``verify`` block rows. The mutation tests show the same
machinery detects a wrong construction.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from lsa_theory import constructions
from lsa_theory.constructions import derive, symbolic, verify

ALGS = constructions.ALGORITHMS


def _lsa_entries(alg, sizes) -> int:
    """Readout plus invariant entries of an (L1) declaration: the whole output ``D (n + 1)``."""
    m, p, _ = alg.dims_of(sizes)
    return (m + p) * (sizes["n"] + 1)


@pytest.mark.parametrize(
    ("d", "n", "L"),
    [(1, 1, 1), (2, 3, 1), (1, 2, 2), (2, 3, 2), (1, 2, 3)],
)
def test_sarsa_identity(d, n, L):
    sizes = {"S": 2, "A": 1, "d": d, "n": n}
    proof = derive.prove(ALGS["sarsa"], sizes, depth=L)
    assert proof.n_entries == (3 * d + 2) * (n + 1) == _lsa_entries(ALGS["sarsa"], sizes)
    assert proof.claim == ("(S4)" if L == 1 else "(S5)")
    assert proof.holds, proof


@pytest.mark.parametrize(("d", "d_pi", "n"), [(1, 1, 2), (2, 2, 3), (2, 1, 2)])
def test_actor_critic_identity(d, d_pi, n):
    proof = derive.prove(ALGS["actor_critic"], {"S": 2, "A": 2, "d": d, "d_pi": d_pi, "n": n})
    assert proof.n_entries == (3 * d + 2 * d_pi + 2) * (n + 1)
    assert proof.holds, proof


@pytest.mark.parametrize(("d", "n", "L"), [(1, 2, 1), (2, 3, 1), (2, 3, 2), (1, 3, 3)])
def test_td_identity(d, n, L):
    proof = derive.prove(ALGS["td"], {"S": 2, "d": d, "n": n}, depth=L)
    assert proof.n_entries == 1 + 2 * d * (n + 1)  # the value readout, every row but the last
    assert proof.holds, proof


@pytest.mark.parametrize(("d", "n"), [(1, 1), (1, 2), (1, 3)])
def test_lemma_c1_fully_symbolic(d, n):
    proof = verify._prove_lemma_c1(d, n)
    assert proof.n_entries == d
    assert proof.holds


@pytest.mark.parametrize("name", sorted(ALGS))
def test_one_construction_for_both_backends(name):
    """Each declaration's one ``construction``, called with exact rationals, gives ``dtype=object``
    arrays whose values are the float64 construction's at the same numbers (to 1 ulp)."""
    alg = ALGS[name]
    sizes = alg.sizes(quick=True)
    hyper = derive.instance_hyper(alg, alg.draw(sizes, np.random.default_rng(1)))
    exact = {k: (sp.Rational(v) if isinstance(v, float) else v) for k, v in hyper.items()}
    for k, v in hyper.items():
        if isinstance(v, np.ndarray):
            exact[k] = np.vectorize(sp.Rational, otypes=[object])(v)
    c_f = alg.scales[-1]
    floats = alg.construction(sizes, hyper, c_f, alg.depths[-1])
    exacts = alg.construction(sizes, exact, sp.Rational(c_f), alg.depths[-1])
    leaves = _leaves(exacts)
    assert all(np.asarray(M).dtype == object for M in leaves)
    for Me, Mf in zip(leaves, _leaves(floats), strict=True):
        np.testing.assert_allclose(np.array(Me, dtype=float), Mf, rtol=2**-52, atol=0)


def _leaves(x):
    if isinstance(x, tuple | list):
        return [leaf for v in x for leaf in _leaves(v)]
    return [x]


def _mutant(make, i, j, delta):
    """``make``'s first layer with ``delta`` added to entry ``(i, j)`` of its first matrix."""

    def mutated(sizes, hyper, c=1.0, depth=1):
        layers = [tuple(np.array(M) for M in layer) for layer in make(sizes, hyper, c, depth)]
        layers[0][0][i, j] = layers[0][0][i, j] + delta
        return layers

    return mutated


def _bad(name, **methods):
    alg = ALGS[name]
    bad = type(alg)()
    for key, value in methods.items():
        setattr(bad, key, value)
    return bad


@pytest.mark.parametrize("entry", [(2, 3), (0, 0)])  # d = 1: reward row x constant column; a P11 entry
def test_sarsa_proof_detects_a_wrong_construction(entry):
    """A proof that could not fail would prove nothing: perturb one entry and it must fail."""
    alg = ALGS["sarsa"]
    bad = _bad("sarsa", construction=_mutant(alg.construction, *entry, sp.Rational(1, 3)))
    assert not derive.prove(bad, {"S": 2, "A": 1, "d": 1, "n": 2}).holds


def test_td_proof_detects_a_wrong_construction():
    alg = ALGS["td"]

    def wrong(sizes, hyper, c=1.0, depth=1):  # alpha added at Q[0, 1]
        return [(P, Q + _unit(Q, 0, 1) * hyper["alpha"]) for P, Q in alg.construction(sizes, hyper, c, depth)]

    assert not derive.prove(_bad("td", construction=wrong), {"S": 2, "d": 1, "n": 2}, depth=2).holds


def _unit(M, i, j):
    E = np.zeros(np.shape(M), dtype=int).astype(object)
    E[i, j] = 1
    return E


def test_actor_critic_proof_detects_wrong_beta():
    alg = ALGS["actor_critic"]
    bad = _bad(
        "actor_critic",
        construction=lambda sizes, hyper, c=1.0, depth=1: alg.construction(
            sizes, {**hyper, "beta": 2 * hyper["beta"]}, c, depth
        ),
    )
    assert not derive.prove(bad, {"S": 2, "A": 2, "d": 1, "d_pi": 1, "n": 2}).holds


def test_ring_blocks_equal_sympy_matrix_blocks():
    """The exact engine multiplies out the same (L1) and (W2) blocks as sympy matrices do."""
    n, D = 2, 3
    syms = [symbolic.symbol_array(k, (D, D)) for k in "PV"] + [symbolic.symbol_array("z", (D, n + 1))]
    M = np.array([[1, 0, 0], [sp.Symbol("lam"), 1, 0], [0, 0, 0]], dtype=object)
    ring = symbolic.Ring(*syms, M)
    P, V, Z = (ring.array(a) for a in syms)
    Ps, Vs, Zs, Ms = (sp.Matrix(a.tolist()) for a in (*syms, M))
    lsa = (Zs + Vs * Zs * Zs.T * Ps * Zs / n).applyfunc(sp.expand)
    masked = (Zs + Ps * Zs * Ms * Zs.T * Vs * Zs / n).applyfunc(sp.expand)
    assert (symbolic.exact_lsa_block(Z, P, V) == ring.array(lsa)).all()
    assert (symbolic.exact_masked_block(Z, P, V, ring.array(M)) == ring.array(masked)).all()

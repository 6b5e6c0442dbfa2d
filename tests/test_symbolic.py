"""Level 1 of the three proofs: sympy identities on fully symbolic prompts (S4), (S5), (A4), (W3), (L2).

Each ``prove_*`` returns the number of output entries whose ``expand(lhs - rhs)`` is not the zero
polynomial; the mutation tests show the same machinery detects a wrong construction.
"""

from __future__ import annotations

import pytest
import sympy as sp

import constructions
from constructions import symbolic


@pytest.mark.parametrize(
    ("d", "n", "L"),
    [(1, 1, 1), (2, 3, 1), (1, 2, 2), (2, 3, 2), (1, 2, 3)],
)
def test_sarsa_identity(d, n, L):
    proof = constructions.prove_sarsa(d, n, L)
    assert proof.n_entries == (3 * d + 2) * (n + 1)
    assert proof.holds, proof


@pytest.mark.parametrize(("d", "d_pi", "n"), [(1, 1, 2), (2, 2, 3), (2, 1, 2)])
def test_actor_critic_identity(d, d_pi, n):
    proof = constructions.prove_actor_critic(d, d_pi, n)
    assert proof.n_entries == (3 * d + 2 * d_pi + 2) * (n + 1)
    assert proof.holds, proof


@pytest.mark.parametrize(("d", "n", "L"), [(1, 2, 1), (2, 3, 1), (2, 3, 2), (1, 3, 3)])
def test_td_identity(d, n, L):
    assert constructions.prove_td(d, n, L).holds


@pytest.mark.parametrize(("d", "n"), [(1, 1), (1, 2), (1, 3)])
def test_lemma_c1_fully_symbolic(d, n):
    proof = constructions.prove_lemma_c1(d, n)
    assert proof.n_entries == d
    assert proof.holds


def test_symbolic_twins_match_numeric():
    """The sympy twins, evaluated at numbers, are the float64 constructions."""
    import numpy as np

    a, b, c = sp.Rational(1, 5), sp.Rational(3, 7), sp.Rational(-5, 2)
    for (Ps, Vs), (Pn, Vn) in [
        (constructions.sarsa_symbolic(3, a, c), constructions.sarsa(3, 0.2, -2.5)),
        (
            constructions.actor_critic_symbolic(2, 3, a, b, c),
            constructions.actor_critic(2, 3, 0.2, 3 / 7, -2.5),
        ),
        (constructions.td_symbolic(3, a), constructions.td(3, 0.2)),
    ]:
        np.testing.assert_allclose(np.array(Ps, dtype=float), Pn, rtol=1e-15, atol=0)
        np.testing.assert_allclose(np.array(Vs, dtype=float), Vn, rtol=1e-15, atol=0)


def _mutant(make, i, j, delta):
    def mutated(*args, **kwargs):
        P, V = make(*args, **kwargs)
        P = P.copy()
        P[i, j] = P[i, j] + delta
        return P, V

    return mutated


@pytest.mark.parametrize(
    ("name", "entry"),
    [
        ("sarsa_symbolic", (2, 3)),  # d = 1: the reward row's entry in the constant column
        ("sarsa_symbolic", (0, 0)),  # a P11 entry: would change context columns
    ],
)
def test_sarsa_proof_detects_a_wrong_construction(monkeypatch, name, entry):
    """A proof that could not fail would prove nothing: perturb one entry and it must fail."""
    monkeypatch.setattr(symbolic, name, _mutant(getattr(symbolic, name), *entry, sp.Rational(1, 3)))
    assert not symbolic.prove_sarsa(1, 2, 1).holds


def test_td_proof_detects_a_wrong_construction(monkeypatch):
    monkeypatch.setattr(symbolic, "td_symbolic", _mutant(symbolic.td_symbolic, 0, 1, symbolic.alpha_s))
    assert not symbolic.prove_td(1, 2, 2).holds


def test_actor_critic_proof_detects_wrong_beta(monkeypatch):
    real = symbolic.actor_critic_symbolic
    monkeypatch.setattr(
        symbolic, "actor_critic_symbolic", lambda d, d_pi: real(d, d_pi, beta=2 * symbolic.beta_s)
    )
    assert not symbolic.prove_actor_critic(1, 1, 2).holds

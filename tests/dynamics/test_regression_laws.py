"""[Ahn]'s data law ``w ~ N(0, Lambda^{-1})``: the closed-form one-layer optimum
``Lambda^{-1} / (1 + (d + 1)/N)`` against the least-squares minimiser on sampled prompts (Wald test
within its confidence region), and [ZFB]'s ``Gamma^{-1}`` rejected on that law (negative control)."""

import numpy as np
import pytest
from scipy.stats import chi2

from lsa_theory.dynamics import regression as rg

#: (d, N, kappa, seed): two settings, condition number >= 10.
SETTINGS = [(3, 10, 10.0, 11), (4, 20, 20.0, 12)]
LEVEL = 1e-3  # Wald test at 99.9 %


def _case(d, N, kappa, seed, F):
    rng = np.random.default_rng(seed)
    Lambda = rg.random_covariance(d, kappa, rng)
    M_star = rg.sigma_inverse_optimum(Lambda, N)
    return Lambda, M_star, rng


def _check(d, N, kappa, seed, F):
    Lambda, M_star, rng = _case(d, N, kappa, seed, F)
    assert np.linalg.cond(Lambda) >= 10 * (1 - 1e-9)
    crit = chi2.ppf(1 - LEVEL, d * d)
    ok = rg.sample_minimiser_test(Lambda, N, M_star, F, rng, law="sigma_inverse")
    assert ok["wald"] < crit, ok["wald"]
    # negative control: [ZFB]'s Gamma^{-1} (the optimum of w ~ N(0, I)) on the same prompts' law
    Gi = np.linalg.inv(rg.gamma_matrix(Lambda, N))
    dm = (ok["M_sample"] - Gi).ravel()
    wald_zfb = F * dm @ np.linalg.solve(ok["V"], dm)
    assert wald_zfb > crit, wald_zfb  # rejected at the same level
    return ok, wald_zfb, np.linalg.norm(Gi - M_star) / np.linalg.norm(M_star)


@pytest.mark.parametrize("d, N, kappa, seed", SETTINGS)
def test_sigma_inverse_optimum_matches_sample_minimiser(d, N, kappa, seed):
    _check(d, N, kappa, seed, 20_000)


@pytest.mark.slow
@pytest.mark.parametrize("d, N, kappa, seed", SETTINGS)
def test_sigma_inverse_optimum_matches_sample_minimiser_1e6(d, N, kappa, seed):
    ok, _, _ = _check(d, N, kappa, seed, 1_000_000)
    assert ok["rel_err"] < 0.02


def test_sigma_inverse_optimum_closed_form_and_minimum():
    """``M*`` solves the first-order condition ``M K = I`` with ``K = (1 + (d+1)/N) Lambda`` and is
    the identity-law optimum's analogue; the law check refuses unknown names."""
    rng = np.random.default_rng(3)
    Lambda = rg.random_covariance(3, 10.0, rng)
    M = rg.sigma_inverse_optimum(Lambda, 7)
    assert np.allclose(M @ ((1 + 4 / 7) * Lambda), np.eye(3), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="law"):
        rg.sample_prompts(4, 5, Lambda, rng, law="gamma")
    with pytest.raises(ValueError, match="Lambda"):
        rg.sigma_inverse_optimum(np.ones((2, 3)), 5)
    s = rg.sample_prompts(200_000, 3, Lambda, rng, antithetic=False, law="sigma_inverse")
    # w is not stored; E[y_q^2] = E[w^T Lambda w] = tr(Lambda^{-1} Lambda) = d
    assert abs(np.mean(s.y_query**2) - 3.0) < 5 * np.std(s.y_query**2) / np.sqrt(200_000)

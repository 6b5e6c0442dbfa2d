"""Issue 13, "Inputs": one regression test per listed item (each failed before the fix).

The public-API fuzz over shapes and dtypes is :mod:`tests.test_input_fuzz`; the sweep item is in
:mod:`tests.test_sweep`.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import lsa_theory as lt
from lsa_theory import constructions

torch = pytest.importorskip("torch")

S, A, d, n = 3, 2, 4, 5


def _setup():
    rng = np.random.default_rng(0)
    mdp = lt.random_mdp(S, A, 0.5, rng)
    phi = lt.random_features(S, A, d, rng)
    w = rng.uniform(-1, 1, d)
    X = rng.uniform(-1, 1, (2 * d + 1, n))
    return mdp, phi, w, X


MDP, PHI, W, X = _setup()


def _mdp_args(**kw):
    args = {"P": np.array(MDP.P), "r": np.array(MDP.r), "gamma": 0.5, "mu0": np.array(MDP.mu0)}
    args.update(kw)
    return args


# --- complex input is refused everywhere ----------------------------------------------------------


@pytest.mark.parametrize("name", ["P", "r", "mu0"])
def test_tabular_mdp_refuses_complex(name):
    args = _mdp_args()
    args[name] = args[name] + 0j
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning: an error, before any cast
        with pytest.raises(ValueError, match=rf"^{name}: .*complex"):
            lt.TabularMDP(**args)


def test_feature_paths_refuse_complex():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"^phi: .*complex"):
            lt.sarsa_context(MDP, PHI + 0j, W, n, 0.1, np.random.default_rng(0))
        with pytest.raises(ValueError, match=r"^w: .*complex"):
            lt.sarsa_context(MDP, PHI, W + 1j, n, 0.1, np.random.default_rng(0))
        with pytest.raises(ValueError, match=r"^phi: .*complex"):
            lt.q_values(PHI + 0j, W)
        with pytest.raises(ValueError, match=r"^w: .*complex"):
            lt.q_values(PHI, W + 0j)


# --- the caller's arrays stay theirs --------------------------------------------------------------


def test_tabular_mdp_copies_the_callers_arrays():
    args = _mdp_args()
    mdp = lt.TabularMDP(**args)
    for name in ("P", "r", "mu0"):
        assert getattr(mdp, name) is not args[name]
        assert args[name].flags.writeable
        assert not getattr(mdp, name).flags.writeable  # the stored copy is frozen
    before = mdp.r.copy()
    args["r"][0, 0] = 1.0  # no error, and the MDP does not change
    np.testing.assert_array_equal(mdp.r, before)


# --- the smaller items ---------------------------------------------------------------------------


def _stats():
    layout = lt.Layout(d)
    rng = np.random.default_rng(1)
    Sigma = lt.sufficient_statistics(X)
    wt = np.concatenate([[1.0], W])
    P, V = (rng.standard_normal((layout.D, layout.D)) for _ in range(2))
    return Sigma, wt, P, V, layout


def test_tf_from_statistics_refuses_nan_and_names_wrong_length():
    Sigma, wt, P, V, layout = _stats()
    bad = Sigma.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"^Sigma: contains NaN"):
        lt.tf_from_statistics(bad, wt, P, V, n, layout)
    with pytest.raises(ValueError, match=r"^wt: contains NaN"):
        lt.tf_from_statistics(Sigma, np.r_[1.0, np.nan, W[1:]], P, V, n, layout)
    with pytest.raises(ValueError, match=r"^wt: expected shape \(\.\.\., 5\)"):
        lt.tf_from_statistics(Sigma, wt[:-1], P, V, n, layout)
    with pytest.raises(ValueError, match=r"^Sigma: expected shape \(\.\.\., 9, 9\)"):
        lt.tf_from_statistics(Sigma[:-1, :-1], wt, P, V, n, layout)


def test_sufficient_statistics_accepts_a_list():
    np.testing.assert_allclose(lt.sufficient_statistics(X.tolist()), X @ X.T / n, rtol=1e-15)
    with pytest.raises(ValueError, match=r"^X: expected shape"):
        lt.sufficient_statistics([1.0, 2.0])


@pytest.mark.parametrize("gamma", [1.0, 5.0, -0.1])
def test_naive_batch_sarsa_refuses_gamma_outside_unit_interval(gamma):
    with pytest.raises(ValueError, match=r"^gamma: must be"):
        lt.naive_batch_sarsa([[1.0]], [[1.0]], [1.0], [0.0], gamma, 0.1)
    with pytest.raises(ValueError, match=r"^gamma: must be"):
        lt.naive_batch_td([[1.0]], [[1.0]], [1.0], gamma, 0.1)
    with pytest.raises(ValueError, match=r"^gamma: must be"):
        lt.naive_batch_actor_critic([[1.0]], [[1.0]], [1.0], [[1.0]], [0.0], [0.0], gamma, 0.1, 0.1)


@pytest.mark.parametrize(
    ("alpha", "c"),
    [
        (0.5, 1e-320),
        (0.5, -1e-320),
        (0.5, 5e-324),
        (0.5, 1e-308),
        (1e10, 1e-300),
        (1e-20, 1e308),
        (1e-20, -1e308),
    ],
)
def test_construction_scale_refuses_subnormal_c_and_overflow(alpha, c):
    """|c| below tiny (c * 1 subnormal), alpha / c overflowing to inf or underflowing to 0."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the old code only warned (overflow in divide)
        with pytest.raises(ValueError, match=r"^c: "):
            constructions.sarsa(2, alpha, c=c)
        with pytest.raises(ValueError, match=r"^c: "):
            constructions.actor_critic(1, 1, alpha, alpha, c=c)


def test_construction_scale_inside_the_bound_is_exact():
    tiny = np.finfo(np.float64).tiny
    for alpha, c in ((0.5, 1e-300), (0.5, -1e-300), (0.5, 1e150), (0.5, tiny), (0.5, 1e308), (tiny, -2.0)):
        P, V = constructions.sarsa(2, alpha, c=c)
        assert np.isfinite(P).all() and np.isfinite(V).all()
        assert (P[P != 0] == c).any() and (V[V != 0] == alpha / c).all() and (V != 0).sum() == 2


def test_sarsa_loop_refuses_a_non_callable_update_with_value_error():
    for loop, extra in ((lt.sarsa_loop, {"epsilon": 0.1}), (lt.actor_critic_loop, {})):
        args = (MDP, PHI, W, None) if loop is lt.sarsa_loop else (MDP, PHI, PHI, W, W, None)
        with pytest.raises(ValueError, match=r"^update: expected a callable"):
            loop(*args, n=n, n_updates=1, rng=np.random.default_rng(0), **extra)


def test_wrong_length_update_output_is_blamed_on_update():
    with pytest.raises(ValueError, match=r"^update\(X, w\): expected shape \(4,\)"):
        lt.sarsa_loop(
            MDP, PHI, W, lambda X, w: w[:-1], n=n, n_updates=2, epsilon=0.1, rng=np.random.default_rng(0)
        )
    with pytest.raises(ValueError, match=r"^update\(X, g, w, lam\): expected"):
        lt.actor_critic_loop(
            MDP,
            PHI,
            PHI,
            W,
            W,
            lambda X, g, w, lam: (w, lam[:-1]),
            n=n,
            n_updates=2,
            rng=np.random.default_rng(0),
        )


def test_sarsa_context_refuses_zero_features():
    with pytest.raises(ValueError, match=r"^phi: .*d >= 1"):
        lt.sarsa_context(MDP, np.zeros((S, A, 0)), np.zeros(0), n, 0.1, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"^phi: .*d >= 1"):
        lt.q_values(np.zeros((S, A, 0)), np.zeros(0))


def _float32_kernel(S_, A_, seed=0):
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(S_), size=(S_, A_)).astype(np.float32)
    P /= P.sum(axis=-1, keepdims=True)  # stochastic to float32 precision, not to float64's
    mu0 = rng.dirichlet(np.ones(S_)).astype(np.float32)
    mu0 /= mu0.sum()
    return P, mu0


def test_float32_kernel_accepted_with_dtype_aware_tolerance():
    P, mu0 = _float32_kernel(50, 3)
    err = np.abs(P.astype(np.float64).sum(-1) - 1).max()
    assert err > lt.mdp.STOCHASTIC_ATOL  # the float64 tolerance alone refuses it
    mdp = lt.TabularMDP(P=P, r=np.zeros((50, 3), np.float32), gamma=0.5, mu0=mu0)
    assert mdp.P.dtype == np.float64
    # ... but a float32 kernel off by more than its precision is still refused
    bad = P.copy()
    bad[0, 0] *= 1.001
    with pytest.raises(ValueError, match=r"^P: does not sum to 1"):
        lt.TabularMDP(P=bad, r=np.zeros((50, 3)), gamma=0.5, mu0=mu0)
    # a float64 kernel keeps the float64 tolerance
    with pytest.raises(ValueError, match=r"^P: does not sum to 1"):
        lt.TabularMDP(P=P.astype(np.float64), r=np.zeros((50, 3)), gamma=0.5, mu0=mu0.astype(np.float64))


def test_torch_requires_grad_is_accepted():
    t = {k: torch.tensor(np.array(v), requires_grad=True) for k, v in _mdp_args().items() if k != "gamma"}
    mdp = lt.TabularMDP(P=t["P"], r=t["r"], gamma=0.5, mu0=t["mu0"])
    np.testing.assert_array_equal(mdp.P, MDP.P)
    phi_t, w_t = torch.tensor(PHI, requires_grad=True), torch.tensor(W, requires_grad=True)
    X1, _ = lt.sarsa_context(MDP, phi_t, w_t, n, 0.1, np.random.default_rng(3))
    X2, _ = lt.sarsa_context(MDP, PHI, W, n, 0.1, np.random.default_rng(3))
    np.testing.assert_array_equal(X1, X2)
    X_t = torch.tensor(X, requires_grad=True)
    out = lt.sarsa_update(X_t, w_t, 0.3)
    assert isinstance(out, torch.Tensor) and out.requires_grad  # torch in, torch out, differentiable
    np.testing.assert_allclose(out.detach().numpy(), lt.sarsa_update(X, W, 0.3), rtol=1e-14, atol=1e-15)
    out.sum().backward()
    assert w_t.grad is not None and X_t.grad is not None

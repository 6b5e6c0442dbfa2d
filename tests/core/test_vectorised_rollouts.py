"""The vectorised closed loops (S6)/(A5) reproduce the per-MDP loops bit for bit.

``sarsa_loop_batched`` / ``actor_critic_loop_batched`` step k MDPs together from pre-drawn
uniforms; ``teacher_dataset(vectorised=True)`` (the default) uses them. Checked here: the facts the
identity rests on (vector draws equal scalar draws, counting ``cdf <= u`` equals ``searchsorted``,
the per-MDP loop consumes exactly ``loop_draws`` uniforms), exact equality of every dataset field
against the per-MDP path over random specs, exact equality of the batched loops against
``sarsa_loop`` / ``actor_critic_loop`` (ties in the greedy action, zero-probability transitions),
and that bad input raises ``ValueError`` naming the argument.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lsa_theory as lt
from lsa_theory import dynamics as dy
from lsa_theory.rollout import _sample, _sample_rows

HYP = settings(deadline=None, max_examples=60)
seeds = st.integers(min_value=0, max_value=2**32 - 1)
FIELDS = ("Sigma", "wt", "y", "mdp", "X")


def _assert_same_dataset(a: dy.TeacherDataset, b: dy.TeacherDataset) -> None:
    for name in FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), name


# ---------------------------------------------------------------------------------------------
# The facts the identity rests on
# ---------------------------------------------------------------------------------------------


@given(seed=seeds, size=st.integers(min_value=1, max_value=200))
@HYP
def test_vector_draws_equal_scalar_draws_and_leave_the_same_state(seed, size):
    a, b = np.random.default_rng(seed), np.random.default_rng(seed)
    a.dirichlet(np.ones(3))
    b.dirichlet(np.ones(3))
    scalar = np.array([a.random() for _ in range(size)])
    assert np.array_equal(scalar, b.random(size))
    assert np.array_equal(a.uniform(-1, 1, 5), b.uniform(-1, 1, 5))


@given(
    probs=st.lists(st.sampled_from([0.0, 0.1, 0.25, 0.5, 1 / 3, 1.0]), min_size=1, max_size=6).filter(
        lambda p: sum(p) > 0
    ),
    seed=seeds,
)
@HYP
def test_counting_sample_equals_searchsorted_including_ties(probs, seed):
    p = np.asarray(probs) / np.sum(probs)
    cdf = np.cumsum(p)
    rng = np.random.default_rng(seed)
    # exact cdf entries (ties), their neighbours, 0 and the largest double below 1
    us = np.concatenate(
        [cdf, np.nextafter(cdf, 0.0), np.nextafter(cdf, 2.0), [0.0, np.nextafter(1.0, 0.0)], rng.random(20)]
    )
    us = us[(us >= 0.0) & (us < 1.0)]
    got = _sample_rows(np.broadcast_to(cdf, (len(us), len(cdf))), us)
    assert got.tolist() == [_sample(cdf, float(u)) for u in us]


@pytest.mark.parametrize("algorithm", ["sarsa", "actor_critic"])
@pytest.mark.parametrize(("n", "T"), [(1, 1), (3, 2), (6, 4)])
def test_per_mdp_loop_consumes_exactly_loop_draws_uniforms(algorithm, n, T):
    rng = np.random.default_rng(5)
    mdp = lt.random_mdp(3, 2, 0.5, rng)
    phi = lt.random_features(3, 2, 4, rng)
    used, fresh = np.random.default_rng(17), np.random.default_rng(17)
    if algorithm == "sarsa":
        lt.sarsa_loop(mdp, phi, np.zeros(4), lambda X, w: w, n=n, n_updates=T, epsilon=0.3, rng=used)
    else:
        lt.actor_critic_loop(
            mdp, phi, phi, np.zeros(4), np.ones(4), lambda X, g, w, lam: (w, lam), n=n, n_updates=T, rng=used
        )
    fresh.random(lt.loop_draws(n, T))
    assert lt.loop_draws(n, T) == 1 + T * (1 + 2 * n)
    assert used.random() == fresh.random()


# ---------------------------------------------------------------------------------------------
# teacher_dataset: vectorised == one MDP at a time
# ---------------------------------------------------------------------------------------------


@st.composite
def specs(draw):
    features = draw(st.sampled_from(["uniform", "onehot"]))
    dims = st.one_of(st.none(), st.integers(min_value=1, max_value=4))
    return dy.TeacherSpec(
        algorithm=draw(st.sampled_from(["sarsa", "actor_critic"])),
        S=draw(st.integers(min_value=1, max_value=3)),
        A=draw(st.integers(min_value=1, max_value=3)),
        d=draw(dims) if features == "uniform" else None,
        d_pi=draw(dims) if features == "uniform" else None,
        n=draw(st.integers(min_value=1, max_value=6)),
        k=draw(st.integers(min_value=1, max_value=5)),
        frames=draw(st.integers(min_value=1, max_value=4)),
        gamma=draw(st.sampled_from([0.0, 0.5, 0.9])),
        epsilon=draw(st.sampled_from([0.0, 0.1, 0.5, 1.0])),
        alpha=draw(st.sampled_from([0.2, 1.0])),
        beta=draw(st.sampled_from([0.1, 2.0])),
        features=features,
        shared_features=draw(st.booleans()),
        reward=draw(st.sampled_from(["sa", "sas"])),
    )


@given(spec=specs(), seed=seeds)
@settings(deadline=None, max_examples=150)
def test_vectorised_teacher_dataset_is_bit_identical_to_the_loop(spec, seed):
    vec = dy.teacher_dataset(spec, np.random.default_rng(seed), keep_prompts=True)
    loop = dy.teacher_dataset(spec, np.random.default_rng(seed), keep_prompts=True, vectorised=False)
    _assert_same_dataset(vec, loop)
    assert vec.X.flags.c_contiguous and vec.Sigma.shape == (spec.k * spec.frames,) + vec.Sigma.shape[1:]


@pytest.mark.parametrize("algorithm", ["sarsa", "actor_critic"])
def test_vectorised_teacher_dataset_at_the_ll_size(algorithm):
    """[LL] size S = 9, A = 4, d = 36, n = 20, gamma = 0.9: long loops where one flipped argmax shows."""
    spec = dy.TeacherSpec(algorithm=algorithm, S=9, A=4, n=20, gamma=0.9, k=6, frames=30)
    for seed in (0, 1):
        vec = dy.teacher_dataset(spec, np.random.default_rng(seed), keep_prompts=True)
        loop = dy.teacher_dataset(spec, np.random.default_rng(seed), keep_prompts=True, vectorised=False)
        _assert_same_dataset(vec, loop)


def test_teacher_dataset_rejects_a_non_bool_vectorised():
    with pytest.raises(ValueError, match="^vectorised:"):
        dy.teacher_dataset(dy.TeacherSpec(k=1, frames=1), np.random.default_rng(0), vectorised="yes")


# ---------------------------------------------------------------------------------------------
# The batched loops against lt.sarsa_loop / lt.actor_critic_loop directly
# ---------------------------------------------------------------------------------------------


def _mdps(k, S, A, gamma, seed, kind="dirichlet", reward="sa"):
    rng = np.random.default_rng(seed)
    branching = max(1, S // 2) if kind == "garnet" else None
    return [lt.random_mdp(S, A, gamma, rng, kind=kind, branching=branching, reward=reward) for _ in range(k)]


def _stack(mdps):
    return np.stack([m.P for m in mdps]), np.stack([m.r for m in mdps]), np.stack([m.mu0 for m in mdps])


@pytest.mark.parametrize("kind", ["dirichlet", "garnet"])
@pytest.mark.parametrize("reward", ["sa", "sas"])
@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("zero_start", [False, True])  # w0 = 0: every greedy choice is a tie
def test_sarsa_loop_batched_equals_sarsa_loop_per_mdp(kind, reward, shared, zero_start):
    k, S, A, d, n, T, gamma, eps = 4, 5, 3, 6, 7, 5, 0.8, 0.2
    mdps = _mdps(k, S, A, gamma, 3, kind, reward)
    rng = np.random.default_rng(4)
    phis = np.stack(
        [lt.random_features(S, A, d, rng)] * k if shared else [lt.random_features(S, A, d, rng) for _ in mdps]
    )
    w0 = np.zeros((k, d)) if zero_start else rng.uniform(-1, 1, (k, d))
    update = lambda X, w: lt.sarsa_update(X, w, 0.3)  # noqa: E731
    U = np.stack([np.random.default_rng([9, j]).random(lt.loop_draws(n, T)) for j in range(k)])
    res = lt.sarsa_loop_batched(
        *_stack(mdps), gamma, phis[0] if shared else phis, w0, update, U, n=n, n_updates=T, epsilon=eps
    )
    assert res.ws.shape == (k, T + 1, d) and res.Xs.shape == (k, T, 2 * d + 1, n)
    assert res.lams is None and res.gs is None
    for j, mdp in enumerate(mdps):
        one = lt.sarsa_loop(
            mdp, phis[j], w0[j], update, n=n, n_updates=T, epsilon=eps, rng=np.random.default_rng([9, j])
        )
        assert np.array_equal(res.ws[j], one.ws) and np.array_equal(res.Xs[j], one.Xs)


@pytest.mark.parametrize("kind", ["dirichlet", "garnet"])
@pytest.mark.parametrize("reward", ["sa", "sas"])
@pytest.mark.parametrize("shared", [False, True])
def test_actor_critic_loop_batched_equals_actor_critic_loop_per_mdp(kind, reward, shared):
    k, S, A, d, d_pi, n, T, gamma = 3, 4, 3, 5, 4, 6, 6, 0.7
    mdps = _mdps(k, S, A, gamma, 5, kind, reward)
    rng = np.random.default_rng(6)
    tables = [
        (lt.random_features(S, A, d, rng), lt.random_features(S, A, d_pi, rng))
        for _ in range(1 if shared else k)
    ]
    phis, phi_pis = (np.stack([t[i] for t in tables] * (k if shared else 1)) for i in (0, 1))
    w0, lam0 = rng.uniform(-1, 1, (k, d)), 3 * rng.uniform(-1, 1, (k, d_pi))
    update = lambda X, g, w, lam: lt.actor_critic_update(X, g, w, lam, 0.2, 1.5)  # noqa: E731
    U = np.stack([np.random.default_rng([8, j]).random(lt.loop_draws(n, T)) for j in range(k)])
    tabs = (phis[0], phi_pis[0]) if shared else (phis, phi_pis)
    res = lt.actor_critic_loop_batched(*_stack(mdps), gamma, *tabs, w0, lam0, update, U, n=n, n_updates=T)
    assert res.lams.shape == (k, T + 1, d_pi) and res.gs.shape == (k, T, d_pi, n)
    for j, mdp in enumerate(mdps):
        one = lt.actor_critic_loop(
            mdp,
            phis[j],
            phi_pis[j],
            w0[j],
            lam0[j],
            update,
            n=n,
            n_updates=T,
            rng=np.random.default_rng([8, j]),
        )
        for name in ("ws", "Xs", "lams", "gs"):
            assert np.array_equal(getattr(res, name)[j], getattr(one, name)), name


# ---------------------------------------------------------------------------------------------
# Bad input: ValueError naming the argument
# ---------------------------------------------------------------------------------------------


def _sarsa_args(k=2, S=3, A=2, d=4, n=3, T=2):
    P, r, mu0 = _stack(_mdps(k, S, A, 0.5, 0))
    rng = np.random.default_rng(1)
    args = {
        "P": P,
        "r": r,
        "mu0": mu0,
        "gamma": 0.5,
        "phi": lt.random_features(S, A, d, rng),
        "w0": np.zeros((k, d)),
        "update": lambda X, w: lt.sarsa_update(X, w, 0.2),
        "U": rng.random((k, lt.loop_draws(n, T))),
    }
    return args, {"n": n, "n_updates": T, "epsilon": 0.1}


def _bad_P(P):
    Q = P.copy()
    Q[0, 0, 0] += 0.5
    return Q


SARSA_FAULTS = [
    ("P", lambda a: a["P"][0]),
    ("P", lambda a: _bad_P(a["P"])),
    ("P", lambda a: np.full_like(a["P"], np.nan)),
    ("r", lambda a: a["r"][:, :, :1]),
    ("mu0", lambda a: a["mu0"][:1]),
    ("mu0", lambda a: 2 * a["mu0"]),
    ("gamma", lambda a: 1.0),
    ("phi", lambda a: a["phi"][:1]),
    ("phi", lambda a: np.stack([a["phi"]] * 3)),
    ("w0", lambda a: a["w0"][:, :-1]),
    ("w0", lambda a: a["w0"][0]),
    ("U", lambda a: a["U"][:, :-1]),
    ("U", lambda a: np.ones_like(a["U"])),
    ("U", lambda a: -a["U"]),
    ("update", lambda a: "teacher"),
]


@pytest.mark.parametrize(("name", "bad"), SARSA_FAULTS)
def test_sarsa_loop_batched_rejects_bad_arrays(name, bad):
    args, kw = _sarsa_args()
    args[name] = bad(args)
    with pytest.raises(ValueError, match=f"^{name}:"):
        lt.sarsa_loop_batched(**args, **kw)


@pytest.mark.parametrize(
    ("name", "value"), [("n", 0), ("n_updates", 0), ("n_updates", 1.5), ("epsilon", 1.5), ("epsilon", -0.1)]
)
def test_sarsa_loop_batched_rejects_bad_scalars(name, value):
    args, kw = _sarsa_args()
    kw[name] = value
    with pytest.raises(ValueError, match=f"^{name}:"):
        lt.sarsa_loop_batched(**args, **kw)


def test_batched_loops_reject_an_update_of_the_wrong_shape():
    args, kw = _sarsa_args()
    args["update"] = lambda X, w: w[:, :-1]
    with pytest.raises(ValueError, match=r"^update\(X, w\):"):
        lt.sarsa_loop_batched(**args, **kw)
    args, kw = _sarsa_args()
    del args["update"], kw["epsilon"]
    bad = lambda X, g, w, lam: (w, lam[0])  # noqa: E731
    with pytest.raises(ValueError, match=r"^update\(X, g, w, lam\):"):
        lt.actor_critic_loop_batched(**args, phi_pi=args["phi"], lam0=args["w0"], update=bad, **kw)


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("phi_pi", lambda a: a["phi_pi"][:, :1]),
        ("lam0", lambda a: a["lam0"][:1]),
        ("lam0", lambda a: np.full_like(a["lam0"], np.inf)),
        ("phi", lambda a: a["phi"][..., 0]),
        ("U", lambda a: a["U"].T),
    ],
)
def test_actor_critic_loop_batched_rejects_bad_input(name, bad):
    args, kw = _sarsa_args()
    del kw["epsilon"]
    args["phi_pi"], args["lam0"] = args["phi"][..., :3], np.zeros((2, 3))
    args["update"] = lambda X, g, w, lam: lt.actor_critic_update(X, g, w, lam, 0.2, 0.1)
    args[name] = bad(args)
    with pytest.raises(ValueError, match=f"^{name}:"):
        lt.actor_critic_loop_batched(**args, **kw)


def test_loop_draws_rejects_bad_counts():
    with pytest.raises(ValueError, match="^n:"):
        lt.loop_draws(0, 3)
    with pytest.raises(ValueError, match="^n_updates:"):
        lt.loop_draws(3, -1)

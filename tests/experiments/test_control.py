"""Deployment of a frozen block in the closed loop (S6)/(A5): gymnasium models, the (L2) fast
readout, block == teacher, the control JSON contract and resume."""

from __future__ import annotations

import json

import numpy as np
import pytest

import lsa_theory as lt
from lsa_theory import constructions as C
from lsa_theory.experiments import context_length, envs
from lsa_theory.experiments import control as ctl
from lsa_theory.experiments.control import experiment as control_experiment
from lsa_theory.rollout import DIVERGENCE_BOUND

GYM_CASES = [
    ("FrozenLake-v1", {"is_slippery": False}, (16, 4)),
    ("FrozenLake-v1", {"is_slippery": True}, (16, 4)),
    ("CliffWalking-v1", {}, (48, 4)),
    ("Taxi-v4", {}, (500, 6)),
]


@pytest.fixture(scope="module")
def models():
    return {(name, tuple(kw.items())): envs.gym_tabular(name, **kw) for name, kw, _ in GYM_CASES}


def _model(models, name, kw):
    return models[(name, tuple(kw.items()))]


# ---------------------------------------------------------------------------------------------- envs


@pytest.mark.parametrize(("name", "kw", "shape"), GYM_CASES)
def test_gym_tabular_is_a_valid_tabular_mdp(models, name, kw, shape):
    mdp = _model(models, name, kw)
    S, A = shape
    assert isinstance(mdp, lt.TabularMDP)
    assert mdp.P.shape == (S, A, S) and mdp.r.shape == (S, A, S) and mdp.mu0.shape == (S,)
    assert mdp.P.dtype == np.float64 and mdp.gamma == 0.9
    np.testing.assert_allclose(mdp.P.sum(-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(mdp.mu0.sum(), 1.0, atol=1e-12)
    # r is 0 wherever s' is unreachable
    assert np.all(mdp.r[mdp.P == 0] == 0)
    # mu0 is gymnasium's initial state distribution
    import gymnasium as gym

    env = gym.make(name, **kw)
    np.testing.assert_allclose(mdp.mu0, env.unwrapped.initial_state_distrib, atol=1e-15)
    # rbar equals the expected reward of the listed outcomes for every non-terminal (s, a)
    term = envs.terminal_states(mdp)
    table = env.unwrapped.P
    for s in np.flatnonzero(~term)[:40]:
        for a in range(A):
            expected = sum(p * r for p, _, r, _ in table[s][a])
            assert mdp.r_sa[s, a] == pytest.approx(expected, abs=1e-12)
    env.close()


@pytest.mark.parametrize(("name", "kw", "shape"), GYM_CASES)
def test_terminal_states_are_absorbing(models, name, kw, shape):
    mdp = _model(models, name, kw)
    term = envs.terminal_states(mdp)
    expected = {
        "FrozenLake-v1": [5, 7, 11, 12, 15],
        "CliffWalking-v1": [47],
        "Taxi-v4": [0, 85, 410, 475],
    }[name]
    assert np.flatnonzero(term).tolist() == expected
    for t in expected:
        assert np.all(mdp.P[t, :, t] == 1.0)
        assert np.all(mdp.r[t] == 0.0)
    assert np.all(mdp.mu0[term] == 0.0)


@pytest.mark.parametrize(("name", "kw", "shape"), GYM_CASES)
def test_model_matches_gymnasium_step_statistics(models, name, kw, shape):
    """Empirical next-state frequencies, rewards and done flags of env.step() agree with the model."""
    import gymnasium as gym

    mdp = _model(models, name, kw)
    term = envs.terminal_states(mdp)
    env = gym.make(name, **kw).unwrapped
    env.reset(seed=123)
    pick = np.random.default_rng(5)
    states = pick.choice(np.flatnonzero(~term), size=4, replace=False)
    N = 400
    for s in states:
        for a in range(mdp.n_actions):
            counts = np.zeros(mdp.n_states)
            for _ in range(N):
                env.s = int(s)
                s2, r, done, _, _ = env.step(a)
                counts[s2] += 1
                assert r == pytest.approx(mdp.r[s, a, s2], abs=1e-12)
                assert bool(done) == bool(term[s2])
            freq = counts / N
            # |freq - p| < 6 sigma (sigma <= 0.025 at N = 400)
            assert np.abs(freq - mdp.P[s, a]).max() < 0.15
            assert set(np.flatnonzero(counts)) <= set(np.flatnonzero(mdp.P[s, a]))
    # reset() draws from mu0's support
    starts = {env.reset(seed=k)[0] for k in range(30)}
    assert starts <= set(np.flatnonzero(mdp.mu0))


def test_frozenlake_optimal_policy_reaches_the_goal(models):
    mdp = _model(models, "FrozenLake-v1", {"is_slippery": False})
    sol = lt.optimal(mdp)
    assert lt.normalized_return(mdp, sol.pi, sol) == pytest.approx(1.0, abs=1e-12)
    assert lt.normalized_return(mdp, lt.uniform_policy(mdp), sol) == pytest.approx(0.0, abs=1e-12)
    s, path = 0, [0]
    for _ in range(6):
        s = int(mdp.P[s, sol.policy[s]].argmax())
        path.append(s)
    assert path[-1] == 15 and 5 not in path and 7 not in path and 11 not in path and 12 not in path
    assert mdp.mu0 @ sol.V == pytest.approx(0.9**5, abs=1e-12)  # reward 1 on the 6th step


def test_heldout_family_seed_scheme():
    mdps = list(envs.heldout_family(3, seed=4))
    assert len(mdps) == 3
    for i, mdp in enumerate(mdps):
        assert mdp.P.shape == (9, 4, 9) and mdp.r.shape == (9, 4) and mdp.gamma == 0.5
        ref = lt.random_mdp(9, 4, 0.5, np.random.default_rng([4, 10_000 + i]))
        np.testing.assert_array_equal(mdp.P, ref.P)
        np.testing.assert_array_equal(mdp.r, ref.r)
    train = lt.random_mdp(9, 4, 0.5, np.random.default_rng(4))
    assert not np.allclose(train.P, mdps[0].P)
    assert envs.HELDOUT_NAME == "random-S9-A4"
    assert not envs.terminal_states(mdps[0]).any()


def test_env_keys_round_trip():
    key = envs.env_key("FrozenLake-v1", is_slippery=False)
    assert key == "FrozenLake-v1:is_slippery=False"
    assert envs.parse_env_key(key) == ("FrozenLake-v1", {"is_slippery": False})
    assert envs.parse_env_key("Taxi-v4") == ("Taxi-v4", {})


# ----------------------------------------------------------------------------------- (L2) readout


@pytest.mark.parametrize("d_pi", [0, 2])
def test_l2_fast_readout_equals_lsa_block(rng, d_pi):
    d, n = 4, 7
    layout = lt.Layout(d, d_pi)
    for _ in range(5):
        P = rng.standard_normal((layout.D, layout.D)) / layout.D
        V = rng.standard_normal((layout.D, layout.D)) / layout.D
        X = rng.standard_normal((2 * d + 1, n))
        w = rng.standard_normal(d)
        weights = ctl.resolve_weights((P, V), layout)
        if d_pi:
            g = rng.standard_normal((d_pi, n))
            lam = rng.standard_normal(d_pi)
            H = lt.actor_critic_prompt(X, g, w, lam)
            fast = ctl.l2_readout(np.vstack([X, g]), np.concatenate([[1.0], w, lam]), weights)
        else:
            H = lt.sarsa_prompt(X, w)
            fast = ctl.l2_readout(X, np.concatenate([[1.0], w]), weights)
        slow = lt.readout(lt.lsa_block(H, P, V), layout.k)
        assert np.abs(fast - slow).max() < 1e-12 * max(1.0, np.abs(slow).max())


@pytest.mark.parametrize("d_pi", [0, 3])
def test_sparse_construction_equals_constructions_numeric(rng, d_pi):
    layout = lt.Layout(5, d_pi)
    dense = ctl.constructed_blocks(
        layout, 0.3, 0.2 if d_pi else None, algo="actor_critic" if d_pi else "sarsa"
    )
    sparse = ctl.constructed_blocks(
        layout, 0.3, 0.2 if d_pi else None, algo="actor_critic" if d_pi else "sarsa", dense_max_D=0
    )
    assert dense.P is not None and sparse.P is None
    for k in ("P12", "P22", "Vbar21", "Vbar22"):
        np.testing.assert_array_equal(getattr(dense, k).toarray(), getattr(sparse, k).toarray())
    X = rng.standard_normal((2 * 5 + 1, 6))
    w = rng.standard_normal(5)
    if not d_pi:
        out = ctl.l2_readout(X, np.concatenate([[1.0], w]), sparse)
        np.testing.assert_allclose(out, lt.sarsa_update(X, w, 0.3), rtol=0, atol=1e-14)


# ------------------------------------------------------------------------------------ deployment


@pytest.mark.parametrize("forward", ["l1", "l2"])
def test_constructed_deployment_equals_teacher(forward):
    """Same rng stream: identical trajectories and w sequences (to 1e-10) on 3 small MDPs."""
    for i, mdp in enumerate(envs.heldout_family(3, seed=1)):
        sol = lt.optimal(mdp)
        kw = dict(n=10, n_updates=60, epsilon=0.1, alpha=0.2, eval_every=20, solution=sol)
        a = ctl.deploy(mdp, "constructed", rng=envs.heldout_rng(1, i, 1), forward=forward, **kw)
        b = ctl.deploy(mdp, "teacher", rng=envs.heldout_rng(1, i, 1), **kw)
        assert a.forward == forward and b.forward == "teacher"
        np.testing.assert_array_equal(a.states, b.states)
        np.testing.assert_array_equal(a.actions, b.actions)
        assert np.abs(a.ws - b.ws).max() < 1e-10
        np.testing.assert_array_equal(a.normalized_return, b.normalized_return)
        assert a.updates.tolist() == [0, 20, 40, 60] and np.isfinite(a.normalized_return).all()


def test_actor_critic_deployment_equals_teacher():
    mdp = next(envs.heldout_family(1, seed=2))
    kw = dict(n=10, n_updates=40, epsilon=0.1, alpha=0.2, beta=0.1, eval_every=10, algo="actor_critic")
    a = ctl.deploy(mdp, "constructed", rng=np.random.default_rng(3), forward="l1", **kw)
    b = ctl.deploy(mdp, "constructed", rng=np.random.default_rng(3), forward="l2", **kw)
    c = ctl.deploy(mdp, "teacher", rng=np.random.default_rng(3), **kw)
    assert a.lams.shape == (41, 36)
    for r in (a, b):
        assert np.abs(r.ws - c.ws).max() < 1e-10 and np.abs(r.lams - c.lams).max() < 1e-10
        np.testing.assert_array_equal(r.states, c.states)


def test_npz_weights_hook(tmp_path):
    mdp = next(envs.heldout_family(1, seed=0))
    P, V = C.sarsa(36, 0.2)
    path = tmp_path / "trained.npz"
    np.savez(path, P=P, V=V)
    kw = dict(n=10, n_updates=20, epsilon=0.1, alpha=0.2, eval_every=10)
    a = ctl.deploy(mdp, str(path), rng=np.random.default_rng(0), **kw)
    b = ctl.deploy(mdp, (P, V), rng=np.random.default_rng(0), **kw)
    c = ctl.deploy(mdp, "constructed", rng=np.random.default_rng(0), **kw)
    np.testing.assert_array_equal(a.ws, b.ws)
    assert np.abs(a.ws - c.ws).max() < 1e-12
    bad = tmp_path / "bad.npz"
    np.savez(bad, P=P)
    with pytest.raises(ValueError, match="weights"):
        ctl.deploy(mdp, str(bad), rng=np.random.default_rng(0), **kw)
    with pytest.raises(ValueError, match="weights"):
        ctl.deploy(mdp, (P[:-3, :-3], V[:-3, :-3]), rng=np.random.default_rng(0), **kw)


def test_gym_deployment_resets_at_terminal_states(models):
    mdp = _model(models, "FrozenLake-v1", {"is_slippery": False})
    r = ctl.deploy(
        mdp,
        "constructed",
        n=20,
        n_updates=30,
        epsilon=0.1,
        alpha=0.2,
        rng=np.random.default_rng(0),
        eval_every=10,
    )
    term = envs.terminal_states(mdp)
    ends = r.states[:-1, -1]
    starts = r.states[1:, 0]
    # a context ending in a terminal state is followed by one starting at mu0's support (state 0)
    assert np.all(starts[term[ends]] == 0)
    assert np.all(starts[~term[ends]] == ends[~term[ends]])
    assert r.resets == int(term[r.states[:, -1]].sum())


def test_tabular_sarsa_learns_a_small_mdp():
    mdp = next(envs.heldout_family(1, seed=0))
    sol = lt.optimal(mdp)
    r = ctl.tabular_sarsa(
        mdp,
        n=20,
        n_updates=200,
        epsilon=0.1,
        alpha=0.2,
        rng=np.random.default_rng(0),
        eval_every=50,
        solution=sol,
    )
    assert r.normalized_return[-1] > 0.8
    assert r.ws.shape == (201, 36) and np.all(r.ws[0] == 0)


# ------------------------------------------------------------------------------ experiment driver


def _tiny_config(**kw):
    base = dict(
        envs=(envs.HELDOUT_NAME, "FrozenLake-v1:is_slippery=False"),
        actor_critic_envs=(envs.HELDOUT_NAME,),
        n=10,
        n_updates=20,
        eval_every=5,
        n_heldout=2,
        n_seeds=1,
    )
    return ctl.ControlConfig(**(base | kw))


def test_control_json_contract_and_resume(tmp_path, monkeypatch, figures):
    cfg = _tiny_config()
    doc = ctl.run_control(cfg, tmp_path)
    assert (tmp_path / "control.json").exists() and (tmp_path / "control.npz").exists()
    saved = json.loads((tmp_path / "control.json").read_text())
    assert saved["envs"] == doc["envs"]
    names = [(r["name"], r["algo"]) for r in doc["envs"]]
    assert names == [
        ("random-S9-A4", "sarsa"),
        ("random-S9-A4", "actor_critic"),
        ("FrozenLake-v1:is_slippery=False", "sarsa"),
    ]
    for row in doc["envs"]:
        assert set(row) >= set(ctl.ENV_FIELDS)
        assert row["weights"] == "constructed" and row["updates"] == 20
        assert isinstance(row["normalized_return"], float)
        assert row["normalized_return"] == pytest.approx(row["normalized_return_teacher"], abs=1e-12)
        assert row["max_w_diff"] < 1e-10
        assert row["normalized_return_optimal"] == pytest.approx(1.0, abs=1e-10)
        assert abs(row["normalized_return_uniform"]) < 1e-10
        units = [u for u in doc["units"] if u["env"] == row["name"] and u["algo"] == row["algo"]]
        assert row["n_seeds"] == len(units) == (2 if row["name"] == "random-S9-A4" else 1)
        assert row["normalized_return"] == pytest.approx(np.mean([u["normalized_return"] for u in units]))
    assert len(doc["envs"][0]["curves"]["block_mean"]) == 5

    def boom(*args, **kwargs):
        raise AssertionError("a finished unit was recomputed")

    monkeypatch.setattr(control_experiment, "run_unit", boom)
    again = ctl.run_control(cfg, tmp_path)
    assert again["envs"] == doc["envs"] and again["units"] == doc["units"]
    with pytest.raises(AssertionError, match="recomputed"):  # another unit configuration is recomputed
        ctl.run_control(_tiny_config(alpha=0.1), tmp_path)

    paths = [ctl.plot_control(tmp_path)]
    sweep = context_length.context_length_sweep((2, 5), n_mdps=2, n_updates=10, seed=0, out=tmp_path)
    paths.append(context_length.plot_context_length(tmp_path))
    assert all(p.exists() for p in paths)
    assert figures.assert_error_bars_labelled(figures["control.png"]) == len(doc["envs"])
    assert figures.assert_error_bars_labelled(figures["context_length.png"]) == 1
    assert [r["n"] for r in sweep["rows"]] == [2, 5]
    for r in sweep["rows"]:
        assert set(r) >= {"n", "normalized_return", "normalized_return_sem", "normalized_return_teacher"}
        assert r["normalized_return"] == pytest.approx(r["normalized_return_teacher"], abs=1e-12)
        assert r["max_w_diff"] < 1e-10
    assert json.loads((tmp_path / "context_length.json").read_text())["rows"] == sweep["rows"]


def test_quick_config_is_the_documented_one():
    q = ctl.ControlConfig.quick()
    assert envs.HELDOUT_NAME in q.envs and "Taxi-v4" not in q.envs
    assert q.n_heldout == 5 and q.n_updates == 300
    full = ctl.ControlConfig()
    assert "Taxi-v4" in full.envs and full.n_heldout >= 20 and full.n_updates == 1000
    assert (full.n, full.alpha, full.epsilon) == (20, 0.2, 0.1)


# ------------------------------------------------------------------------------------ bad inputs


def test_bad_inputs_raise_value_error(tmp_path):
    mdp = next(envs.heldout_family(1, seed=0))
    ok = dict(n=5, n_updates=3, epsilon=0.1, alpha=0.2, rng=np.random.default_rng(0), eval_every=1)
    cases = [
        (lambda: envs.gym_tabular("Pong-v5"), "name"),
        (lambda: envs.gym_tabular("Taxi-v4", is_slippery=True), "kwargs"),
        (lambda: envs.gym_tabular("CliffWalking-v1", gamma=1.0), "gamma"),
        (lambda: list(envs.heldout_family(0)), "n_mdps"),
        (lambda: envs.make_env(envs.HELDOUT_NAME), "key"),
        (lambda: envs.parse_env_key("Taxi-v4:bad"), "key"),
        (lambda: ctl.deploy(None, "constructed", **ok), "mdp"),
        (lambda: ctl.deploy(mdp, "constructed", **(ok | {"n": 0})), "n"),
        (lambda: ctl.deploy(mdp, "constructed", **(ok | {"n_updates": -1})), "n_updates"),
        (lambda: ctl.deploy(mdp, "constructed", **(ok | {"epsilon": 1.5})), "epsilon"),
        (lambda: ctl.deploy(mdp, "constructed", **(ok | {"alpha": 0.0})), "alpha"),
        (lambda: ctl.deploy(mdp, "constructed", **(ok | {"eval_every": 0})), "eval_every"),
        (lambda: ctl.deploy(mdp, "constructed", **(ok | {"rng": 3})), "rng"),
        (lambda: ctl.deploy(mdp, "constructed", algo="q-learning", **ok), "algo"),
        (lambda: ctl.deploy(mdp, "constructed", forward="l3", **ok), "forward"),
        (lambda: ctl.deploy(mdp, "random", **ok), "weights"),
        (lambda: ctl.deploy(mdp, str(tmp_path / "missing.npz"), **ok), "weights"),
        (lambda: ctl.deploy(mdp, (np.eye(3), np.eye(3)), **ok), "weights"),
        (lambda: ctl.deploy(mdp, "constructed", d_pi=3, **ok), "d_pi"),
        (lambda: ctl.deploy(mdp, (np.eye(110), np.eye(110)), algo="actor_critic", **ok), "weights"),
        (lambda: ctl.tabular_sarsa(mdp, **(ok | {"alpha": -1.0})), "alpha"),
        (
            lambda: ctl.l2_readout(
                np.zeros((5, 3)), np.zeros(37), ctl.constructed_blocks(lt.Layout(36), 0.2, algo="sarsa")
            ),
            "X",
        ),
        (lambda: ctl.constructed_blocks(3, 0.2, algo="sarsa"), "layout"),
        (lambda: ctl.ControlConfig(n_updates=0), "n_updates"),
        (lambda: ctl.ControlConfig(envs=()), "envs"),
        (lambda: ctl.ControlConfig(weights="teacher"), "weights"),
        (
            lambda: ctl.ControlConfig(actor_critic_envs=("Taxi-v4",), envs=(envs.HELDOUT_NAME,)),
            "actor_critic_envs",
        ),
        (lambda: ctl.run_control("quick"), "cfg"),
        (lambda: context_length.context_length_sweep([], 2, 10, 0), "ns"),
        (lambda: context_length.context_length_sweep([2, 0], 2, 10, 0), "ns"),
    ]
    for fn, name in cases:
        with pytest.raises(ValueError, match=name):
            fn()
    # forward="l1" needs dense weights, unavailable for the sparse Taxi-sized construction
    with pytest.raises(ValueError, match="forward"):
        ctl.loop_update(
            ctl.constructed_blocks(lt.Layout(600), 0.2, algo="sarsa"),
            lt.Layout(600),
            C.closed_loop_algorithm("sarsa"),
            {"alpha": 0.2},
            "l1",
        )


def test_divergent_loop_stops_cleanly(models):
    """Semi-gradient SARSA with too large a step diverges on CliffWalking: the loop stops at the
    first parameter beyond DIVERGENCE_BOUND, without overflow, and later evaluations are NaN."""
    mdp = _model(models, "CliffWalking-v1", {})
    kw = dict(n=20, n_updates=250, epsilon=0.1, alpha=5.0, eval_every=25)
    a = ctl.deploy(mdp, "constructed", rng=np.random.default_rng(0), **kw)
    b = ctl.deploy(mdp, "teacher", rng=np.random.default_rng(0), **kw)
    assert a.diverged_at is not None and a.diverged_at == b.diverged_at
    assert np.isnan(a.normalized_return[-1]) and np.isnan(a.ws[-1]).all()
    assert np.isfinite(a.ws[: a.diverged_at]).all()
    assert np.abs(a.ws[: a.diverged_at]).sum(axis=1).max() <= DIVERGENCE_BOUND


# ------------------------------------------------------------------- issue 10, item 6: the held-out pipeline


def _heldout_stream(i: int):
    """Held-out MDP ``i``'s loop stream ``heldout_rng(0, i, 1)`` after its first draws, as documented:
    ``(rng, phi (9, 4, 36), w_0 (36,))``."""
    rng = envs.heldout_rng(0, i, 1)
    phi = lt.random_features(9, 4, None, rng)
    return rng, phi, rng.uniform(-1.0, 1.0, 36)


def test_deploy_scores_the_greedy_policy_of_per_mdp_features():
    """The reported return is the *greedy* policy's, on features drawn from *this* MDP's stream
    (``heldout_rng(seed, i, 1)``: phi, then w_0), recomputed here independently."""
    phis = []
    for i, mdp in enumerate(envs.heldout_family(3, seed=0)):
        sol = lt.optimal(mdp)
        _, phi, w0 = _heldout_stream(i)
        res = ctl.deploy(
            mdp, "constructed", n=10, n_updates=30, epsilon=0.1, alpha=0.2, eval_every=10,
            rng=envs.heldout_rng(0, i, 1), solution=sol,
        )  # fmt: skip
        np.testing.assert_array_equal(res.ws[0], w0)
        for j, t in enumerate(res.updates):
            Q = phi @ res.ws[t]
            assert res.normalized_return[j] == pytest.approx(
                lt.normalized_return(mdp, lt.greedy(Q), sol), abs=1e-12
            )
            eps = lt.normalized_return(mdp, lt.epsilon_greedy(Q, 0.1), sol)
            assert res.normalized_return_behaviour[j] == pytest.approx(eps, abs=1e-12)
        assert np.abs(res.normalized_return - res.normalized_return_behaviour).max() > 1e-3
        phis.append(phi)
    assert all(np.abs(phis[a] - phis[b]).max() > 0.1 for a in range(3) for b in range(a))


def test_run_control_units_equal_an_independent_teacher_loop():
    """Every held-out unit of ``run_control`` equals the exact teacher run here with
    :func:`lsa_theory.sarsa_loop` on the documented MDP and stream: per-MDP features and w_0,
    greedy return at the last update."""
    cfg = ctl.ControlConfig(
        envs=(envs.HELDOUT_NAME,),
        actor_critic_envs=(),
        n_heldout=3,
        n_updates=30,
        eval_every=10,
        tabular=False,
    )
    doc = ctl.run_control(cfg)
    units = [u for u in doc["units"] if u["env"] == envs.HELDOUT_NAME]
    assert [u["seed"] for u in units] == [0, 1, 2]
    for u in units:
        i = u["seed"]
        mdp = lt.random_mdp(9, 4, 0.5, envs.heldout_rng(0, i))
        rng, phi, w0 = _heldout_stream(i)
        loop = lt.sarsa_loop(
            mdp, phi, w0, lambda X, w: lt.sarsa_update(X, w, 0.2), n=20, n_updates=30, epsilon=0.1, rng=rng
        )
        expect = lt.normalized_return(mdp, lt.greedy(phi @ loop.ws[-1]), lt.optimal(mdp))
        assert u["normalized_return_teacher"] == pytest.approx(expect, abs=1e-9)
        assert u["normalized_return"] == pytest.approx(expect, abs=1e-9)


def test_every_unit_deploys_with_the_configured_beta(monkeypatch, tmp_path):
    """The actor-critic units run with ``cfg.beta`` (the block and its teacher alike), the SARSA
    units with none: the config's step size reaches ``deploy``."""
    import lsa_theory.experiments.control as ctl
    from lsa_theory.experiments.envs import HELDOUT_NAME

    seen, real = [], ctl.deploy

    def recording(mdp, weights, **kw):
        seen.append((kw["algo"], weights, kw["beta"]))
        return real(mdp, weights, **kw)

    monkeypatch.setattr(control_experiment, "deploy", recording)
    cfg = ctl.ControlConfig(
        envs=(HELDOUT_NAME,), actor_critic_envs=(HELDOUT_NAME,), n=10, n_updates=10, eval_every=5,
        n_heldout=1, n_seeds=1, beta=0.37, tabular=False,
    )  # fmt: skip
    ctl.run_control(cfg, tmp_path)
    ac = [b for algo, _, b in seen if C.closed_loop_algorithm(algo).has_actor]
    assert ac and all(b == 0.37 for b in ac)
    assert all(b is None for algo, _, b in seen if not C.closed_loop_algorithm(algo).has_actor)

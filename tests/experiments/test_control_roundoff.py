"""Issue 18: control verdicts a referee can trust on any machine. The round-off bounds of the block's
forward passes and of the teacher hold against exact rational arithmetic; "block = teacher" is
checked against them (and fails for a block off by a relative 1e-9 or a wrong alpha); teacher
properties are reported, not failed; verdicts survive inputs perturbed at relative 1e-13."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np
import pytest

import lsa_theory as lt
from lsa_theory import cli
from lsa_theory import constructions as C
from lsa_theory.experiments import control as ctl
from lsa_theory.experiments import envs
from lsa_theory.experiments.control import deployment as cl
from lsa_theory.experiments.control import experiment as control_experiment
from lsa_theory.experiments.control import roundoff as cr
from lsa_theory.experiments.control.weights import (
    constructed_blocks,
    l1_readout_error_bound,
    l2_readout_error_bound,
)
from lsa_theory.experiments.criteria import control_passed
from lsa_theory.roundoff import UNIT_ROUNDOFF, assert_same_verdicts, perturbed


def _exact_teacher(X, w, alpha):
    """(S2) in exact rational arithmetic on the float inputs."""
    d = w.size
    n = X.shape[1]
    Xf = [[Fraction(float(v)) for v in row] for row in X]
    wf = [Fraction(float(v)) for v in w]
    a = Fraction(float(alpha))
    out = []
    deltas = []
    for i in range(n):
        delta = Xf[2 * d][i] + sum((Xf[d + j][i] - Xf[j][i]) * wf[j] for j in range(d))
        deltas.append(delta)
    for j in range(d):
        out.append(wf[j] + a / n * sum(deltas[i] * Xf[j][i] for i in range(n)))
    return out


def _columns(rng, d, n, scale):
    phi = rng.uniform(-1, 1, (d, n + 1)) * scale
    r = rng.uniform(-1, 1, n) * 100.0
    return lt.context_columns(phi[:, :-1].T, phi[:, 1:].T, r, 0.9)


@pytest.mark.parametrize(("d", "n", "scale"), [(3, 4, 1.0), (4, 6, 1e3), (2, 5, 1e-2)])
def test_bounds_hold_against_exact_arithmetic(d, n, scale):
    """|computed - exact| <= bound for (L1), (L2) and the teacher (exact: fractions of the float
    inputs), and every bound is within 1e4 u of the magnitudes (not vacuous)."""
    rng = np.random.default_rng(d * 100 + n)
    alpha = 0.2
    lay = lt.Layout(d)
    P, V = C.sarsa(d, alpha)
    blocks = constructed_blocks(lay, alpha, algo="sarsa")
    for _ in range(5):
        X = _columns(rng, d, n, scale)
        w = rng.uniform(-1, 1, d) * 1e3
        ex = _exact_teacher(X, w, alpha)
        exact = np.array([float(v) for v in ex])
        H = lt.sarsa_prompt(X, w)
        l1 = lt.readout(lt.lsa_block(H, P, V), d)
        l2 = ctl.l2_readout(X, np.concatenate([[1.0], w]), blocks)
        te = lt.sarsa_update(X, w, alpha)
        bounds = {
            "l1": (l1, l1_readout_error_bound(H, P, V, d)),
            "l2": (l2, l2_readout_error_bound(X, np.concatenate([[1.0], w]), blocks)),
            "teacher": (te, lt.sarsa_update_error_bound(X, w, alpha)),
        }
        for forward, value in (("l1", l1), ("l2", l2)):
            both = cr.block_teacher_error_bound(X, None, w, None, blocks, forward, alpha)
            assert np.all(np.abs(value - te) <= both)
            np.testing.assert_allclose(both, bounds[forward][1] + bounds["teacher"][1])
        scale_out = np.abs(exact) + np.abs(X).max() ** 2 * np.abs(w).max() * d
        for name, (value, bound) in bounds.items():
            err = np.array([float(abs(Fraction(float(v)) - e)) for v, e in zip(value, ex, strict=True)])
            assert np.all(err <= bound), (name, err, bound)
            assert np.all(bound <= 1e4 * UNIT_ROUNDOFF * scale_out), (name, bound, scale_out)


def _exact_l1_readout(H, P, V, k):
    """(L1) readout in exact rational arithmetic on the float inputs."""
    F = np.vectorize(lambda v: Fraction(float(v)), otypes=[object])
    H, P, V = F(H), F(P), F(V)
    n = H.shape[1] - 1
    out = H + (V @ (H @ H.T)) @ (P @ H) / n
    return out[-k:, -1]


def test_actor_critic_bounds_hold_against_exact_arithmetic():
    """(A1)/(A3): the (L1) readout bound and the (A2) teacher bound hold exactly; the scores' bound
    holds against exact softmax scores computed in high precision."""
    rng = np.random.default_rng(7)
    d, d_pi, n, alpha, beta = 2, 3, 5, 0.2, 0.1
    P, V = C.actor_critic(d, d_pi, alpha, beta)
    for _ in range(4):
        X = _columns(rng, d, n, 1.0)
        g = rng.uniform(-1, 1, (d_pi, n))
        w, lam = rng.uniform(-1, 1, d) * 10, rng.uniform(-1, 1, d_pi) * 10
        H = lt.actor_critic_prompt(X, g, w, lam)
        exact = _exact_l1_readout(H, P, V, d + d_pi)
        l1 = lt.readout(lt.lsa_block(H, P, V), d + d_pi)
        tw, tl = lt.actor_critic_update(X, g, w, lam, alpha, beta)
        for value, bound in (
            (l1, l1_readout_error_bound(H, P, V, d + d_pi)),
            (np.concatenate([tw, tl]), lt.sarsa_update_error_bound(X, w, alpha, g, lam, beta)),
        ):
            err = np.array([float(abs(Fraction(float(v)) - e)) for v, e in zip(value, exact, strict=True)])
            assert np.all(err <= bound), (err, bound)
    import mpmath

    mpmath.mp.dps = 50
    phi_pi = rng.uniform(-1, 1, (4, 3, d_pi))
    lam = rng.uniform(-1, 1, d_pi) * 30
    computed = lt.score(phi_pi, lam)
    bound = cr.score_error_bound(phi_pi, lam)
    for s in range(4):
        z = [mpmath.fsum(mpmath.mpf(float(phi_pi[s, a, j])) * mpmath.mpf(float(lam[j])) for j in range(d_pi))
             for a in range(3)]  # fmt: skip
        e = [mpmath.exp(v - max(z)) for v in z]
        pi = [v / mpmath.fsum(e) for v in e]
        for a in range(3):
            for j in range(d_pi):
                mean = mpmath.fsum(pi[b] * mpmath.mpf(float(phi_pi[s, b, j])) for b in range(3))
                exact = mpmath.mpf(float(phi_pi[s, a, j])) - mean
                assert abs(float(exact - mpmath.mpf(float(computed[s, a, j])))) <= bound[s, a, j]


def _pair(mdp, T, *, forward="auto", algo="sarsa", weights="constructed", seed=0):
    kw = dict(n=20, n_updates=T, epsilon=0.1, alpha=0.2, eval_every=10, algo=algo, error_bounds=True)
    if algo != "sarsa":
        kw["beta"] = 0.1
    b = ctl.deploy(mdp, weights, rng=np.random.default_rng(seed), forward=forward, **kw)
    t = ctl.deploy(mdp, "teacher", rng=np.random.default_rng(seed), **kw)
    return b, t


@pytest.mark.parametrize(("forward", "algo"), [("l1", "sarsa"), ("l2", "sarsa"), ("l1", "actor_critic")])
def test_block_equals_teacher_within_the_bounds(forward, algo):
    mdp = next(envs.heldout_family(1, seed=3))
    b, t = _pair(mdp, 60, forward=forward, algo=algo)
    check = cr.block_teacher_check(b, t)
    assert check["block_equals_teacher"], check
    assert check["identity_max_ratio"] < 0.5 and check["max_w_diff_over_tol"] < 0.5
    assert check["first_flip_at"] is None and not check["teacher_diverged"]
    assert b.w_err.shape == b.ws.shape[:1] + (b.ws.shape[1] + (0 if b.lams is None else b.lams.shape[1]),)


@pytest.mark.parametrize("forward", ["l1", "l2"])
def test_block_off_by_relative_1e9_fails_at_the_first_update(monkeypatch, forward):
    """Mutation: the block's update times (1 + 1e-9). Caught at update 1, long before any flip."""
    real = cl.loop_update

    def off(*args, **kwargs):
        update, used = real(*args, **kwargs)
        if used == "teacher":
            return update, used
        return (
            lambda X, g, w, lam: tuple(None if v is None else v * (1 + 1e-9) for v in update(X, g, w, lam))
        ), used

    monkeypatch.setattr(cl, "loop_update", off)
    mdp = next(envs.heldout_family(1, seed=3))
    b, t = _pair(mdp, 5, forward=forward)
    check = cr.block_teacher_check(b, t)
    assert not check["block_equals_teacher"]
    assert b.identity_ratio[0] > 10 and check["max_w_diff_over_tol"] > 10
    assert check["first_flip_at"] is None


def test_wrong_alpha_in_the_deployed_block_exits_1(monkeypatch, capsys):
    """Mutation: the deployed construction uses alpha * 1.01 while the teacher uses alpha."""
    real = cl.resolve_weights

    def wrong(weights, layout, *, alpha=None, beta=None, algo=None, hyper=None, attention=None):
        if weights == "constructed":
            return constructed_blocks(layout, alpha * 1.01, beta, algo=algo, hyper=hyper)
        return real(weights, layout, alpha=alpha, beta=beta, algo=algo, hyper=hyper, attention=attention)

    monkeypatch.setattr(cl, "resolve_weights", wrong)
    rc = cli.main(["control", "--quick", "--json", "--updates", "5"])
    import json

    doc = json.loads(capsys.readouterr().out)
    assert rc == 1 and not doc["passed"]
    assert all(not e["passed"] and e["identity_max_ratio"] > 1e3 for e in doc["envs"])


def test_teacher_properties_are_reported_not_failed():
    """A diverging teacher (CliffWalking, alpha = 5: both loops stop at DIVERGENCE_BOUND) is a
    property of the teacher: reported in the keys, and the row passes while the block follows it."""
    mdp = envs.make_env("CliffWalking-v1", 0.9)
    kw = dict(n=20, n_updates=250, epsilon=0.1, alpha=5.0, eval_every=25, error_bounds=True)
    b = ctl.deploy(mdp, "constructed", rng=np.random.default_rng(0), **kw)
    t = ctl.deploy(mdp, "teacher", rng=np.random.default_rng(0), **kw)
    check = cr.block_teacher_check(b, t)
    assert t.diverged_at is not None and check["teacher_diverged"]
    assert check["teacher_diverged_at"] <= t.diverged_at
    assert check["block_equals_teacher"], check
    row = {"weights": "constructed", "block_equals_teacher": True, "teacher_diverged": True}
    assert control_passed(row)
    assert not control_passed(row | {"block_equals_teacher": False})
    # rows saved before issue 18 keep the old rule
    assert control_passed({"weights": "constructed", "max_w_rel_diff_before_mismatch": 1e-12})


def test_flip_before_the_model_allows_it_fails():
    """A trajectory mismatch where the round-off model excludes an argmax flip is a failure."""
    mdp = next(envs.heldout_family(1, seed=3))
    b, t = _pair(mdp, 30)
    actions = b.actions.copy()
    actions[3, 5] = (actions[3, 5] + 1) % mdp.n_actions
    check = cr.block_teacher_check(dataclasses.replace(b, actions=actions), t)
    assert check["first_flip_at"] == 4 and check["flip_possible_at"] is None
    assert not check["block_equals_teacher"]


# ----------------------------------------------------------------------- robustness to rounding


def _control_verdicts(cfg, tree, monkeypatch_ctx):
    """Per-env pass/fail and the exit code of ``run_control(cfg)`` with the MDPs' ``r``, ``mu0``
    and every unit's features and ``w_0`` multiplied by the factors in ``tree``."""
    real_deploy, real_get = ctl.deploy, control_experiment._MDPCache.get

    def get(self, env, i):
        mdp, sol, r1, r2 = real_get(self, env, i)
        if env in tree["mdp"]:
            mdp = dataclasses.replace(mdp, r=tree["mdp"][env]["r"], mu0=tree["mdp"][env]["mu0"])
            sol = lt.optimal(mdp)
        return mdp, sol, r1, r2

    def deploy(mdp, weights, **kw):
        key = next(k for k, f in tree["phi"].items() if f.shape[:2] == (mdp.n_states, mdp.n_actions))

        def scale(dr):
            f = tree["phi"][key]
            fc = f[..., : dr.phi.shape[-1]]
            if np.all(dr.phi == dr.phi[:, :1]):  # state features psi(s), repeated over actions
                fc = fc[:, :1]
            out = dict(phi=dr.phi * fc, w0=dr.w0 * tree["w0"][key][: dr.w0.size])
            if dr.phi_pi is not None:
                out["phi_pi"] = dr.phi_pi * f[..., : dr.phi_pi.shape[-1]]
            return dataclasses.replace(dr, **out)

        return real_deploy(mdp, weights, draws_map=scale, **kw)

    with monkeypatch_ctx() as m:
        m.setattr(control_experiment._MDPCache, "get", get)
        m.setattr(control_experiment, "deploy", deploy)
        doc = ctl.run_control(cfg)
    verdicts = tuple((e["name"], e["algo"], control_passed(e)) for e in doc["envs"])
    return verdicts, int(not all(v[-1] for v in verdicts))


def _tree(cfg):
    cache = control_experiment._MDPCache(cfg)
    tree = {"mdp": {}, "phi": {}, "w0": {}}
    for env in cfg.envs:
        mdp = cache.get(env, 0)[0]
        if env != envs.HELDOUT_NAME:  # held-out MDPs are drawn per seed; their features are perturbed
            tree["mdp"][env] = {"r": mdp.r, "mu0": mdp.mu0}
        S, A = mdp.n_states, mdp.n_actions
        tree["phi"][env] = np.ones((S, A, S * A))
        tree["w0"][env] = np.ones(S * A)
    return tree


def _assert_robust(cfg):
    tree = _tree(cfg)
    verdict = assert_same_verdicts(
        lambda t: _control_verdicts(cfg, t, pytest.MonkeyPatch.context), tree, np.random.default_rng(18)
    )
    return verdict


def test_perturbed_inputs_give_the_same_verdicts_cliffwalking():
    """CliffWalking, where the teacher's |w| grows and round-off flips argmaxes: the verdicts of 5
    copies perturbed at relative 1e-13 (r, mu0, features, w_0) equal the unperturbed one (pass)."""
    cfg = ctl.ControlConfig(
        envs=("CliffWalking-v1",), actor_critic_envs=(), n_updates=60, n_seeds=2, tabular=False
    )
    verdicts, code = _assert_robust(cfg)
    assert code == 0


@pytest.mark.slow
def test_perturbed_inputs_give_the_same_verdicts_quick():
    verdicts, code = _assert_robust(dataclasses.replace(ctl.ControlConfig.quick(), tabular=False))
    assert code == 0


#: The default configuration (the full ``lsa-theory control``, without the tabular baseline), the
#: input and the 5 perturbed copies of :func:`lsa_theory.roundoff.assert_same_verdicts`.
DEFAULT = dataclasses.replace(ctl.ControlConfig(), tabular=False)
COPIES = 5


@pytest.mark.slow
@pytest.mark.parametrize("copy", range(COPIES + 1), ids=lambda c: "input" if c == 0 else f"copy{c}")
@pytest.mark.parametrize("env", DEFAULT.envs)
def test_perturbed_inputs_give_the_same_verdicts_default(env, copy):
    """The default configuration, one env and one input per test (so that two workers share the
    30 runs): the input (``copy`` 0) and each of its 5 copies perturbed at relative 1e-13 (drawn
    from ``default_rng(18)`` in turn, as :func:`lsa_theory.roundoff.assert_same_verdicts` draws
    them, from the env's own tree) pass every row. Every verdict passing is every verdict equal
    to the input's, which must pass: the assertion of ``assert_same_verdicts`` and ``code == 0``,
    split."""
    ac = tuple(e for e in DEFAULT.actor_critic_envs if e == env)  # its actor-critic units too
    cfg = dataclasses.replace(DEFAULT, envs=(env,), actor_critic_envs=ac)
    base, rng = _tree(cfg), np.random.default_rng(18)
    copies = [perturbed(base, rng) for _ in range(copy)]  # the copy-th draw, as assert_same_verdicts
    verdicts, code = _control_verdicts(cfg, copies[-1] if copies else base, pytest.MonkeyPatch.context)
    assert code == 0 and all(v[-1] for v in verdicts), verdicts


def test_perturbed_copies_really_differ():
    """The perturbation reaches the loop: features and w_0 of a copy differ from the input's."""
    name = envs.HELDOUT_NAME
    tree = _tree(ctl.ControlConfig(envs=(name,), actor_critic_envs=()))
    copy = perturbed(tree, np.random.default_rng(0))
    f = copy["phi"][name]
    assert 0 < np.abs(f - 1).max() <= 1e-13 * (1 + 1e-3)
    assert np.abs(copy["w0"][name] - 1).max() > 0

# ruff: noqa: E501  (the mutations are exact source lines)
"""Mutation check of issue 10 (docs/experiments.md section 5): for each mutation, copy the tree to a
scratch directory, apply one textual change, run the tests that must catch it there and record
whether they failed. ``python examples/mutations_issue10.py [ID ...]`` (IDs like ``M1``; default
all); prints one JSON line per mutation and writes ``mutations_issue10.json`` in the scratch root
(``$TMPDIR``). Several minutes per mutation on a loaded machine (each run imports torch)."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1])
SCRATCH = tempfile.gettempdir()
MUTS = [
    (
        "M1 held-out frames drawn from the training MDPs",
        "experiments/training/data.py",
        "np.random.default_rng([cfg.seed, 1]), cfg.critic)",
        "np.random.default_rng([cfg.seed, 0, 0]), cfg.critic)",
        ["tests/experiments/test_training.py::test_heldout_frames_come_from_mdps_not_in_training"],
    ),
    (
        "M2 deployment features fixed across MDPs (deploy)",
        "experiments/control.py",
        "    phi = lt.random_features(S, A, None, rng)\n",
        "    phi = lt.random_features(S, A, None, np.random.default_rng(0))\n",
        [
            "tests/experiments/test_control.py::test_deploy_scores_the_greedy_policy_of_per_mdp_features",
            "tests/experiments/test_control.py::test_run_control_units_equal_an_independent_teacher_loop",
            "tests/experiments/test_context_length.py::test_closed_loop_cells_read_the_right_update",
        ],
    ),
    (
        "M2b deployment streams fixed across MDPs (run_control cache)",
        "experiments/control.py",
        "return mdp, lt.optimal(mdp), heldout_rng(cfg.seed, i, 1), heldout_rng(cfg.seed, i, 2)",
        "return mdp, lt.optimal(mdp), heldout_rng(cfg.seed, 0, 1), heldout_rng(cfg.seed, i, 2)",
        ["tests/experiments/test_control.py::test_run_control_units_equal_an_independent_teacher_loop"],
    ),
    (
        "M3 reported return of the epsilon-greedy policy (deploy)",
        "experiments/control.py",
        "            Q = phi @ w\n            nr[j] = lt.normalized_return(mdp, lt.greedy(Q), sol)",
        "            Q = phi @ w\n            nr[j] = lt.normalized_return(mdp, lt.epsilon_greedy(Q, epsilon), sol)",
        [
            "tests/experiments/test_control.py::test_deploy_scores_the_greedy_policy_of_per_mdp_features",
            "tests/experiments/test_control.py::test_run_control_units_equal_an_independent_teacher_loop",
        ],
    ),
    (
        "M3b in-context return of the epsilon-greedy policy",
        "experiments/context_length.py",
        "ret[q, j, i] = lt.normalized_return(mdp, lt.greedy(Qw), sol)",
        "ret[q, j, i] = lt.normalized_return(mdp, lt.epsilon_greedy(Qw, 0.1), sol)",
        [
            "tests/experiments/test_context_length.py::test_in_context_cells_equal_an_independent_recomputation"
        ],
    ),
    (
        "M4 cos_full computed over the (L2) blocks only",
        "experiments/training/model.py",
        '"cos_full": _cos(theta, star),',
        '"cos_full": _cos(rd, rds),',
        ["tests/experiments/test_training.py::test_structure_metrics_over_all_blocks"],
    ),
    (
        "M5 invariant init leaves Vbar22 random",
        "experiments/training/model.py",
        'draw["V"][m + 1 :, m:] = 0.0',
        "pass",
        ["tests/experiments/test_training.py::test_invariant_initialisation_stays_on_the_invariant_set"],
    ),
    (
        "M6 critic='state' ignored (action features)",
        "experiments/training/data.py",
        '    if critic == "action":\n        return dy.teacher_dataset(spec, rng)',
        '    if critic in ("action", "state"):\n        return dy.teacher_dataset(spec, rng)',
        ["tests/experiments/test_training.py::test_state_critic_data_has_action_constant_critic_features"],
    ),
    (
        "M7 in-context value error against Q* instead of Q^pi",
        "experiments/context_length.py",
        "Q, Vpi, sol = lt.q_pi(mdp, pi), lt.v_pi(mdp, pi), lt.optimal(mdp)",
        "sol = lt.optimal(mdp); Q, Vpi = sol.Q, lt.v_pi(mdp, pi)",
        [
            "tests/experiments/test_context_length.py::test_in_context_cells_equal_an_independent_recomputation"
        ],
    ),
    (
        "M8 in-context contexts not prefixes of one trajectory (fresh rollout per n)",
        "experiments/context_length.py",
        "            ws = stack_values(lt.sufficient_statistics(X[:, :n]), n, cfg.alpha, cfg.Ls)",
        "            X = lt.sarsa_columns(lt.rollout(mdp, pi, max(cfg.ns), rng), phi, mdp.gamma)\n            ws = stack_values(lt.sufficient_statistics(X[:, :n]), n, cfg.alpha, cfg.Ls)",
        [
            "tests/experiments/test_context_length.py::test_in_context_cells_equal_an_independent_recomputation"
        ],
    ),
    (
        "M9 deep stack one layer short",
        "experiments/context_length.py",
        "for layer in range(1, max(Ls) + 1):",
        "for layer in range(2, max(Ls) + 2):",
        [
            "tests/experiments/test_context_length.py::test_stack_from_statistics_equals_stacked_blocks_on_raw_prompt"
        ],
    ),
    (
        "M10 TD stack sign of the Bellman matrix flipped",
        "experiments/context_length.py",
        "M = Sigma[:d, d : 2 * d] - Sigma[:d, :d]",
        "M = Sigma[:d, :d] - Sigma[:d, d : 2 * d]",
        ["tests/experiments/test_context_length.py::test_td_stack_from_statistics_equals_masked_blocks"],
    ),
    (
        "M11 fixed environment steps read after point / 2 updates instead of point / n",
        "experiments/context_length.py",
        '            t = p if budget == "updates" else p // n\n            finals',
        '            t = p if budget == "updates" else p // 2\n            finals',
        ["tests/experiments/test_context_length.py::test_closed_loop_cells_read_the_right_update"],
    ),
    (
        "M12 confidence interval with the normal quantile",
        "experiments/stats.py",
        "scipy.stats.t.ppf(0.5 + level / 2, diff.size - 1)",
        "scipy.stats.norm.ppf(0.5 + level / 2)",
        ["tests/experiments/test_context_length.py::test_paired_difference_matches_scipy"],
    ),
    (
        "M13 returns-by-k drops diverged loops",
        "experiments/training/sweeps.py",
        "v = np.array([np.nan if x.diverged_at is not None else x.normalized_return[-1] for x in res])",
        "v = np.array([x.normalized_return[-1] for x in res if x.diverged_at is None])",
        ["tests/experiments/test_training.py::test_returns_by_k_lists_every_run_with_divergences"],
    ),
    (
        "M14 train_seeds ignores the seed",
        "experiments/training/sweeps.py",
        "        cfg = base.replace(seed=s)\n",
        "        cfg = base\n",
        ["tests/experiments/test_training.py::test_train_seeds_reports_every_seed"],
    ),
    (
        "M15 reproduce trains one seed",
        "experiments/reproduce.py",
        "TRAIN_SEEDS = (0, 1, 2)",
        "TRAIN_SEEDS = (0,)",
        ["tests/experiments/test_training.py::test_reproduce_trains_every_group_with_at_least_three_seeds"],
    ),
]
only = sys.argv[1:]
results = []
for name, path, old, new, tests in MUTS:
    if only and name.split()[0] not in only:
        continue
    dst = os.path.join(SCRATCH, f"mut-issue10-{name.split()[0]}")
    if os.path.exists(dst):
        shutil.rmtree(dst)
    shutil.copytree(SRC, dst, ignore=shutil.ignore_patterns(".git", "__pycache__", "*.png"))
    f = os.path.join(dst, path)
    s = open(f).read()
    assert s.count(old) == 1, (name, s.count(old))
    open(f, "w").write(s.replace(old, new))
    t = time.time()
    env = dict(os.environ, PYTHONPATH=dst, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    p = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
        cwd=dst,
        env=env,
        capture_output=True,
        text=True,
    )
    failed = [l for l in p.stdout.splitlines() if l.startswith("FAILED")]
    results.append(
        {
            "mutation": name,
            "tests": tests,
            "caught": p.returncode != 0,
            "failed": failed,
            "seconds": time.time() - t,
        }
    )
    print(json.dumps(results[-1]), flush=True)
    shutil.rmtree(dst)
with open(os.path.join(SCRATCH, "mutations_issue10.json"), "w") as fh:
    json.dump(results, fh, indent=1)

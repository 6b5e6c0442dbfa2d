# ruff: noqa: E501  (the mutations are literal source lines)
"""Mutation runs for the (M4)-(M7) checks (issue 10; docs/dynamics.md): each mutation is applied to a
scratch copy of the tree and the named tests are run there; a mutation is caught when one fails.

    python benchmarks/mutations_dynamics.py [INDEX ...] > mutations.jsonl
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1]

MUTS = [
    (
        "rhs x 1.05 (flow time scaled)",
        "dynamics/flow.py",
        "return -loss_and_grad(dataset, th)[1]",
        "return -1.05 * loss_and_grad(dataset, th)[1]",
        "tests/dynamics/test_rate_checks.py::test_the_true_flow_passes tests/dynamics/test_dynamics.py::test_local_exponential_convergence",
    ),
    (
        "rhs x 0.95",
        "dynamics/flow.py",
        "return -loss_and_grad(dataset, th)[1]",
        "return -0.95 * loss_and_grad(dataset, th)[1]",
        "tests/dynamics/test_rate_checks.py::test_the_true_flow_passes tests/dynamics/test_dynamics.py::test_local_exponential_convergence",
    ),
    (
        "rhs x 1.02",
        "dynamics/flow.py",
        "return -loss_and_grad(dataset, th)[1]",
        "return -1.02 * loss_and_grad(dataset, th)[1]",
        "tests/dynamics/test_rate_checks.py::test_the_true_flow_passes",
    ),
    (
        "rhs x 0.98",
        "dynamics/flow.py",
        "return -loss_and_grad(dataset, th)[1]",
        "return -0.98 * loss_and_grad(dataset, th)[1]",
        "tests/dynamics/test_dynamics.py::test_local_exponential_convergence tests/cli/test_cli_dynamics.py::test_converge_quick_passes_for_both_algorithms",
    ),
    (
        "rhs x 1.02 (both algorithms, converge --quick)",
        "dynamics/flow.py",
        "return -loss_and_grad(dataset, th)[1]",
        "return -1.02 * loss_and_grad(dataset, th)[1]",
        "tests/dynamics/test_dynamics.py::test_local_exponential_convergence tests/cli/test_cli_dynamics.py::test_converge_quick_passes_for_both_algorithms",
    ),
    (
        "rhs x 0.97",
        "dynamics/flow.py",
        "return -loss_and_grad(dataset, th)[1]",
        "return -0.97 * loss_and_grad(dataset, th)[1]",
        "tests/cli/test_cli_dynamics.py::test_converge_quick_passes_for_both_algorithms",
    ),
    (
        "(M6) escape restored: the single window passes a run",
        "experiments/criteria.py",
        '    ro = run.get("rate_roundoff")\n',
        '    ro = run.get("rate_roundoff")\n    if abs(run.get("rate_ratio_single", 9) - 1) < 0.01:\n        return True\n',
        "tests/dynamics/test_rate_checks.py::test_rate_check_has_no_escape_and_counts_the_roundoff",
    ),
    (
        "(M6) round-off bound not added to the distance",
        "experiments/criteria.py",
        "    r = 0.0 if roundoff is None else roundoff\n",
        "    r = 0.0\n",
        "tests/dynamics/test_rate_checks.py::test_rate_check_has_no_escape_and_counts_the_roundoff",
    ),
    (
        "loss bound without the residual term 2 |e| de",
        "dynamics/objective.py",
        "np.sum(de * (2 * ae + de), axis=1)",
        "np.sum(de * de, axis=1)",
        "tests/dynamics/test_flow_roundoff.py::test_loss_error_bound_holds_and_is_informative",
    ),
    (
        "rate fits on every point (loss bounds ignored)",
        "dynamics/rate_fit.py",
        "        ok &= loss_err <= rtol * loss",
        "        ok &= loss_err <= np.inf",
        "tests/dynamics/test_rate_checks.py::test_fit_modes_selects_the_modes_the_data_resolve",
    ),
    (
        "fit_modes keeps three modes whatever their round-off bound",
        "dynamics/rate_fit.py",
        "        if dy is None or roundoff_max is None or fit.roundoff <= roundoff_max:",
        "        if True:",
        "tests/dynamics/test_rate_checks.py::test_fit_modes_selects_the_modes_the_data_resolve tests/dynamics/test_flow_roundoff.py::test_rate_verdicts_survive_rounding_of_the_recorded_losses",
    ),
    (
        "recorded loss doubled at the 6th step (not monotone)",
        "dynamics/flow.py",
        "        L.append(l)",
        "        L.append(l * (1.0 + (len(L) == 5)))",
        "tests/dynamics/test_stiff.py::test_structured_flow_reaches_the_dense_limit",
    ),
    (
        "old criteria restored (rate within 10 % of the end point, no a priori or PL criterion)",
        "experiments/criteria.py",
        '        and rate_passed(run)\n        and run["pl_min_ratio"] * (1.0 - run.get("pl_roundoff", 0.0)) >= CRITERIA["pl_min_ratio"]\n',
        '        and abs(run["rate_ratio"] - 1.0) < 0.10\n',
        "tests/dynamics/test_rate_checks.py::test_a_flow_with_mis_scaled_time_fails",
    ),
    (
        "loss without its 1/2 (gradient unchanged)",
        "dynamics/objective.py",
        "    return 0.5 * float(np.mean(np.sum(e * e, axis=1))), pack(gA, gB)",
        "    return 1.0 * float(np.mean(np.sum(e * e, axis=1))), pack(gA, gB)",
        "tests/dynamics/test_rate_checks.py::test_the_true_flow_passes",
    ),
    (
        "a priori rate taken at theta0 instead of theta*(c_pred)",
        "experiments/converge/experiment.py",
        "    spec = dy.hessian_spectrum(ds, dy.construction(ds, c_pred))",
        "    spec = dy.hessian_spectrum(ds, theta0)",
        "tests/dynamics/test_rate_checks.py::test_the_true_flow_passes",
    ),
    (
        "a priori rate: second-smallest non-zero eigenvalue",
        "experiments/converge/experiment.py",
        "    return c_pred, spec.lambda_min_plus, float(nonzero[1])",
        "    return c_pred, float(nonzero[1]), float(nonzero[1])",
        "tests/dynamics/test_rate_checks.py::test_the_true_flow_passes",
    ),
    (
        "PL ratio computed with a rate 5 % above the fitted one",
        "experiments/converge/experiment.py",
        "    pl = pl_ratios(flow, rate_prior)",
        "    pl = pl_ratios(flow, mu * 1.05)",
        "tests/dynamics/test_rate_checks.py::test_the_true_flow_passes",
    ),
    (
        "unrealisable run with zero noise",
        "experiments/converge/experiment.py",
        "    y = ds.y + noise * np.sqrt",
        "    y = ds.y + 0 * noise * np.sqrt",
        "tests/dynamics/test_rate_checks.py::test_unrealisable_targets_are_measured_apart",
    ),
    (
        "tangent without the parameter-column family",
        "dynamics/manifold.py",
        "    for v in W.T:\n        for j in range(sh.m):",
        "    for v in W.T[:0]:\n        for j in range(sh.m):",
        "tests/dynamics/test_certify.py::test_third_tangent_family_is_flat tests/dynamics/test_certify.py::test_rank_bound_row_is_certified_above_the_tangent",
    ),
    (
        "certificate: one exact invisible direction dropped",
        "dynamics/certify.py",
        "    U = exact_null_space(X.transpose(0, 2, 1).reshape(-1, sh.m))",
        "    U = exact_null_space(X.transpose(0, 2, 1).reshape(-1, sh.m))[1:]",
        "tests/dynamics/test_certify.py::test_certified_kernel_equals_the_tangent",
    ),
    (
        "certificate: blind-spot family dropped from the exact tangent",
        "dynamics/certify.py",
        "    for v in (_frac_mod(v, p) for v in W):",
        "    for v in (_frac_mod(v, p) for v in W[:0]):",
        "tests/dynamics/test_certify.py::test_rank_bound_row_is_certified_above_the_tangent",
    ),
    (
        "certificate: rank bound ignored (lower = 0)",
        "dynamics/certify.py",
        "    lower = max(0, size - rows)",
        "    lower = 0",
        "tests/dynamics/test_certify.py::test_rank_bound_row_is_certified_above_the_tangent",
    ),
    (
        "rank mod p: no reduction after elimination (int64 overflow)",
        "dynamics/certify.py",
        "            M[act, col:] = (M[act, col:] - M[act, col : col + 1] * M[r, col:]) % p",
        "            M[act, col:] = M[act, col:] - M[act, col : col + 1] * M[r, col:]",
        "tests/dynamics/test_certify.py::test_rank_mod_p_matches_the_rank_of_low_rank_integer_matrices tests/dynamics/test_certify.py::test_certified_kernel_equals_the_tangent",
    ),
    (
        "float residue rounded to 2^-30 (inexact rationals)",
        "dynamics/certify.py",
        "    M = np.ldexp(mant, 53).astype(np.int64)",
        "    M = np.ldexp(np.round(np.ldexp(mant, 30)), 23).astype(np.int64)",
        "tests/dynamics/test_certify.py::test_float_residue_is_exact tests/dynamics/test_certify.py::test_certified_kernel_equals_the_tangent",
    ),
    (
        "kernel dimension by the 1e-13 threshold instead of the certificate",
        "dynamics/certify.py",
        "    K = lower if certified else None",
        "    K = int((rel <= KERNEL_RTOL).sum())",
        "tests/dynamics/test_certify.py::test_certified_kernel_at_s3_where_the_threshold_is_wrong",
    ),
    (
        "diversity without the d < S A rows",
        "experiments/diversity/experiment.py",
        "    d_sweep: tuple[int, ...] = (2, 3)",
        "    d_sweep: tuple[int, ...] = ()",
        "tests/cli/test_cli_dynamics.py::test_diversity_json_contract",
    ),
]
only = sys.argv[1:]
res = []
for i, (name, path, old, new, tests) in enumerate(MUTS):
    if only and str(i) not in only:
        continue
    d = tempfile.mkdtemp(prefix=f"mut{i}-")
    shutil.rmtree(d)
    shutil.copytree(SRC, d, ignore=shutil.ignore_patterns(".git", "__pycache__", "*.png", "results"))
    src = open(f"{d}/{path}").read()
    assert src.count(old) == 1, (name, src.count(old))
    open(f"{d}/{path}", "w").write(src.replace(old, new))
    env = dict(os.environ, PYTHONPATH=d, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    t = time.time()
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-x",
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
            *tests.split(),
        ],
        cwd=d,
        env=env,
        capture_output=True,
        text=True,
    )
    caught = p.returncode != 0
    last = [l for l in p.stdout.splitlines() if l.strip()][-1] if p.stdout.strip() else p.stderr[-200:]
    res.append(
        {
            "i": i,
            "mutation": name,
            "tests": tests,
            "caught": caught,
            "summary": last,
            "s": round(time.time() - t),
        }
    )
    print(json.dumps(res[-1]), flush=True)
    shutil.rmtree(d, ignore_errors=True)

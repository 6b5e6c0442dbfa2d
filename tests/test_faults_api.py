"""Issue 24, library and API level (items 6, 7, 8, 9, 23): divergence and solver failures are
results with a flag and a message, never a crash or a silent pass; bad inputs are refused with a
ValueError naming the argument. Each test failed before the change it guards (docs/inputs.md)."""

from __future__ import annotations

import numpy as np
import pytest

import dynamics as dy
from dynamics.data import TeacherSpec, teacher_dataset
from dynamics.flow_common import shapes

# --------------------------------------------------------------------------------------------------
# item 7: gradient_flow's solver failures and budget
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def alpha50():
    """Teacher data with alpha = 50 (S = A = 2, k = 20 MDPs x 10 frames): targets of order 1e6, the
    flow from a small start is too stiff for every integrator."""
    return teacher_dataset(TeacherSpec(alpha=50.0), np.random.default_rng(0))


@pytest.mark.parametrize(
    "method, scale, cause",
    [
        ("structured", 0.1, "step size"),
        ("structured", 1e8, "non-finite"),
        pytest.param("BDF", 1e8, "step size", marks=pytest.mark.slow),  # 7 s
    ],
)
def test_gradient_flow_solver_failure_is_a_result(alpha50, method, scale, cause):
    """Was ``AttributeError: 'StructuredBDF' object has no attribute 'message'`` (and, from a start of
    scale 1e8, ``ValueError: theta: contains NaN or inf``, which blamed the caller). The start is the
    second draw of ``default_rng(1)`` (the first, at scale 1e8, takes 15000 steps to fail: 40 s)."""
    rng = np.random.default_rng(1)
    rng.standard_normal(shapes(alpha50).size)
    theta0 = scale * rng.standard_normal(shapes(alpha50).size)
    with np.errstate(all="ignore"):
        flow = dy.gradient_flow(alpha50, theta0, 1e6, method=method, max_steps=20_000)
    assert flow.failed and flow.status == -1 and not flow.converged
    assert flow.message.startswith(f"solver {method} failed after t = ")
    assert cause in flow.message, flow.message
    assert np.isfinite(flow.theta_final).all() and np.isfinite(flow.loss).all()


def test_gradient_flow_has_a_step_budget(alpha50):
    """Was no budget: LSODA on this problem had not returned after 9 minutes."""
    theta0 = 0.1 * np.random.default_rng(1).standard_normal(shapes(alpha50).size)
    flow = dy.gradient_flow(alpha50, theta0, 1e6, method="LSODA", max_steps=300)
    assert flow.status == -4 and not flow.failed and not flow.converged
    assert flow.stats["steps"] == 300 and flow.stats["max_steps"] == 300
    assert "max_steps = 300 reached" in flow.message
    with pytest.raises(ValueError, match="max_steps"):
        dy.gradient_flow(alpha50, theta0, 1.0, max_steps=0)

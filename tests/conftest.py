"""Shared test set-up: hypothesis profiles and small seeded fixtures.

Profiles: ``dev`` (default, 50 examples) and ``ci`` (derandomized, loaded when ``CI`` is set);
``HYPOTHESIS_PROFILE`` overrides. Numerical tests use ``deadline=None`` in their settings.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "ci",
    max_examples=50,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh seeded generator per test."""
    return np.random.default_rng(20260522)

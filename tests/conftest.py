import os

import pytest
from hypothesis import HealthCheck, settings

import minigan

# CI gets a fixed, derandomised set of examples and no deadline (shared 2-core runners are noisy);
# locally the "dev" profile explores fresh random examples on every run.
settings.register_profile(
    "ci", max_examples=20, derandomize=True, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev", max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))


@pytest.fixture
def float64():
    """Make float64 the default dtype for one test (finite differences need it)."""
    previous = minigan.get_default_dtype()
    minigan.set_default_dtype("float64")
    yield
    minigan.set_default_dtype(previous)

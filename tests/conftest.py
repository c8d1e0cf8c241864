import os

import pytest
from hypothesis import HealthCheck, settings

import minigan

# The README's test command is deterministic: the default profile draws a fixed, derandomised
# set of examples and keeps no example database, so a run on a fresh clone, a developer's
# machine and CI all test the same cases. The "explore" profile is the broad search, run on
# demand (docs/index.md): many more examples, fresh random seeds each run.
_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile(
    "ci", max_examples=20, derandomize=True, database=None, deadline=None,
    suppress_health_check=_QUIET,
)
settings.register_profile(
    "explore", max_examples=int(os.environ.get("MINIGAN_EXAMPLES", "500")), derandomize=False,
    database=None, deadline=None, suppress_health_check=_QUIET,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or "ci")


@pytest.fixture
def float64():
    """Make float64 the default dtype for one test (finite differences need it)."""
    previous = minigan.get_default_dtype()
    minigan.set_default_dtype("float64")
    yield
    minigan.set_default_dtype(previous)

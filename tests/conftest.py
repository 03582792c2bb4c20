"""Suite-wide settings: a derandomized Hypothesis profile so CI runs are repeatable."""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "pxed",
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "pxed"))

pytest_plugins = ["lab.netns", "tests.support.postgres"]

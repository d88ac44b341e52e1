"""Hypothesis profiles: `ci` (default: a few dozen cases per parser, reproducible, seconds in all) and
`deep` (HYPOTHESIS_PROFILE=deep: thousands, random). bench/fuzz.py runs the 100,000-case campaign."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = {"deadline": None, "database": None, "suppress_health_check": [HealthCheck.too_slow,
                                                                          HealthCheck.data_too_large]}
settings.register_profile("ci", max_examples=40, derandomize=True, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("deep", max_examples=3000, **_COMMON)  # type: ignore[arg-type]
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

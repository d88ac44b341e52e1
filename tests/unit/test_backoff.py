"""The one backoff schedule: exponential, capped, jittered within its share, deterministic with a given rng."""

from __future__ import annotations

import math
import random

import pytest

from ivr.backoff import Backoff
from ivr.queueing.dialer import RetryPolicy


def test_exact_schedule_doubles_up_to_the_cap() -> None:
    b = Backoff(1.0, cap=30.0)
    assert [b.delay(n) for n in range(7)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert b.delay(-3) == 1.0  # before any retry counts as the first


def test_factor_and_cap_as_the_dialer_uses_them() -> None:
    policy = RetryPolicy(4, base=60, factor=3, cap=300)
    assert [policy.delay(done) for done in (0, 1, 2, 3, 4)] == [60.0, 60.0, 180.0, 300.0, 300.0]


@pytest.mark.parametrize(("jitter", "low"), [(1.0, 0.0), (0.2, 0.8), (0.5, 0.5)])
def test_jitter_takes_off_at_most_its_share(jitter: float, low: float) -> None:
    b = Backoff(10.0, cap=25.0, jitter=jitter)
    assert b.delay(0, rng=lambda: 0.0) == pytest.approx(10.0 * low)
    assert b.delay(0, rng=lambda: 1.0) == pytest.approx(10.0)
    assert b.delay(5, rng=lambda: 0.0) == pytest.approx(25.0 * low)  # capped before the jitter
    rng = random.Random(7)
    for n in range(6):
        assert b.ceiling(n) * low <= b.delay(n, rng=rng.random) <= b.ceiling(n)


def test_the_same_rng_gives_the_same_delays() -> None:
    b = Backoff(0.05, jitter=1.0)
    first, second = random.Random(42), random.Random(42)
    assert [b.delay(n, first.random) for n in range(5)] == [b.delay(n, second.random) for n in range(5)]


def test_a_retry_loop_that_never_gives_up_stays_at_the_cap() -> None:
    assert Backoff(2.0, cap=3600.0).delay(5000) == 3600.0
    assert Backoff(2.0).delay(5000) == math.inf


@pytest.mark.parametrize("bad", [dict(base=-1.0), dict(base=1.0, factor=0.0), dict(base=1.0, cap=-1.0),
                                 dict(base=1.0, jitter=1.5)])
def test_impossible_schedules_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="backoff needs"):
        Backoff(**bad)

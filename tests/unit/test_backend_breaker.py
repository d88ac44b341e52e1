"""The circuit breaker's states on a fake clock: closed, open (fail fast), half-open (one trial)."""

from __future__ import annotations

import pytest

from ivr.backends.breaker import CircuitBreaker
from ivr.errors import BackendUnavailable


def _state(breaker: CircuitBreaker) -> str:
    return breaker.state  # (read through a function: mypy would narrow the property between calls)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_threshold_consecutive_failures() -> None:
    clock = Clock()
    b = CircuitBreaker("x", failure_threshold=3, reset_timeout=10, clock=clock)
    for _ in range(2):
        assert b.before() is False
        b.failure()
    assert _state(b) == "closed"
    b.success()  # a success in between resets the streak
    for _ in range(3):
        b.before()
        b.failure()
    assert _state(b) == "open"
    with pytest.raises(BackendUnavailable, match="circuit open"):
        b.before()


def test_half_open_allows_one_trial_and_closes_on_success() -> None:
    clock = Clock()
    b = CircuitBreaker("x", failure_threshold=1, reset_timeout=10, clock=clock)
    b.before()
    b.failure()
    clock.now += 9.9
    with pytest.raises(BackendUnavailable):
        b.before()
    clock.now += 0.2
    assert _state(b) == "half-open"
    assert b.before() is True  # the trial
    with pytest.raises(BackendUnavailable):
        b.before()  # only one trial at a time
    b.success()
    assert _state(b) == "closed"
    assert b.before() is False


def test_failed_trial_reopens_for_a_full_cool_down() -> None:
    clock = Clock()
    b = CircuitBreaker("x", failure_threshold=2, reset_timeout=5, clock=clock)
    for _ in range(2):
        b.before()
        b.failure()
    clock.now += 5
    assert b.before() is True
    b.failure()
    assert _state(b) == "open"
    clock.now += 4.9
    assert _state(b) == "open"
    clock.now += 0.1
    assert _state(b) == "half-open"


def test_abandoned_trial_frees_the_slot() -> None:
    clock = Clock()
    b = CircuitBreaker("x", failure_threshold=1, reset_timeout=1, clock=clock)
    b.before()
    b.failure()
    clock.now += 1
    trial = b.before()
    b.abandon(trial)
    assert b.before() is True


def test_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker("x", failure_threshold=0)
    with pytest.raises(ValueError):
        CircuitBreaker("x", reset_timeout=0)

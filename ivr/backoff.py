"""Exponential backoff with a cap and jitter: the one retry schedule of backends, webhooks, the dialer and AMI.

`Backoff(base, factor, cap, jitter).delay(n)` is the pause before retry `n` (0 = the first retry):
`min(cap, base * factor**n)`, of which a random share up to `jitter` is taken off. Who uses which shape:

    backend requests     Backoff(backoff, jitter=1.0)            full jitter: 0 .. backoff * 2**n
    voicemail webhook    Backoff(backoff, cap=max, jitter=0.2)   80-100 % of the capped delay
    callback dialer      Backoff(base, factor, cap)              exact (RetryPolicy, in Redis)
    AMI reconnect        Backoff(1.0, cap=30.0)                  1 s doubling to 30 s

Pass `rng` (a function returning a float in [0, 1)) to make the jitter deterministic in tests.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """A retry schedule; immutable, so one instance serves every caller."""

    base: float  # s before the first retry (before jitter)
    factor: float = 2.0
    cap: float = math.inf  # no delay is longer than this (before jitter)
    jitter: float = 0.0  # 0: exact; 0.2: 80-100 % of the delay; 1: anywhere from 0 to the delay

    def __post_init__(self) -> None:
        if self.base < 0 or self.factor <= 0 or self.cap < 0 or not 0 <= self.jitter <= 1:
            raise ValueError(f"backoff needs base >= 0, factor > 0, cap >= 0 and 0 <= jitter <= 1: {self!r}")

    def ceiling(self, retry: int) -> float:
        """The delay before retry `retry` without jitter (a negative `retry` counts as 0)."""
        try:
            grown = self.base * self.factor ** max(0, retry)
        except OverflowError:  # a retry loop that never gives up reaches this after ~1000 tries
            return float(self.cap)
        return float(min(self.cap, grown))

    def delay(self, retry: int, rng: Callable[[], float] = random.random) -> float:
        """The pause before retry `retry` (0 = the first), jittered."""
        top = self.ceiling(retry)
        if not self.jitter:
            return top
        return top * ((1.0 - self.jitter) + self.jitter * rng())

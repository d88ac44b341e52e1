"""A circuit breaker: after N failures in a row a backend is skipped at once until a cool-down passes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Literal

from ivr.errors import BackendUnavailable

log = logging.getLogger("ivr.backends")

State = Literal["closed", "open", "half-open"]


class CircuitBreaker:
    """closed → (failure_threshold failures in a row) → open → (reset_timeout) → half-open.

    Half-open lets exactly one trial request through: its success closes the circuit, its failure
    opens it for another `reset_timeout`. While open (or while the trial runs) `before()` raises
    `BackendUnavailable` without touching the network.
    """

    def __init__(
        self, name: str, *, failure_threshold: int = 5, reset_timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or reset_timeout <= 0:
            raise ValueError("failure_threshold must be >= 1 and reset_timeout > 0")
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial = False

    @property
    def state(self) -> State:
        if self._opened_at is None:
            return "closed"
        if self._trial or self._clock() - self._opened_at >= self.reset_timeout:
            return "half-open"
        return "open"

    def before(self) -> bool:
        """Call before a request: raises when open; True when this request is the half-open trial."""
        state = self.state
        if state == "closed":
            return False
        if state == "half-open" and not self._trial:
            self._trial = True
            log.info("backend %s: circuit half-open, sending one trial request", self.name)
            return True
        raise BackendUnavailable(f"{self.name}: circuit open")

    def success(self) -> None:
        if self._opened_at is not None:
            log.info("backend %s: circuit closed again", self.name)
        self._failures = 0
        self._opened_at = None
        self._trial = False

    def failure(self) -> None:
        self._failures += 1
        if self._trial or (self._opened_at is None and self._failures >= self.failure_threshold):
            log.warning("backend %s: circuit open for %.1f s after %d failure(s)",
                        self.name, self.reset_timeout, self._failures)
            self._opened_at = self._clock()
        self._trial = False

    def abandon(self, trial: bool) -> None:
        """A request ended without a verdict (cancelled): if it was the trial, free the trial slot."""
        if trial:
            self._trial = False

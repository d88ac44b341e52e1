"""The callback dialer: claims due callbacks under a Redis lease, originates them, records outcome and retries.

Safe with several `ivr` processes: a callback is placed only by the holder of its lease (SET NX PX + token),
renewed every lease/3 while the call is being placed. A process that dies (kill -9) leaves its lease to
expire; another dialer then claims the callback for the *same* attempt (`callback.resumed` is true) and
uses the same ActionID/ChannelId, so the Originator can check whether that attempt already reached
Asterisk (e.g. a channel with that uniqueid exists, or a re-sent Originate is refused) before dialing.

Nothing read back from Redis is trusted: right before each attempt the stored number is checked again
with today's callback policy (a record tampered with, or a policy changed since, is refused: outcome
`invalid_number`, failed, never retried, logged without the number).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ivr.backoff import Backoff
from ivr.config import Settings
from ivr.errors import StoreUnavailable
from ivr.identity.sms import mask_phone
from ivr.queueing.callbacks import Callback, CallbackStore, keep_place_due
from ivr.queueing.phone import CallbackPolicy, callback_policy, check_callback_number

log = logging.getLogger("ivr.dialer")


@dataclass(frozen=True)
class OriginateResult:
    ok: bool  # the customer accepted (or the call connected): the callback is done
    outcome: str  # accepted, no_answer, busy, declined, congestion, failed, duplicate ...
    retry: bool = True  # False: never try this callback again (e.g. number refused by the network)
    detail: str = ""


class Originator(Protocol):
    """Places one attempt; the implementation (AMI Originate) belongs to the call-flow layer."""

    async def originate(self, callback: Callback, action_id: str) -> OriginateResult: ...


def action_id(cb_id: str, attempt: int) -> str:
    """Stable per attempt: a re-sent or resumed Originate carries the same id (also the ChannelId)."""
    return f"cb-{cb_id}-{attempt}"


def channel_ids(cb_id: str, attempt: int) -> tuple[str, str]:
    """(ChannelId, OtherChannelId) for Originate: Asterisk refuses a uniqueid that is already in use."""
    base = action_id(cb_id, attempt)
    return base, f"{base}-2"


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    base: float = 120.0  # s between the first and the second attempt
    factor: float = 2.0
    cap: float = 1800.0

    def delay(self, attempts_done: int) -> float:
        """Seconds from an attempt to the next (no jitter: the due time is stored in Redis)."""
        return Backoff(self.base, self.factor, self.cap).delay(attempts_done - 1)


def after_attempt(cb: Callback, result: OriginateResult, now: float,
                  policy: RetryPolicy) -> tuple[dict[str, str], float | None]:
    """(hash fields, next due or None when finished) after one attempt: done, retry later, or failed."""
    attempts = cb.attempts + 1
    fields = {"attempts": str(attempts), "outcome": result.outcome, "detail": result.detail[:200],
              "resumed": "0", "updated_at": repr(now)}
    if result.ok:
        return {**fields, "state": "done"}, None
    nxt = now + policy.delay(attempts)
    over = cb.window_end is not None and nxt >= cb.window_end
    if not result.retry or attempts >= cb.max_attempts or over:
        why = "no retry" if not result.retry else "max attempts" if attempts >= cb.max_attempts else "window over"
        return {**fields, "state": "failed", "detail": f"{why}: {result.detail}"[:200]}, None
    return {**fields, "state": "pending", "due_at": repr(nxt)}, nxt


class Dialer:
    """One per process; `start()`/`stop()`. Several processes may run one each on the same Redis."""

    def __init__(self, callbacks: CallbackStore, originator: Originator, *, policy: RetryPolicy = RetryPolicy(),
                 lease: float = 30.0, poll: float = 1.0, concurrency: int = 4,
                 clock: Callable[[], float] = time.time,
                 ewt_at: Callable[[str, int], float | None] | None = None, reevaluate_every: float = 10.0,
                 name: str | None = None, number_policy: CallbackPolicy | None = None,
                 ready: Callable[[], bool] | None = None) -> None:
        self.callbacks, self.originator, self.policy = callbacks, originator, policy
        self.ready = ready  # e.g. "AMI is logged in": until then nothing is claimed (no attempt wasted)
        self.number_policy = number_policy  # None: numbers are not checked again (tests of the mechanics)
        self.lease, self.poll, self.concurrency, self.clock = lease, poll, concurrency, clock
        self.ewt_at, self.reevaluate_every = ewt_at, reevaluate_every
        self.name = name or f"{os.uname().nodename}:{os.getpid()}"
        self._inflight: set[asyncio.Task[None]] = set()
        self._loop: asyncio.Task[None] | None = None
        self._next_reevaluation = 0.0
        self._down = False
        self._stopping = False

    @classmethod
    def from_settings(cls, settings: Settings, callbacks: CallbackStore, originator: Originator, *,
                      ewt_at: Callable[[str, int], float | None] | None = None,
                      ready: Callable[[], bool] | None = None) -> Dialer:
        """The service's dialer: lease, poll, concurrency and retry backoff from the `callbacks_*` settings."""
        policy = RetryPolicy(base=settings.callbacks_retry_base, factor=settings.callbacks_retry_factor,
                             cap=settings.callbacks_retry_cap)
        return cls(callbacks, originator, policy=policy, lease=settings.callbacks_lease, poll=settings.callbacks_poll,
                   concurrency=settings.callbacks_concurrency, ewt_at=ewt_at,
                   number_policy=callback_policy(settings), ready=ready)

    @property
    def placing(self) -> int:
        """Attempts in progress in this process."""
        return len(self._inflight)

    async def start(self) -> None:
        if self._loop is None:
            self._stopping = False
            self._loop = asyncio.create_task(self._run(), name=f"dialer-{self.name}")

    async def stop(self, grace: float = 10.0) -> None:
        """Stop claiming; give calls being placed `grace` s, then cancel them (their leases just expire)."""
        self._stopping = True
        if self._loop is not None:
            await cancel_and_wait({self._loop})
            self._loop = None
        inflight = set(self._inflight)
        if inflight and grace > 0:
            _, inflight = await asyncio.wait(inflight, timeout=grace)
        await cancel_and_wait(inflight)

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self.run_once()
                if self.ewt_at is not None and time.monotonic() >= self._next_reevaluation:
                    self._next_reevaluation = time.monotonic() + self.reevaluate_every
                    await self.reevaluate()
                if self._down:
                    self._down = False
                    log.info("dialer %s: Redis reachable again", self.name)
            except StoreUnavailable as exc:
                if not self._down:
                    self._down = True
                    log.warning("dialer %s: Redis unavailable, callbacks wait: %s", self.name, exc)
            await asyncio.sleep(self.poll)

    async def run_once(self) -> int:
        """Claim what is due (up to the free concurrency) and start placing it; returns how many."""
        free = self.concurrency - len(self._inflight)
        if free <= 0 or (self.ready is not None and not self.ready()):
            return 0
        now, started = self.clock(), 0
        for cb_id in await self.callbacks.due(now, limit=free * 4):
            token = f"{self.name}:{uuid.uuid4().hex}"
            cb = await self.callbacks.claim(cb_id, token, self.lease, now)
            if cb is None:
                continue
            task = asyncio.create_task(self._place(cb, token), name=f"callback-{cb.id}")
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
            started += 1
            if started >= free:
                break
        return started

    async def reevaluate(self) -> int:
        """Move pending keep-place callbacks to the due time today's queue speed gives; returns how many."""
        moved = 0
        for cb in await self.callbacks.live() if self.ewt_at is not None else []:
            if cb.kind != "keep_place" or cb.state != "pending" or self.ewt_at is None:
                continue
            due = keep_place_due(cb, self.ewt_at)
            if due is not None and abs(due - cb.due_at) >= max(5.0, 0.1 * cb.ewt):
                moved += await self.callbacks.reschedule(cb.id, due)
        return moved

    async def _place(self, cb: Callback, token: str) -> None:
        renewal = asyncio.create_task(self._renew(cb.id, token))
        try:
            if (refused := self._refused(cb)) is not None:
                result = refused
            elif cb.window_end is not None and self.clock() >= cb.window_end:
                result = OriginateResult(False, "window_missed", retry=False)
            else:
                aid = action_id(cb.id, cb.attempt)
                log.info("callback %s attempt %d to %s (%s)%s", cb.id, cb.attempt, mask_phone(cb.number), aid,
                         " resumed after a lost lease" if cb.resumed else "")
                try:
                    result = await self.originator.originate(cb, aid)
                except Exception as exc:  # an Originator bug or AmiError: a failed attempt, retried
                    result = OriginateResult(False, "error", detail=f"{type(exc).__name__}: {exc}")
        finally:  # on cancellation (stop/kill) the lease is left to expire: the attempt may be live
            renewal.cancel()
        fields, due = after_attempt(cb, result, self.clock(), self.policy)
        await self._record(cb, token, fields, due)

    def _refused(self, cb: Callback) -> OriginateResult | None:
        """The number as stored must be the E.164 form today's policy accepts; else never dial it."""
        if self.number_policy is None:
            return None
        check = check_callback_number(cb.number, self.number_policy)
        if check.ok and check.e164 == cb.number:
            return None
        why = check.reason or "not in E.164 form"
        log.warning("callback %s: number %s refused by the callback policy (%s): invalid_number, not dialed",
                    cb.id, mask_phone(cb.number), why)
        return OriginateResult(False, "invalid_number", retry=False, detail=why)

    async def _renew(self, cb_id: str, token: str) -> None:  # cancelled by _place
        while True:
            await asyncio.sleep(self.lease / 3)
            with contextlib.suppress(StoreUnavailable):
                if not await self.callbacks.renew(cb_id, token, self.lease, self.clock()):
                    log.error("callback %s: lease lost while placing it", cb_id)
                    return

    async def _record(self, cb: Callback, token: str, fields: dict[str, str], due: float | None) -> None:
        deadline = time.monotonic() + self.lease
        while True:
            try:
                if not await self.callbacks.finish(cb, token, fields, due):
                    log.error("callback %s: lease lost, outcome %s not recorded", cb.id, fields["outcome"])
                return
            except StoreUnavailable as exc:
                if time.monotonic() >= deadline:
                    log.error("callback %s: outcome %s lost, Redis down: %s", cb.id, fields["outcome"], exc)
                    return
                await asyncio.sleep(min(1.0, self.lease / 10))


async def cancel_and_wait(tasks: set[asyncio.Task[None]], limit: float = 5.0) -> None:
    """Cancel until done: on Python 3.11 `asyncio.wait_for` (inside redis-py) can swallow one cancel."""
    deadline = time.monotonic() + limit
    pending = {t for t in tasks if not t.done()}
    while pending and time.monotonic() < deadline:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.05)
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.error("task %s failed: %r", task.get_name(), task.exception())

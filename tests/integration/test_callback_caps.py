"""Caps on callback requests (per caller id: live and per day; the whole service per day) on a real Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ivr.call import Call
from ivr.config import Settings
from ivr.journeys import JourneyLog
from ivr.queueing.callbacks import CallbackCaps, CallbackStore, CapReached, keep_place
from ivr.services import Services
from ivr.store import Store, callback_caller, callback_caller_day, callback_day, connect
from ivr.testing import FakeChannel, FakePrompts
from tests.flowkit import prompts, run, visited

FLOW = """
flow: c
start: cb
nodes:
  cb:
    type: callback
    next: {next: done, refused: nope, exists: dup, failed: down, declined: hold}
  done: {type: hangup}
  nope: {type: hangup}
  dup: {type: hangup}
  down: {type: hangup}
  hold: {type: queue, queue: support}
"""
CAPS = dict(callbacks_max_pending_per_caller=2, callbacks_max_per_caller_day=3, callbacks_max_per_day=5)


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[Store]:
    opened = connect(redis_url)
    yield opened
    await opened.close()


class Line:
    """The callback node on a FakeChannel, against a real CallbackStore, at a settable time."""

    def __init__(self, store: Store, **settings: Any) -> None:
        self.now = datetime(2026, 12, 8, 10, 0, tzinfo=UTC)
        self.callbacks = CallbackStore(store)
        self.settings = Settings(**{**CAPS, **settings})

    async def ask(self, caller: str, keyed: str = "") -> tuple[Call, FakeChannel]:
        """`caller` asks for a callback on their own number, or on `keyed` digits."""
        script = f"2 {' '.join(keyed)} #" if keyed else "1"
        svc = Services(self.settings, FakePrompts(), JourneyLog(None),  # type: ignore[arg-type]
                       callbacks=self.callbacks, clock=lambda: self.now)
        return await run(FLOW, script, svc=svc, callerid=caller)


def refusal(call: Call) -> str:
    return str(call.vars.get("callback_refused", ""))


async def test_a_capped_caller_hears_the_refusal(store: Store) -> None:
    line = Line(store)
    alice = "+12025550123"
    first, _ = await line.ask(alice)
    second, _ = await line.ask("2025550123", keyed="2025550101")  # another number; the caller id spelt nationally
    assert visited(first)[-1] == visited(second)[-1] == "done"
    third, channel = await line.ask(alice, keyed="2025550102")
    assert visited(third) == ["cb", "nope"] and refusal(third) == "cap:caller_pending"
    assert "callback-unavailable" in prompts(channel) and "callback-confirmed" not in prompts(channel)
    assert third.outcome == "callback-refused:cap"
    [event] = [e.detail for e in third.journey if e.kind == "callback"]
    assert event == {"result": "refused", "reason": "cap:caller_pending", "source": "keyed"}
    assert await line.callbacks.for_number("+12025550102") is None  # nothing stored
    # one callback ends: a place is free again, until the day's requests are used up
    assert await line.callbacks.cancel(first.vars["callback_id"])
    fourth, _ = await line.ask(alice, keyed="2025550102")
    assert visited(fourth)[-1] == "done"
    assert await line.callbacks.cancel(fourth.vars["callback_id"])
    fifth, channel = await line.ask(alice, keyed="2025550103")
    assert refusal(fifth) == "cap:caller_day"
    assert prompts(channel)[0] == "callback-unavailable"  # told at once, not after keying a number
    assert fifth.vars.get("callback_id") is None
    line.now += timedelta(days=1)  # a new UTC day
    sixth, _ = await line.ask(alice, keyed="2025550103")
    assert visited(sixth)[-1] == "done"


async def test_the_service_wide_cap_per_day(store: Store) -> None:
    line = Line(store)
    booked = [await line.ask(f"+1202555{i:04d}") for i in range(150, 155)]
    assert all(visited(call)[-1] == "done" for call, _ in booked)
    call, channel = await line.ask("+12025550160")
    assert refusal(call) == "cap:day" and prompts(channel)[0] == "callback-unavailable"
    call, _ = await line.ask("+12025550160", keyed="2025550161")
    assert refusal(call) == "cap:day"


async def test_a_live_callback_for_the_number_is_still_exists(store: Store) -> None:
    line = Line(store, callbacks_max_pending_per_caller=1)
    await line.ask("+12025550123")
    again, channel = await line.ask("+12025550123")  # the same number again: "you already have one"
    assert visited(again) == ["cb", "dup"] and "callback-exists" in prompts(channel)


async def test_caps_are_atomic_and_their_counters_expire(store: Store) -> None:
    callbacks = CallbackStore(store)
    caps = CallbackCaps(pending_per_caller=3, per_caller_day=50, per_day=50)
    now = time.time()

    async def one(i: int) -> str:
        cb = keep_place(f"+1202555{i:04d}", "support", now=now, ewt=0, position=1)
        try:
            await callbacks.add(cb, caller="+12025550123", caps=caps)
        except CapReached as exc:
            return exc.cap
        return "stored"

    results = await asyncio.gather(*(one(200 + i) for i in range(20)))
    assert results.count("stored") == 3 and set(results) == {"stored", "caller_pending"}
    day = datetime.fromtimestamp(now, UTC).strftime("%Y%m%d")
    assert await store.get(callback_caller_day("+12025550123", day)) == "3"
    assert await store.get(callback_day(day)) == "3"
    for key in (callback_caller_day("+12025550123", day), callback_day(day), callback_caller("+12025550123")):
        ttl = await store.ttl(key)
        assert ttl is not None and 0 < ttl <= 8 * 24 * 3600, key
    assert "2025550123" not in callback_caller("+12025550123")  # key names carry no caller id
    assert "2025550123" not in callback_caller_day("+12025550123", day)


def test_caps_come_from_settings() -> None:
    from ivr.config import load_settings
    from ivr.errors import ConfigError

    caps = CallbackCaps.from_settings(Settings(**CAPS))  # type: ignore[arg-type]
    assert (caps.pending_per_caller, caps.per_caller_day, caps.per_day) == (2, 3, 5)
    for key in CAPS:
        with pytest.raises(ConfigError, match=key):
            load_settings(env={"IVR_CONFIG": "/nonexistent/ivr.toml", f"IVR_{key.upper()}": "0"})


async def test_a_request_that_loses_the_race_is_refused_at_storing(store: Store) -> None:
    line = Line(store, callbacks_max_pending_per_caller=1)
    rival = keep_place("+12025550199", "support", now=line.now.timestamp(), ewt=0, position=1)

    class Racing(CallbackStore):
        async def over_cap(self, caller: str, caps: CallbackCaps, now: float) -> str | None:
            found = await super().over_cap(caller, caps, now)
            await super().add(rival, caller=caller, caps=caps)  # the caller's other call books meanwhile
            return found

    line.callbacks = Racing(store)
    call, channel = await line.ask("+12025550123")
    assert refusal(call) == "cap:caller_pending" and "callback-unavailable" in prompts(channel)
    assert await line.callbacks.for_number("+12025550123") is None

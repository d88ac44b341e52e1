"""Durable callbacks and the dialer on a real redis-server: one per number, exactly-once placement, takeover."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from ivr.config import Settings
from ivr.queueing.callbacks import Callback, CallbackStore, keep_place, keep_place_due, slot
from ivr.queueing.dialer import Dialer, OriginateResult, RetryPolicy, action_id, after_attempt, channel_ids
from ivr.store import CALLBACKS_DUE, Store, callback_lease, callback_number, connect
from ivr.store import callback as callback_key
from lab.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = Settings(callbacks_regions=("US", "IT"), callbacks_lease=1.0, callbacks_poll=0.01)


class FakeOriginator:
    """Records every attempt; answers with `answer(callback)` after `delay` s, or never when `hang`."""

    def __init__(self, answer: Callable[[Callback], OriginateResult] | None = None, delay: float = 0.0,
                 hang: bool = False) -> None:
        self.answer = answer or (lambda cb: OriginateResult(True, "accepted"))
        self.delay, self.hang = delay, hang
        self.calls: list[tuple[str, str, bool, float]] = []  # (callback id, action id, resumed, time)

    async def originate(self, callback: Callback, action_id: str) -> OriginateResult:
        self.calls.append((callback.id, action_id, callback.resumed, time.monotonic()))
        if self.hang:
            await asyncio.Event().wait()
        await asyncio.sleep(self.delay)
        return self.answer(callback)


@pytest.fixture
async def stores(redis_url: str) -> AsyncIterator[list[Store]]:
    opened = [connect(redis_url) for _ in range(3)]
    yield opened
    for s in opened:
        await s.close()


async def until(pred: Callable[[], bool], limit: float = 5.0) -> None:
    start = time.monotonic()
    while not pred():
        assert time.monotonic() - start < limit, "condition not reached in time"
        await asyncio.sleep(0.02)


def number(i: int) -> str:
    return f"+39312000{i:04d}"


async def test_one_live_callback_per_number(stores: list[Store]) -> None:
    cbs = CallbackStore(stores[0])
    now = time.time()
    first, created = await cbs.add(keep_place(number(1), "support", now=now, ewt=120, position=4))
    assert created and first.state == "pending"
    again, created = await cbs.add(slot(number(1), "support", now=now, start=now + 60, end=now + 3600))
    assert not created and again.id == first.id and again.kind == "keep_place"
    racers = [keep_place(number(2), "support", now=now, ewt=60, position=1) for _ in range(20)]
    results = await asyncio.gather(*(CallbackStore(stores[i % 3]).add(cb) for i, cb in enumerate(racers)))
    assert sum(created for _, created in results) == 1
    assert len({cb.id for cb, _ in results}) == 1
    assert (await cbs.for_number(number(2))) == results[0][0]
    assert await cbs.cancel(first.id)
    assert (await cbs.get(first.id)).state == "cancelled"  # type: ignore[union-attr]
    assert await cbs.for_number(number(1)) is None
    assert (await cbs.add(keep_place(number(1), "support", now=now, ewt=5, position=1)))[1]  # allowed again
    assert 0 < await stores[0].ttl(f"ivr:cb:{first.id}") <= 7 * 24 * 3600  # type: ignore[operator]


async def test_two_dialers_race_on_twenty_callbacks(stores: list[Store]) -> None:
    now = time.time()
    cbs = CallbackStore(stores[0])
    ids = [(await cbs.add(keep_place(number(i), "support", now=now, ewt=0, position=1)))[0].id for i in range(20)]
    shared = FakeOriginator(delay=0.05)
    dialers = [Dialer(CallbackStore(stores[i]), shared, lease=2.0, poll=0.01, concurrency=5, name=f"d{i}")
               for i in (1, 2)]
    for d in dialers:
        await d.start()
    try:
        await until(lambda: len(shared.calls) >= 20)
        await asyncio.sleep(0.3)  # time for any duplicate to show up
    finally:
        for d in dialers:
            await d.stop()
    placed = [c[0] for c in shared.calls]
    assert sorted(placed) == sorted(ids) and len(placed) == 20  # each exactly once
    for cb_id in ids:
        cb = await cbs.get(cb_id)
        assert cb is not None and (cb.state, cb.attempts, cb.outcome) == ("done", 1, "accepted")
    assert await stores[0].run(lambda r: r.zcard(CALLBACKS_DUE)) == 0
    assert not await stores[0].exists(callback_number(number(0)))


async def test_stopped_dialer_without_release_is_taken_over(stores: list[Store]) -> None:
    cbs = CallbackStore(stores[0])
    cb, _ = await cbs.add(keep_place(number(7), "support", now=time.time(), ewt=0, position=1))
    stuck = FakeOriginator(hang=True)
    victim = Dialer(CallbackStore(stores[1]), stuck, lease=0.6, poll=0.01, name="victim")
    await victim.start()
    await until(lambda: len(stuck.calls) == 1)
    await asyncio.sleep(0.5)  # the victim keeps renewing: nobody else may take it
    await victim.stop(grace=0)  # "killed": the call task is cancelled, the lease is NOT released
    stopped_at = time.monotonic()
    assert await stores[0].exists(callback_lease(cb.id))
    rescuer_orig = FakeOriginator()
    rescuer = Dialer(CallbackStore(stores[2]), rescuer_orig, lease=0.6, poll=0.01, name="rescuer")
    await rescuer.start()
    try:
        await until(lambda: len(rescuer_orig.calls) == 1)
    finally:
        await rescuer.stop()
    cb_id, aid, resumed, at = rescuer_orig.calls[0]
    assert (cb_id, aid, resumed) == (cb.id, stuck.calls[0][1], True)  # same attempt, same ActionID
    assert at - stopped_at > 0.3  # only after the lease ran out
    done = await cbs.get(cb.id)
    assert done is not None and (done.state, done.attempts, done.resumed) == ("done", 1, False)


VICTIM = """
import asyncio, sys
from ivr.queueing.callbacks import CallbackStore
from ivr.queueing.dialer import Dialer
from ivr.store import connect

async def main() -> None:
    store = connect(sys.argv[1])
    class Hang:
        async def originate(self, cb, aid):
            await store.redis.set("test:victim-placed", aid)
            await asyncio.Event().wait()
    await Dialer(CallbackStore(store), Hang(), lease=float(sys.argv[2]), poll=0.02, name="victim").start()
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def test_kill_minus_9_mid_lease_then_another_process_places_it(stores: list[Store], redis_url: str) -> None:
    cbs = CallbackStore(stores[0])
    cb, _ = await cbs.add(slot(number(9), "support", now=time.time(), start=time.time(), end=time.time() + 600))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", VICTIM, redis_url, "1.0", cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 15
        while await stores[0].get("test:victim-placed") is None:
            assert proc.returncode is None and time.monotonic() < deadline, "victim never dialed"
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.2)  # past one lease length: the victim's renewals keep it
        assert (await cbs.get(cb.id)).state == "dialing"  # type: ignore[union-attr]
        proc.kill()  # SIGKILL: no cleanup of any kind
        assert await proc.wait() == -9
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    orig = FakeOriginator()
    rescuer = Dialer(CallbackStore(stores[1]), orig, lease=1.0, poll=0.02, name="rescuer")
    await rescuer.start()
    try:
        await until(lambda: len(orig.calls) == 1, limit=5)
    finally:
        await rescuer.stop()
    assert orig.calls[0][1:3] == (await stores[0].get("test:victim-placed"), True)
    assert (await cbs.get(cb.id)).state == "done"  # type: ignore[union-attr]


async def test_retries_with_backoff_then_failed(stores: list[Store]) -> None:
    cbs = CallbackStore(stores[0])
    cb, _ = await cbs.add(keep_place(number(3), "support", now=time.time(), ewt=0, position=1, max_attempts=3))
    busy = FakeOriginator(lambda c: OriginateResult(False, "busy", detail="486"))
    dialer = Dialer(cbs, busy, policy=RetryPolicy(3, base=0.2, factor=2.0), lease=1.0, poll=0.01)
    await dialer.start()
    try:
        await until(lambda: len(busy.calls) == 3)
        await asyncio.sleep(0.5)
    finally:
        await dialer.stop()
    times = [c[3] for c in busy.calls]
    assert len(busy.calls) == 3
    assert times[1] - times[0] >= 0.19 and times[2] - times[1] >= 0.39  # 0.2 s, then 0.4 s
    assert [c[1] for c in busy.calls] == [action_id(cb.id, n) for n in (1, 2, 3)]
    final = await cbs.get(cb.id)
    assert final is not None and (final.state, final.attempts, final.outcome) == ("failed", 3, "busy")
    assert final.detail.startswith("max attempts")
    assert await cbs.for_number(number(3)) is None  # the number may ask again


async def test_slot_waits_for_its_window_and_expires(stores: list[Store]) -> None:
    now = [1_800_000_000.0]
    cbs = CallbackStore(stores[0], clock=lambda: now[0])
    later, _ = await cbs.add(slot(number(4), "sales", now=now[0], start=now[0] + 3600, end=now[0] + 5400))
    missed, _ = await cbs.add(slot(number(5), "sales", now=now[0], start=now[0] + 60, end=now[0] + 120))
    orig = FakeOriginator()
    dialer = Dialer(cbs, orig, lease=1.0, poll=0.01, clock=lambda: now[0])
    assert await dialer.run_once() == 0  # nothing due yet
    now[0] += 130  # the dialers were down through the whole second window
    assert await dialer.run_once() == 1
    await until(lambda: dialer.placing == 0)
    gone = await cbs.get(missed.id)
    assert gone is not None and (gone.state, gone.outcome) == ("failed", "window_missed") and not orig.calls
    now[0] += 3600
    assert await dialer.run_once() == 1
    await until(lambda: len(orig.calls) == 1)
    await dialer.stop()
    assert orig.calls[0][0] == later.id
    with pytest.raises(ValueError):
        slot(number(6), "sales", now=now[0], start=now[0] - 100, end=now[0] - 10)


async def test_keep_place_is_reevaluated_with_the_queue_speed(stores: list[Store]) -> None:
    cbs = CallbackStore(stores[0])
    cb, _ = await cbs.add(keep_place(number(8), "support", now=time.time(), ewt=600, position=5))
    speed = {"ewt": 600.0}
    orig = FakeOriginator()
    dialer = Dialer(cbs, orig, lease=1.0, poll=0.01, ewt_at=lambda q, k: speed["ewt"], reevaluate_every=0.05)
    await dialer.start()
    try:
        await asyncio.sleep(0.2)
        assert not orig.calls  # still 10 minutes away
        speed["ewt"] = 0.0  # agents came back: it is this caller's turn now
        await until(lambda: len(orig.calls) == 1, limit=2)
    finally:
        await dialer.stop()
    assert keep_place_due(cb, lambda q, k: 30.0 * k) == cb.created_at + 150
    assert keep_place_due(cb, lambda q, k: None) is None


async def test_dialer_survives_a_redis_outage(stores: list[Store], redis_server: RedisServer,
                                              caplog: pytest.LogCaptureFixture) -> None:
    cbs = CallbackStore(stores[0])
    orig = FakeOriginator()
    dialer = Dialer(cbs, orig, lease=1.0, poll=0.05)
    caplog.set_level(logging.INFO, logger="ivr.dialer")
    redis_server.stop()
    await dialer.start()
    try:
        await asyncio.sleep(0.4)
        assert sum("Redis unavailable" in r.getMessage() for r in caplog.records) == 1
        redis_server.start()
        cb, _ = await cbs.add(keep_place(number(10), "support", now=time.time(), ewt=0, position=1))
        await until(lambda: len(orig.calls) == 1)
    finally:
        await dialer.stop()
    assert any("reachable again" in r.getMessage() for r in caplog.records)


def test_pure_helpers() -> None:
    assert action_id("abc", 2) == "cb-abc-2" and channel_ids("abc", 2) == ("cb-abc-2", "cb-abc-2-2")
    policy = RetryPolicy(4, base=60, factor=3, cap=300)
    assert [policy.delay(n) for n in (1, 2, 3)] == [60, 180, 300]
    cb = Callback("x", number(1), "q", "slot", 0.0, 0.0, window_end=100.0, max_attempts=4)
    fields, due = after_attempt(cb, OriginateResult(False, "no_answer"), 50.0, policy)
    assert (fields["state"], due) == ("failed", None) and fields["detail"].startswith("window over")
    fields, due = after_attempt(cb, OriginateResult(False, "congestion"), 10.0, policy)
    assert (fields["state"], due) == ("pending", 70.0)
    fields, due = after_attempt(cb, OriginateResult(False, "failed", retry=False), 10.0, policy)
    assert fields["state"] == "failed" and fields["detail"].startswith("no retry")
    assert Callback.from_hash(cb.to_hash()) == cb


@pytest.mark.parametrize("stored", ["+19005550123", "+447400123456", "+39312000&PJSIP/x@evil", "393120000042",
                                    "+39 312 000 0042"])
async def test_the_dialer_checks_a_stored_number_again(stores: list[Store], stored: str,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    cbs = CallbackStore(stores[0])
    cb, _ = await cbs.add(keep_place(number(42), "support", now=time.time(), ewt=0, position=1))
    await stores[0].run(lambda r: r.hset(callback_key(cb.id), "number", stored))  # tampered in Redis
    orig = FakeOriginator()
    caplog.set_level(logging.INFO)
    dialer = Dialer.from_settings(SETTINGS, cbs, orig)  # the policy: callbacks_regions US, IT
    assert await dialer.run_once() == 1
    await until(lambda: dialer.placing == 0)
    assert not orig.calls  # never dialed
    final = await cbs.get(cb.id)
    assert final is not None and (final.state, final.outcome) == ("failed", "invalid_number")
    assert await stores[0].run(lambda r: r.zscore(CALLBACKS_DUE, cb.id)) is None  # never retried
    assert stored not in caplog.text and stored[1:9] not in caplog.text
    assert any("invalid_number" in r.getMessage() or "refused" in r.getMessage() for r in caplog.records)


async def test_the_dialer_applies_todays_policy(stores: list[Store], caplog: pytest.LogCaptureFixture) -> None:
    cbs = CallbackStore(stores[0])
    it, _ = await cbs.add(keep_place(number(43), "support", now=time.time(), ewt=0, position=1))
    us, _ = await cbs.add(keep_place("+12025550101", "support", now=time.time(), ewt=0, position=1))
    orig = FakeOriginator()
    caplog.set_level(logging.INFO)
    dialer = Dialer.from_settings(replace(SETTINGS, callbacks_regions=("US",)), cbs, orig)  # IT dropped since
    assert await dialer.run_once() == 2
    await until(lambda: dialer.placing == 0)
    assert [c[0] for c in orig.calls] == [us.id]
    refused = await cbs.get(it.id)
    assert refused is not None and (refused.state, refused.outcome) == ("failed", "invalid_number")
    assert "international" in refused.detail and number(43) not in caplog.text and "+12025550101" not in caplog.text


async def test_the_dialer_claims_nothing_while_its_originator_is_not_ready(stores: list[Store]) -> None:
    cbs = CallbackStore(stores[0])
    cb, _ = await cbs.add(keep_place(number(44), "support", now=time.time(), ewt=0, position=1))
    up = [False]  # AMI not logged in yet (start-up, or a reconnect)
    orig = FakeOriginator()
    dialer = Dialer.from_settings(SETTINGS, cbs, orig, ready=lambda: up[0])
    assert await dialer.run_once() == 0 and not orig.calls
    waiting = await cbs.get(cb.id)
    assert waiting is not None and (waiting.state, waiting.attempts) == ("pending", 0)  # no attempt used up
    up[0] = True
    assert await dialer.run_once() == 1
    await until(lambda: dialer.placing == 0)
    assert [c[0] for c in orig.calls] == [cb.id]
async def test_a_malformed_record_is_set_aside_and_the_dialer_goes_on(
        stores: list[Store], caplog: pytest.LogCaptureFixture) -> None:
    cbs = CallbackStore(stores[0])
    now = time.time()
    bad, _ = await cbs.add(keep_place(number(70), "support", now=now - 10, ewt=0, position=1))
    good, _ = await cbs.add(keep_place(number(71), "support", now=now - 10, ewt=0, position=1))
    await stores[0].run(lambda r: r.hset(f"ivr:cb:{bad.id}", mapping={"kind": "someday", "due_at": "soon"}))
    orig = FakeOriginator()
    dialer = Dialer(cbs, orig, lease=2.0, poll=0.01, name="d-malformed")
    caplog.set_level(logging.ERROR, logger="ivr.callbacks")
    await dialer.start()
    try:
        await until(lambda: [c[0] for c in orig.calls] == [good.id])
    finally:
        await dialer.stop()
    assert await cbs.get(bad.id) is None  # read as none, out of the due set and the number index
    assert bad.id not in await cbs.due(time.time() + 3600, 100)
    assert await stores[0].get(callback_number(number(70))) is None
    assert (await cbs.add(keep_place(number(70), "support", now=now, ewt=5, position=1)))[1]  # a new one may be stored
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert f"callback {bad.id}: malformed record" in logged and "kind" in logged and "due_at" in logged
    assert number(70) not in logged and "someday" not in logged

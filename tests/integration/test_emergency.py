"""Emergency switch on a real redis-server: propagation, expiry, outage behaviour, prompt paths."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable

import pytest

from ivr.errors import StoreUnavailable
from ivr.ops.emergency import Announcement, EmergencySwitch, normalise_prompt
from ivr.store import EMERGENCY, Store, connect
from lab.redis_server import RedisServer


@pytest.fixture
async def switches(redis_url: str) -> AsyncIterator[tuple[EmergencySwitch, EmergencySwitch, Store]]:
    a_store, b_store, raw = connect(redis_url), connect(redis_url), connect(redis_url)
    a, b = EmergencySwitch(a_store), EmergencySwitch(b_store)
    await a.start()
    await b.start()
    yield a, b, raw
    for sw in (a, b):
        await sw.stop()
    for st in (a_store, b_store, raw):
        await st.close()


async def wait_for(pred: Callable[[], bool], limit: float = 1.0) -> float:
    """Seconds until pred() is true; fails after `limit`."""
    start = time.monotonic()
    while not pred():
        assert time.monotonic() - start < limit, "not seen in time"
        await asyncio.sleep(0.01)
    return time.monotonic() - start


async def test_set_is_seen_by_another_instance_within_a_second(
        switches: tuple[EmergencySwitch, EmergencySwitch, Store]) -> None:
    a, b, _ = switches
    assert a.active() is None and b.active() is None
    ann = await a.set("custom/storm-closure", set_by="ops@example", ttl=60, text="We are closed today.")
    assert a.active() == ann  # the writer sees it at once
    assert await wait_for(lambda: b.active() is not None) < 1.0
    assert b.active() == ann
    await b.clear("ops@example")
    assert await wait_for(lambda: a.active() is None) < 1.0


async def test_a_missed_message_is_caught_by_the_poll(
        switches: tuple[EmergencySwitch, EmergencySwitch, Store]) -> None:
    a, _, raw = switches
    now = time.time()
    ann = Announcement("custom/flood", "script", now, now + 30)
    await raw.set(EMERGENCY, ann.to_json(), ttl=30)  # written without PUBLISH
    assert await wait_for(lambda: a.active() is not None, limit=1.5) <= 1.2
    assert a.active() == ann


async def test_expires_by_itself(switches: tuple[EmergencySwitch, EmergencySwitch, Store]) -> None:
    a, b, raw = switches
    await a.set("custom/short", set_by="ops", ttl=0.4)
    await wait_for(lambda: b.active() is not None)
    await asyncio.sleep(0.45)
    assert a.active() is None and b.active() is None  # local expiry: no Redis round trip needed
    assert await raw.get(EMERGENCY) is None


async def test_recording_metadata_and_normalised_path(
        switches: tuple[EmergencySwitch, EmergencySwitch, Store]) -> None:
    a, b, _ = switches
    await a.set("/var/lib/asterisk/sounds/custom//storm.WAV", set_by="ops", ttl=30,
                recorded_by="maria", recorded_at=1767600000.0)
    await wait_for(lambda: b.active() is not None)
    got = b.active()
    assert got is not None
    assert (got.prompt, got.recorded_by, got.recorded_at) == ("/var/lib/asterisk/sounds/custom/storm", "maria",
                                                             1767600000.0)
    assert await b.get() == got
    with pytest.raises(ValueError):
        await a.set("custom/x", set_by="ops", ttl=0)


async def test_redis_down_keeps_last_state_and_logs_once(
        switches: tuple[EmergencySwitch, EmergencySwitch, Store], redis_server: RedisServer,
        caplog: pytest.LogCaptureFixture) -> None:
    a, b, _ = switches
    ann = await a.set("custom/storm", set_by="ops", ttl=60)
    await wait_for(lambda: b.active() is not None)
    caplog.set_level(logging.INFO, logger="ivr.emergency")
    redis_server.stop()
    await asyncio.sleep(1.6)  # two poll rounds against a dead Redis
    assert b.active() == ann and a.active() == ann
    assert not await b.refresh()
    with pytest.raises(StoreUnavailable):
        await a.clear("ops")
    down = [r for r in caplog.records if "Redis unavailable" in r.getMessage()]
    assert len(down) == 2  # once per instance, not once per poll
    start = time.monotonic()
    for _ in range(10000):
        b.active()
    assert time.monotonic() - start < 0.2  # cheap: memory only
    redis_server.start()  # AOF keeps the key across the restart
    await wait_for(lambda: any("reachable again" in r.getMessage() for r in caplog.records), limit=3.0)
    await a.clear("ops")
    assert await wait_for(lambda: b.active() is None) < 1.0


def test_normalise_prompt() -> None:
    assert normalise_prompt(" custom/storm-closure ") == "custom/storm-closure"
    assert normalise_prompt("/var/spool/asterisk/recording/em_2026.sln16") == "/var/spool/asterisk/recording/em_2026"
    assert normalise_prompt("/srv/sounds/./x/y.gsm") == "/srv/sounds/x/y"
    for bad in ("../etc/passwd", "/var/../etc/passwd", "custom/storm.wav", "a b", "/x;rm", "", "C:\\x.wav",
                "/" + "a" * 300):
        with pytest.raises(ValueError):
            normalise_prompt(bad)

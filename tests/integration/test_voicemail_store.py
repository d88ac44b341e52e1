"""Voicemail store and webhook against a real HTTP receiver: a failing webhook is retried with backoff until it
answers, a dead one keeps everything in the outbox, and the next start of the service delivers it."""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import web

from ivr.ops.voicemail import VoicemailStore, WebhookNotifier
from lab.ports import free_tcp_port
from tests.appkit import running

META = dict(caller="+12025550101", time="2026-03-10T15:30:00+00:00", language="en", reason="closed")


@dataclass
class Receiver:
    """A webhook endpoint that answers `statuses` in turn (then 200) and keeps what it got."""

    statuses: list[int] = field(default_factory=list)
    got: list[tuple[dict[str, Any], dict[str, str]]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.got.append((await request.json(), dict(request.headers)))
        status = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=status)


@asynccontextmanager
async def receiver(statuses: list[int] | None = None) -> AsyncIterator[Receiver]:
    rec = Receiver(list(statuses or []))
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        yield rec
    finally:
        await runner.cleanup()


def recorded(store: VoicemailStore, message_id: str, seconds: float = 1.0) -> None:
    """What Asterisk leaves in incoming/: 8 kHz mono 16-bit."""
    store.prepare()
    n = int(8000 * seconds)
    with wave.open(str(store.area.raw_file(message_id)), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes((np.sin(np.arange(n) / 5) * 8000).astype("<i2").tobytes())


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_failing_webhook_is_retried_with_backoff_until_delivered(tmp_path: Path) -> None:
    store = VoicemailStore(tmp_path, str(tmp_path), notify=True)
    recorded(store, "20260310T153000Z-00000001")
    message = store.save("20260310T153000Z-00000001", **META)
    assert message is not None
    clock = Clock()
    async with receiver([500, 503]) as rec:
        notifier = WebhookNotifier(store, rec.url, token="s3cret", backoff=10, max_backoff=25, clock=clock)
        try:
            await notifier.deliver_due()  # 500
            first = store.entry(message.id)
            assert first["attempts"] == 1 and first["last_error"] == "HTTP 500"
            assert 8 <= first["next_at"] - clock.now <= 10
            await notifier.deliver_due()  # not due yet: nothing sent
            assert len(rec.got) == 1
            clock.now = first["next_at"]
            await notifier.deliver_due()  # 503
            second = store.entry(message.id)
            assert second["attempts"] == 2 and 16 <= second["next_at"] - clock.now <= 20
            clock.now = second["next_at"]
            await notifier.deliver_due()  # 200
        finally:
            await notifier.stop()
    assert store.pending() == [] and notifier.delivered == 1
    assert store.get(message.id)["notified_at"] == clock.now
    payloads = [p for p, _ in rec.got]
    assert payloads == [message.payload()] * 3
    assert payloads[0]["reason"] == "closed" and payloads[0]["caller"] == "+12025550101"
    assert all(h["Idempotency-Key"] == message.id and h["Authorization"] == "Bearer s3cret" for _, h in rec.got)


async def test_backoff_is_capped(tmp_path: Path) -> None:
    store = VoicemailStore(tmp_path, str(tmp_path), notify=True)
    recorded(store, "20260310T153000Z-00000002")
    store.save("20260310T153000Z-00000002", **META)
    clock = Clock()
    notifier = WebhookNotifier(store, f"http://127.0.0.1:{free_tcp_port()}/hook", backoff=10, max_backoff=25,
                               clock=clock)
    delays = []
    try:
        for _ in range(6):
            await notifier.deliver_due()
            due = store.entry("20260310T153000Z-00000002")["next_at"]
            delays.append(due - clock.now)
            clock.now = due
    finally:
        await notifier.stop()
    entry = store.entry("20260310T153000Z-00000002")
    assert entry["attempts"] == 6 and entry["last_error"] == "ClientConnectorError"
    assert 8 <= delays[0] <= 10 and 16 <= delays[1] <= 20  # doubling, with jitter
    assert all(20 <= d <= 25 for d in delays[2:])  # capped


async def test_dead_webhook_loses_nothing_and_the_next_start_delivers(tmp_path: Path) -> None:
    folder = tmp_path / "vm"
    dead = f"http://127.0.0.1:{free_tcp_port()}/hook"
    ids = [f"20260310T15300{i}Z-0000000{i}" for i in range(3)]
    async with running(tmp_path, voicemail_dir=folder, voicemail_webhook=dead, voicemail_webhook_backoff=0.05,
                       voicemail_webhook_max_backoff=0.2) as app:
        store = app.services.voicemail
        assert store is not None
        for message_id in ids:
            await asyncio.to_thread(recorded, store, message_id)
            assert await store.keep(message_id, **META) is not None
        await wait_for(lambda: all(store.entry(i).get("attempts", 0) >= 2 for i in ids))
    assert store.pending() == ids  # still there after the service stopped
    async with receiver() as rec, running(tmp_path, voicemail_dir=folder, voicemail_webhook=rec.url) as app2:
        await wait_for(lambda: len(rec.got) == 3)
        store2 = app2.services.voicemail
        assert store2 is not None
        await wait_for(lambda: store2.pending() == [])
    assert sorted(p["id"] for p, _ in rec.got) == ids
    assert all(store2.get(i)["notified_at"] for i in ids)
    assert all((folder / "messages" / f"{i}.wav").exists() for i in ids)


async def test_without_a_webhook_messages_are_stored_and_nothing_is_queued(tmp_path: Path) -> None:
    store = VoicemailStore(tmp_path, str(tmp_path), notify=False)
    recorded(store, "20260310T153000Z-00000009")
    message = store.save("20260310T153000Z-00000009", **META)
    assert message is not None and store.pending() == []
    assert store.get(message.id)["reason"] == "closed"


async def wait_for(predicate: Any, limit: float = 30.0) -> None:
    """Poll a condition (not a timing assertion: the limit only stops a hung test)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not predicate():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.02)

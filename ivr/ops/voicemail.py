"""Voicemail: messages on disk (telephone audio + JSON metadata) and a webhook told about each one.

Layout under `voicemail.dir`:
    incoming/<id>.wav      what Asterisk recorded (raw; removed once normalised)
    messages/<id>.wav      the message, 8 kHz mono 16-bit
    messages/<id>.json     caller, customer, time, language, reason, queue, seconds, notified_at ...
    outbox/<id>.json       a webhook still to deliver: attempts, next attempt, last error

Nothing is lost: the message and its outbox entry are on disk before the caller hears "thank you"; the
notifier POSTs each entry until the webhook answers 2xx (exponential backoff, capped, never giving up), and
a restart picks the outbox up again. Delivery is at least once: the `Idempotency-Key` header (the message
id) lets the receiver drop a repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp

from ivr.backoff import Backoff
from ivr.config import Settings
from ivr.media.recordings import RecordingArea, check_id, write_json_atomic

log = logging.getLogger("ivr.voicemail")

REASONS = ("closed", "holiday", "emergency", "overflow", "caller", "no-agents", "direct")


@dataclass(frozen=True)
class Message:
    """One voicemail. `time` is ISO 8601 UTC; `file` the service-side path of the audio."""

    id: str
    caller: str
    time: str
    language: str
    reason: str
    seconds: float
    file: str
    customer_id: str = ""
    queue: str = ""
    flow: str = ""
    call_id: str = ""

    def payload(self) -> dict[str, Any]:
        """What the webhook receives."""
        return asdict(self)


class VoicemailStore:
    """Blocking file work; the node calls it through asyncio.to_thread."""

    def __init__(self, host_dir: Path, asterisk_dir: str, *, notify: bool = False) -> None:
        self.area = RecordingArea(host_dir, asterisk_dir, kept="messages")
        self.outbox = host_dir / "outbox"
        self.notify = notify  # write outbox entries (a webhook is configured)
        self.on_saved: Callable[[], None] | None = None  # the notifier's kick, set by ivr.app

    @classmethod
    def from_settings(cls, settings: Settings) -> VoicemailStore:
        return cls(settings.voicemail_dir, settings.asterisk_voicemail_dir(), notify=bool(settings.voicemail_webhook))

    def prepare(self) -> None:
        self.area.prepare()
        self.outbox.mkdir(parents=True, exist_ok=True)

    def target(self, message_id: str) -> str:
        """Where Asterisk records the message (its path, without extension)."""
        return self.area.raw_target(message_id)

    def save(self, message_id: str, *, min_seconds: float = 0.5, **meta: Any) -> Message | None:
        """Normalise the recording and store it with `meta` (caller, time, language, reason ...), then queue
        its webhook. None when nothing was said. Audio that cannot be converted is kept raw and still stored."""
        self.prepare()
        try:
            take = self.area.finish(message_id, min_seconds)
        except Exception as exc:  # AudioDecodeError or worse: keep what Asterisk wrote, say so
            log.error("voicemail %s: could not convert the recording (%s); kept as recorded", message_id, exc)
            raw = self.area.raw_file(message_id)
            message = Message(id=message_id, seconds=0.0, file=str(raw), **meta)
        else:
            if take is None:
                return None
            message = Message(id=message_id, seconds=take.seconds, file=str(take.path), **meta)
        self.area.write_meta(message_id, {**message.payload(), "notified_at": None})
        if self.notify:
            write_json_atomic(self.outbox / f"{message_id}.json", {"id": message_id, "attempts": 0, "next_at": 0.0})
        return message

    async def keep(self, message_id: str, *, min_seconds: float = 0.5, **meta: Any) -> Message | None:
        """`save` off the event loop, then wake the webhook notifier."""
        message = await asyncio.to_thread(self.save, message_id, min_seconds=min_seconds, **meta)
        if message is not None and self.on_saved is not None:
            self.on_saved()
        return message

    def get(self, message_id: str) -> dict[str, Any]:
        return self.area.read_meta(message_id)

    def pending(self) -> list[str]:
        """Ids with a webhook still to deliver, oldest first."""
        if not self.outbox.is_dir():
            return []
        return sorted(p.stem for p in self.outbox.glob("*.json") if not p.name.startswith("."))

    def entry(self, message_id: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.outbox / f"{check_id(message_id)}.json").read_text("utf-8"))
        return data

    def postpone(self, message_id: str, attempts: int, next_at: float, error: str) -> None:
        write_json_atomic(self.outbox / f"{check_id(message_id)}.json",
                          {"id": message_id, "attempts": attempts, "next_at": next_at, "last_error": error})

    def delivered(self, message_id: str, at: float) -> None:
        self.area.update_meta(message_id, notified_at=at)
        (self.outbox / f"{check_id(message_id)}.json").unlink(missing_ok=True)


class WebhookNotifier:
    """Delivers the outbox: at start, whenever `kick()` is called, and when a retry falls due."""

    def __init__(self, store: VoicemailStore, url: str, *, token: str = "", backoff: float = 2.0,
                 max_backoff: float = 3600.0, timeout: float = 10.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.url = url
        self._token = token
        self.backoff = max(0.01, backoff)
        self.max_backoff = max(self.backoff, max_backoff)
        self._delays = Backoff(self.backoff, cap=self.max_backoff, jitter=0.2)  # 80-100 % of the capped delay
        self.timeout = timeout
        self.clock = clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self.delivered = 0

    @classmethod
    def from_settings(cls, store: VoicemailStore, settings: Settings) -> WebhookNotifier | None:
        if not settings.voicemail_webhook:
            return None
        return cls(store, settings.voicemail_webhook, token=settings.voicemail_webhook_token,
                   backoff=settings.voicemail_webhook_backoff, max_backoff=settings.voicemail_webhook_max_backoff)

    def kick(self) -> None:
        """A new message is in the outbox: deliver now."""
        self._wake.set()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="voicemail-webhook")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                wait = await self.deliver_due()
            except Exception:  # never let the loop die: the outbox is still on disk
                log.exception("voicemail webhook: delivery round failed")
                wait = self.backoff
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def deliver_due(self) -> float:
        """Try every entry that is due; returns seconds until the next one falls due (at most 60)."""
        now = self.clock()
        soonest = 60.0
        for message_id in await asyncio.to_thread(self.store.pending):
            try:
                entry = await asyncio.to_thread(self.store.entry, message_id)
                meta = await asyncio.to_thread(self.store.get, message_id)
            except (OSError, ValueError) as exc:
                log.error("voicemail webhook: outbox entry %s unreadable: %s", message_id, exc)
                continue
            due = float(entry.get("next_at", 0.0))
            if due > now:
                soonest = min(soonest, due - now)
                continue
            error = await self._post(meta)
            if error is None:
                await asyncio.to_thread(self.store.delivered, message_id, self.clock())
                self.delivered += 1
                log.info("voicemail %s: webhook delivered", message_id)
                continue
            attempts = int(entry.get("attempts", 0)) + 1
            delay = self._delays.delay(attempts - 1)
            await asyncio.to_thread(self.store.postpone, message_id, attempts, self.clock() + delay, error)
            log.warning("voicemail %s: webhook failed (%s), attempt %d; next in %.0fs", message_id, error,
                        attempts, delay)
            soonest = min(soonest, delay)
        return soonest

    async def _post(self, meta: dict[str, Any]) -> str | None:
        """None on a 2xx answer, else what went wrong."""
        payload = {k: v for k, v in meta.items() if k != "notified_at"}
        headers = {"Idempotency-Key": str(payload.get("id", ""))}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        try:
            async with self._session.post(self.url, json=payload, headers=headers) as resp:
                if 200 <= resp.status < 300:
                    return None
                return f"HTTP {resp.status}"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return type(exc).__name__

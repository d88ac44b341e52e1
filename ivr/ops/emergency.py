"""Emergency announcement switch: one Redis key with a TTL, cached per process, refreshed by pub/sub + poll."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import posixpath
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from ivr.errors import StoreUnavailable
from ivr.store import EMERGENCY, EMERGENCY_CHANNEL, EMERGENCY_MAX_TTL, Store

log = logging.getLogger("ivr.emergency")

_NAME = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")  # a sound name, e.g. custom/storm-closure
_PATH = re.compile(r"^(/[A-Za-z0-9_.-]+)+$")
AUDIO_EXTENSIONS = (".wav", ".wav16", ".gsm", ".ulaw", ".alaw", ".sln", ".sln16", ".g722", ".g729", ".mp3")
MAX_PROMPT = 255


def normalise_prompt(value: str) -> str:
    """A sound name, or an absolute Asterisk-side path made canonical and without its audio extension.

    Raises ValueError for anything else (relative paths, `..`, odd characters): Playback() gets this value.
    """
    text = value.strip()
    if _NAME.match(text) and len(text) <= MAX_PROMPT:
        return text
    path = posixpath.normpath(text) if text.startswith("/") and ".." not in text else ""
    if not _PATH.match(path) or len(path) > MAX_PROMPT:
        raise ValueError(f"not a sound name or an absolute audio path: {value!r}")
    for ext in AUDIO_EXTENSIONS:
        if path.lower().endswith(ext):
            return path[: -len(ext)]
    return path


@dataclass(frozen=True)
class Announcement:
    """What every caller hears while the switch is on. Times are epoch seconds."""

    prompt: str  # normalised (see normalise_prompt)
    set_by: str
    set_at: float
    expires_at: float
    text: str | None = None  # the words, for TTS fallback and the admin UI
    recorded_by: str | None = None  # who recorded the audio (None: a catalogue prompt)
    recorded_at: float | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str) -> Announcement:
        data: dict[str, Any] = json.loads(raw)
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


class EmergencySwitch:
    """`active()` answers from memory; a background task keeps it within ~`poll` seconds of Redis."""

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time, poll: float = 1.0) -> None:
        self._store = store
        self.clock = clock
        self.poll = min(poll, 1.0)
        self._cached: Announcement | None = None
        self._down = False
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def active(self) -> Announcement | None:
        """The announcement in force, without I/O; honours its expiry even if Redis is unreachable."""
        current = self._cached
        return current if current is not None and current.expires_at > self.clock() else None

    async def set(self, prompt: str, *, set_by: str, ttl: float, text: str | None = None,
                  recorded_by: str | None = None, recorded_at: float | None = None) -> Announcement:
        """Turn on (or replace) the announcement for `ttl` seconds; raises StoreUnavailable or ValueError."""
        if not 0 < ttl <= EMERGENCY_MAX_TTL:
            raise ValueError(f"ttl must be in (0, {EMERGENCY_MAX_TTL:g}] seconds")
        now = self.clock()
        ann = Announcement(normalise_prompt(prompt), set_by, now, now + ttl, text, recorded_by, recorded_at)
        payload = ann.to_json()

        async def write(r: Any) -> Any:
            async with r.pipeline(transaction=True) as pipe:
                pipe.set(EMERGENCY, payload, px=max(1, int(ttl * 1000)))
                pipe.publish(EMERGENCY_CHANNEL, payload)
                return await pipe.execute()

        await self._store.run(write)
        self._cached = ann
        log.warning("emergency announcement ON by %s: %s (until %.0f)", set_by, ann.prompt, ann.expires_at)
        return ann

    async def clear(self, cleared_by: str) -> None:
        """Turn the announcement off everywhere; raises StoreUnavailable."""

        async def write(r: Any) -> Any:
            async with r.pipeline(transaction=True) as pipe:
                pipe.delete(EMERGENCY)
                pipe.publish(EMERGENCY_CHANNEL, "")
                return await pipe.execute()

        await self._store.run(write)
        self._cached = None
        log.warning("emergency announcement OFF by %s", cleared_by)

    async def get(self) -> Announcement | None:
        """Read Redis now (raises StoreUnavailable) and update the cache."""
        raw = await self._store.get(EMERGENCY)
        self._apply(raw or "")
        return self.active()

    async def refresh(self) -> bool:
        """Like `get` but never raises: on failure the last known state stays (logged once per outage)."""
        try:
            await self.get()
        except StoreUnavailable as exc:
            self._outage(exc)
            return False
        self._recovered()
        return True

    async def start(self) -> None:
        """Load the current state (best effort) and start following changes."""
        await self.refresh()
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._follow(), name="emergency-follow")

    async def stop(self) -> None:
        if self._task is not None:
            self._stopping = True
            while not self._task.done():  # repeat: Python 3.11's wait_for (in redis-py) can drop a cancel
                self._task.cancel()
                await asyncio.wait({self._task}, timeout=0.05)
            self._task = None

    def _apply(self, raw: str) -> None:
        try:
            self._cached = Announcement.from_json(raw) if raw else None
        except (ValueError, TypeError) as exc:
            log.error("emergency: unreadable announcement in Redis ignored: %s", exc)

    def _outage(self, exc: Exception) -> None:
        if not self._down:
            self._down = True
            state = "ON" if self.active() else "off"
            log.warning("emergency: Redis unavailable (%s); using the last known state (%s)", exc, state)

    def _recovered(self) -> None:
        if self._down:
            self._down = False
            log.info("emergency: Redis reachable again")

    async def _follow(self) -> None:
        """Pub/sub for instant changes, plus a GET every `poll` s for anything missed (e.g. TTL expiry)."""
        pubsub: PubSub | None = None
        next_poll = 0.0
        try:
            while not self._stopping:
                try:
                    if pubsub is None:
                        pubsub = self._store.redis.pubsub()
                        await pubsub.subscribe(EMERGENCY_CHANNEL)
                        next_poll = 0.0  # reload after (re)subscribing: changes may have been missed
                    msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=self.poll / 2)
                    if msg is not None and msg.get("type") == "message":
                        self._apply(str(msg.get("data") or ""))
                    if time.monotonic() >= next_poll:
                        next_poll = time.monotonic() + self.poll
                        await self.get()
                    self._recovered()
                except (RedisError, OSError, TimeoutError, StoreUnavailable) as exc:
                    self._outage(exc)
                    await _close(pubsub)
                    pubsub = None
                    await asyncio.sleep(self.poll)
        finally:
            await _close(pubsub)


async def _close(pubsub: PubSub | None) -> None:
    if pubsub is not None:
        with contextlib.suppress(Exception):
            await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]

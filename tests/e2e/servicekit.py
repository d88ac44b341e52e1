"""Runs the real ivr service against the session's private Asterisk, and watches what calls did."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivr.app import App
from lab import AsteriskInstance
from tests.appkit import settings_for


@dataclass
class Service:
    """The running App plus every AMI event its own AMI client received."""

    app: App
    events: list[dict[str, str]] = field(default_factory=list)

    def named(self, *names: str) -> list[dict[str, str]]:
        return [e for e in self.events if e.get("Event") in names]

    def journeys(self) -> list[dict[str, Any]]:
        return list(self.app.journeys.recent)

    async def wait_for(self, what: str, predicate: Callable[[], bool], limit: float = 15.0) -> None:
        deadline = time.monotonic() + limit
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.05)

    async def journey_count(self, n: int, limit: float = 20.0) -> list[dict[str, Any]]:
        await self.wait_for(f"{n} finished journeys", lambda: len(self.app.journeys.recent) >= n, limit)
        return self.journeys()


def said(journey: dict[str, Any]) -> list[str]:
    return [p for e in journey["journey"] if e["kind"] == "prompt" for p in e["prompts"]]


def visited(journey: dict[str, Any]) -> list[str]:
    return [e["node"] for e in journey["journey"] if e["kind"] == "enter"]


E2E_READ_TOKEN = "e2e-read-token"  # views with caller data (journeys, live calls) need a bearer token


def service_settings(asterisk: AsteriskInstance, tmp: Path, **over: Any) -> Any:
    sounds = asterisk.sounds_dir()
    base: dict[str, Any] = dict(
        agi_port=asterisk.agi_port, ami_enabled=True, ami_port=asterisk.ami_port, ami_user=asterisk.ami_user,
        ami_secret=asterisk.ami_secret, prompts_cache=sounds.host, prompts_asterisk_dir=sounds.asterisk,
        drain_seconds=2.0, http_read_token=E2E_READ_TOKEN)
    return settings_for(tmp, **{**base, **over})


@asynccontextmanager
async def running_service(asterisk: AsteriskInstance, tmp: Path, **over: Any) -> AsyncIterator[Service]:
    app = App(service_settings(asterisk, tmp, **over))
    svc = Service(app)
    assert app.ami is not None
    app.ami.on("*", svc.events.append)
    await app.start()
    try:
        assert await app.ami.wait_connected(10), "the service's AMI client did not log in"
        yield svc
    finally:
        await app.stop()

"""`ivr simulate`: walk a flow at a terminal, the real service code answering real AGI from a fake Asterisk."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ivr.app import App
from ivr.config import Settings
from ivr.testing import FakeAsterisk, Transcript


def parse_at(text: str) -> datetime:
    """`2026-12-07 10:00`, `2026-12-07T10:00+01:00` or `2026-12-07 10:00 Europe/Rome`; without a zone, the
    machine's local time. Raises ValueError with what was wrong."""
    text = " ".join(text.split())
    zone: tzinfo | None = None
    head, _, last = text.rpartition(" ")
    if head and ("/" in last or last == "UTC"):
        try:
            zone = ZoneInfo(last)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {last!r}") from exc
        text = head
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a date and time like 2026-12-07 10:00") from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=zone) if zone is not None else when.astimezone()
    return when


async def simulate(
    settings: Settings, flow: str, keys: str | None, *, caller_id: str = "", language: str = "",
    echo: Callable[[str], None] | None = print, ask: Callable[[], str] | None = None,
    at: datetime | None = None,
) -> tuple[Transcript, dict[str, Any]]:
    """Run one simulated call; returns what the caller heard and the call's journey. `at`: the call
    happens then (opening hours, holidays, slots), its clock running on from there."""
    settings = dataclasses.replace(settings, agi_port=0, http_port=0, ami_enabled=False, reload_watch=False,
                                   journeys_file=settings.journeys_file)
    # speech is typed: `say:"my balance"` in the keys is what the caller says at a prompt that listens
    speech = {**settings.extra.get("speech", {}), "mode": "typed"}
    settings = dataclasses.replace(settings, extra={**settings.extra, "speech": speech})
    app = App(settings)
    if at is not None:
        started = time.monotonic()
        app.services.clock = lambda: at + timedelta(seconds=time.monotonic() - started)
    await app.start()
    try:
        fake = FakeAsterisk(keys or "", describe=app.prompts.describe, echo=echo,
                            env={"callerid": caller_id or "unknown",
                                 "language": language or settings.default_language},
                            secure=lambda: any(c.secure_input for c in app.journeys.live.values()))
        fake.script.ask = ask if keys is None else None
        transcript = await fake.call("127.0.0.1", app.agi.port, flow)
    finally:
        await app.stop()
    journey = app.journeys.recent[-1] if app.journeys.recent else {}
    return transcript, journey


def ask_terminal() -> str:
    """Interactive keys: one line of keys (or 't' for silence, 'h' to hang up)."""
    try:
        return input("  keys (say:\"words\" to speak)> ") or "t"
    except EOFError:
        return "h"


def print_journey(journey: dict[str, Any], as_json: bool = False) -> None:
    if as_json:
        json.dump(journey, sys.stdout, ensure_ascii=False)
        print()
        return
    print(f"— journey of {journey.get('uniqueid')} ({journey.get('flow')}): outcome {journey.get('outcome')}")
    for e in journey.get("journey", []):
        extra = {k: v for k, v in e.items() if k not in ("t", "node", "kind")}
        print(f"  {e['t']:7.3f}s  {e['node']:<18} {e['kind']:<8} {json.dumps(extra, ensure_ascii=False)}")

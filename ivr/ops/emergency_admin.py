"""Turning the emergency announcement on and off: one set of checks for `ivr emergency` and `/emergency`.

An announcement is one of:
- a catalogue prompt (`prompts/<lang>/<name>.wav` or a text in `texts.yaml`): every caller hears it in
  their language;
- a recording at an absolute path (as Asterisk sees it; the service must see it too, to check it);
- free text (`text` only): rendered by TTS in the default language.
A prompt may carry a `text` as well: it is shown to admins and spoken if the prompt cannot be played.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ivr.config import Settings
from ivr.errors import IvrError, StoreUnavailable
from ivr.media.prompts import PromptCatalog
from ivr.ops.emergency import AUDIO_EXTENSIONS, Announcement, EmergencySwitch, normalise_prompt
from ivr.store import EMERGENCY_MAX_TTL, connect

TEXT_ONLY = "emergency-text"  # Announcement.prompt when the announcement is only text for TTS
MIN_MINUTES = 1.0
MAX_MINUTES = EMERGENCY_MAX_TTL / 60
MAX_TEXT = 1000
_WHO = re.compile(r"^[\w.@+:/ -]{1,64}$")


class AdminError(IvrError):
    """Bad input from an admin: the message says what to change."""


@dataclass(frozen=True)
class Checked:
    """A validated request to turn the announcement on."""

    prompt: str
    text: str | None
    ttl: float  # seconds
    set_by: str


def check_on(prompt: str | None, text: str | None, minutes: Any, by: str,
             known: Collection[str] | Callable[[str], bool]) -> Checked:
    """Validate an `on` request; `known` says which catalogue prompt names exist. Raises AdminError."""
    prompt = (prompt or "").strip() or None
    text = " ".join((text or "").split()) or None
    if prompt is None and text is None:
        raise AdminError("give a prompt (a catalogue name or an absolute audio path) or a text")
    if text is not None and len(text) > MAX_TEXT:
        raise AdminError(f"text is longer than {MAX_TEXT} characters")
    return Checked(_check_prompt(prompt, known) if prompt else TEXT_ONLY, text, _check_minutes(minutes) * 60,
                   check_by(by))


def check_by(by: str) -> str:
    who = " ".join(str(by or "").split())
    if not _WHO.match(who):
        raise AdminError(f"who: 1-64 letters, digits, spaces or . @ + : / _ - (got {by!r})")
    return who


def _check_minutes(raw: Any) -> float:
    try:
        minutes = float(raw)
    except (TypeError, ValueError):
        raise AdminError(f"minutes: a number from {MIN_MINUTES:g} to {MAX_MINUTES:g}, got {raw!r}") from None
    if isinstance(raw, bool) or not MIN_MINUTES <= minutes <= MAX_MINUTES:
        raise AdminError(f"minutes: from {MIN_MINUTES:g} to {MAX_MINUTES:g} (7 days), got {raw!r}")
    return minutes


def _check_prompt(prompt: str, known: Collection[str] | Callable[[str], bool]) -> str:
    try:
        name = normalise_prompt(prompt)
    except ValueError as exc:
        raise AdminError(str(exc)) from None
    if name.startswith("/"):
        if not any(Path(name + ext).is_file() for ext in ("", *AUDIO_EXTENSIONS)):
            raise AdminError(f"no audio file at {prompt} ({', '.join(AUDIO_EXTENSIONS)}); "
                             "the service must see the recording Asterisk will play")
        return name
    exists = known(name) if callable(known) else name in known
    if not exists or name == TEXT_ONLY:
        raise AdminError(f"no prompt {name!r} in the catalogue (prompts/<lang>/texts.yaml or <name>.wav); "
                         "use an absolute path for a recording, or a text")
    return name


async def turn_on(switch: EmergencySwitch, checked: Checked) -> Announcement:
    """Store it (every instance hears it within a second); raises StoreUnavailable."""
    return await switch.set(checked.prompt, set_by=checked.set_by, ttl=checked.ttl, text=checked.text)


async def turn_off(switch: EmergencySwitch, by: str) -> Announcement | None:
    """Clear it everywhere; returns what was on (None: nothing was). Raises StoreUnavailable."""
    who = check_by(by)
    was = await switch.get()
    await switch.clear(who)
    return was


def describe(ann: Announcement | None, now: float | None = None) -> dict[str, Any]:
    """The announcement as admins see it (JSON-ready)."""
    if ann is None:
        return {"active": False}
    now = time.time() if now is None else now
    return {"active": True, "prompt": None if ann.prompt == TEXT_ONLY else ann.prompt, "text": ann.text,
            "set_by": ann.set_by, "set_at": _iso(ann.set_at), "expires_at": _iso(ann.expires_at),
            "remaining_seconds": max(0, round(ann.expires_at - now)), "recorded_by": ann.recorded_by}


def summary(ann: Announcement | None, now: float | None = None) -> str:
    """One line for a terminal."""
    info = describe(ann, now)
    if not info["active"]:
        return "emergency announcement: off"
    what = info["prompt"] or f"text {info['text']!r}"
    return (f"emergency announcement: ON - {what}; set by {info['set_by']} at {info['set_at']}; "
            f"expires {info['expires_at']} (in {-(-info['remaining_seconds'] // 60)} min)")


# --- the `ivr emergency` command --------------------------------------------------------------------

EXIT_OK, EXIT_OFF, EXIT_BAD, EXIT_DOWN = 0, 1, 2, 3  # EXIT_OFF: `status` when nothing is on


async def command(settings: Settings, action: str, *, prompt: str | None = None, text: str | None = None,
                  minutes: Any = None, by: str = "", as_json: bool = False) -> int:
    """`on` | `off` | `status` against the Redis in `settings`; prints the result, returns the exit code."""
    if not settings.redis_url:
        print("ivr emergency: redis.url is not set (IVR_REDIS_URL): the switch lives in Redis", file=sys.stderr)
        return EXIT_BAD
    store = connect(settings.redis_url)
    try:
        switch = EmergencySwitch(store)
        if action == "on":
            catalog, _ = PromptCatalog.load(settings.prompts_dir, settings.languages, settings.default_language)
            ann: Announcement | None = await turn_on(switch, check_on(prompt, text, minutes, by, catalog.names()))
        elif action == "off":
            await turn_off(switch, by)
            ann = None
        else:
            ann = await switch.get()
    except AdminError as exc:
        print(f"ivr emergency {action}: {exc}", file=sys.stderr)
        return EXIT_BAD
    except StoreUnavailable as exc:
        print(f"ivr emergency {action}: Redis unavailable ({exc}); nothing changed", file=sys.stderr)
        return EXIT_DOWN
    finally:
        await store.close()
    print(json.dumps(describe(ann)) if as_json else summary(ann))
    return EXIT_OFF if action == "status" and ann is None else EXIT_OK


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")

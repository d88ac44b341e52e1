"""The voicemail node: the caller's message is recorded, normalised, stored with caller, time, language and
reason, and queued for the webhook; a hang-up ends the message without losing it; silence stores nothing."""

from __future__ import annotations

import json
import wave
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from ivr.call import Call
from ivr.config import Settings, load_settings
from ivr.errors import ConfigError
from ivr.journeys import JourneyLog
from ivr.nodes.voicemail import infer_reason
from ivr.ops.voicemail import VoicemailStore
from ivr.services import Services
from ivr.testing import FakeChannel, FakePrompts
from tests.flowkit import prompts, run, visited

NOW = datetime(2026, 3, 10, 15, 30, tzinfo=UTC)
FLOW = """
flow: vm
start: menu
nodes:
  menu:
    type: menu
    prompt: main-menu
    options: {{"3": leave}}
    next: {{invalid: bye, timeout: bye}}
  leave: {{type: voicemail{params}, next: bye}}
  bye: {{type: hangup}}
"""


def speech_wav(path: Path, seconds: float = 1.5, rate: int = 16000, channels: int = 2) -> None:
    """What a caller "says": a tone, in a format that is not telephone audio (to prove normalisation)."""
    t = np.arange(int(seconds * rate)) / rate
    mono = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.repeat(mono, channels).tobytes())


Hook = Callable[[FakeChannel, str], None]  # FakeChannel.on_record, with the channel


def speaks(seconds: float = 1.5) -> Hook:
    """"Asterisk" writes the caller's audio where it was told to record."""
    return lambda ch, path: speech_wav(Path(path + ".wav"), seconds)


async def go(tmp_path: Path, script: str, *, params: str = "", on_record: Hook | None = None,
             language: str = "en") -> tuple[Call, FakeChannel, VoicemailStore, list[int]]:
    store = VoicemailStore(tmp_path / "vm", str(tmp_path / "vm"), notify=True)
    kicks: list[int] = []
    store.on_saved = lambda: kicks.append(1)
    svc = Services(Settings(voicemail_dir=tmp_path / "vm", languages=("en", "it")), FakePrompts(),
                   JourneyLog(None), clock=lambda: NOW, voicemail=store)
    ch = FakeChannel.scripted(script, callerid="+12025550101", language=language)
    hook = on_record if on_record is not None else speaks()
    ch.on_record = lambda path: hook(ch, path)
    call, _ = await run(FLOW.format(params=params), svc=svc, channel=ch)
    return call, ch, store, kicks


def exists(path: object) -> bool:
    return Path(str(path)).exists()


def messages(store: VoicemailStore) -> list[dict[str, object]]:
    return [json.loads(p.read_text()) for p in sorted(store.area.kept_dir.glob("*.json"))]


async def test_message_is_stored_with_metadata_and_queued_for_the_webhook(tmp_path: Path) -> None:
    call, ch, store, kicks = await go(tmp_path, "3 #")
    assert visited(call) == ["menu", "leave", "bye"]
    assert prompts(ch) == ["main-menu", "voicemail-intro", "voicemail-saved", "goodbye"]
    [meta] = messages(store)
    assert meta["caller"] == "+12025550101" and meta["language"] == "en" and meta["reason"] == "caller"
    assert meta["time"] == NOW.isoformat() and meta["flow"] == "vm" and meta["call_id"] == "fake-0001"
    assert meta["notified_at"] is None and 1.4 <= float(meta["seconds"]) <= 1.6  # type: ignore[arg-type]
    audio = Path(str(meta["file"]))
    with wave.open(str(audio), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
    assert ch.recorded == [f"{tmp_path / 'vm'}/incoming/{meta['id']}"]
    assert not list((tmp_path / "vm" / "incoming").iterdir())  # the raw take is gone once normalised
    assert store.pending() == [meta["id"]] and kicks == [1]
    [event] = [e for e in call.journey if e.kind == "voicemail"]
    assert event.detail == {"saved": True, "id": meta["id"], "seconds": meta["seconds"], "reason": "caller"}
    assert call.outcome == "voicemail:caller"


def speaks_then_hangs_up(ch: FakeChannel, path: str) -> None:
    speaks()(ch, path)
    ch.script.todo.appendleft("h")  # the caller hangs up while recording


async def test_hanging_up_ends_the_message_and_keeps_it(tmp_path: Path) -> None:
    call, ch, store, _ = await go(tmp_path, "3", on_record=speaks_then_hangs_up)
    [meta] = messages(store)
    assert meta["reason"] == "caller" and exists(meta["file"])
    assert "voicemail-saved" not in prompts(ch)
    assert call.outcome == "voicemail:caller" and visited(call) == ["menu", "leave"]


async def test_silence_stores_nothing(tmp_path: Path) -> None:
    call, ch, store, kicks = await go(tmp_path, "3 #", on_record=lambda ch, path: None)
    assert messages(store) == [] and store.pending() == [] and kicks == []
    assert "voicemail-saved" not in prompts(ch) and visited(call)[-1] == "bye"
    assert call.outcome == "voicemail-empty:caller"


async def test_too_short_is_nothing_said(tmp_path: Path) -> None:
    _, _, store, _ = await go(tmp_path, "3 #", on_record=speaks(0.2))
    assert messages(store) == []


async def test_reason_and_language_from_the_flow(tmp_path: Path) -> None:
    _, _, store, _ = await go(tmp_path, "3 #", params=', reason: "after-{language}"', language="it")
    [meta] = messages(store)
    assert meta["reason"] == "after-it" and meta["language"] == "it"


async def test_undecodable_audio_is_kept_raw(tmp_path: Path) -> None:
    def garbage(ch: FakeChannel, path: str) -> None:
        Path(path + ".wav").write_bytes(b"RIFF" + b"\x00" * 200)

    call, _, store, _ = await go(tmp_path, "3 #", on_record=garbage)
    [meta] = messages(store)
    assert exists(meta["file"]) and "/incoming/" in str(meta["file"])
    assert store.pending() == [meta["id"]]


async def test_without_a_store_the_fallback_apologises(tmp_path: Path) -> None:
    svc = Services(Settings(), FakePrompts(), JourneyLog(None), clock=lambda: NOW)
    doc = FLOW.format(params="").replace("start: menu", "start: menu\nfallback: bye")
    call, ch = await run(doc, "3", svc=svc)
    assert [e.detail["error"] for e in call.journey if e.kind == "error"] == ["StoreUnavailable"]
    assert visited(call)[-1] == "bye" and ch.recorded == []


def journey_into(node: str, *events: tuple[str, str, dict[str, object]]) -> Call:
    call = Call("u", "f")
    for source, kind, detail in events:
        call.record(source, kind, **detail)
    return call


class _Ctx:
    def __init__(self, call: Call, node_id: str) -> None:
        self.call, self.node_id = call, node_id


def test_reason_comes_from_the_edge_that_led_here() -> None:
    cases = {
        "closed": [("hours", "edge", {"edge": "closed", "to": "vm"})],
        "holiday": [("hours", "edge", {"edge": "holiday", "to": "vm"})],
        "overflow": [("q", "route", {"action": "voicemail"}), ("q", "edge", {"edge": "voicemail", "to": "vm"})],
        "caller": [("q", "queue-announce", {"position": 2, "key": "2"}),
                   ("q", "edge", {"edge": "voicemail", "to": "vm"})],
        "no-agents": [("q", "edge", {"edge": "empty", "to": "vm"})],
        "direct": [],
    }
    for expected, events in cases.items():
        ctx = _Ctx(journey_into("vm", *events), "vm")
        assert infer_reason(ctx) == expected, expected  # type: ignore[arg-type]
    timeout = _Ctx(journey_into("vm", ("q", "edge", {"edge": "timeout", "to": "vm"})), "vm")
    assert infer_reason(timeout) == "overflow"  # type: ignore[arg-type]


def test_bad_settings_name_their_key() -> None:
    cases = {"voicemail_webhook_backoff": 0, "voicemail_max_seconds": 0, "announcements_ttl": 8 * 86400,
             "voicemail_webhook": "ftp://example.com/hook"}
    for key, value in cases.items():
        with pytest.raises(ConfigError, match=f"setting {key}"):
            load_settings(env={}, overrides={key: value})

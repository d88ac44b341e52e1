"""The ops line's record_announcement node: record, hear it back, then publish (the emergency switch turns
on with the take), record again, or discard; every take is kept as telephone audio with who and when."""

from __future__ import annotations

import json
import time
import wave
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ivr.call import Call
from ivr.config import Settings
from ivr.errors import StoreUnavailable
from ivr.flows.context import NodeContext
from ivr.flows.node import build_params
from ivr.journeys import JourneyLog
from ivr.nodes.recording import RecordAnnouncement
from ivr.ops.emergency import Announcement, normalise_prompt
from ivr.services import Services
from ivr.testing import FakeChannel, FakePrompts
from tests.flowkit import flowset, prompts

NOW = datetime(2026, 3, 10, 15, 30, tzinfo=UTC)
FLOW = """
flow: ops
start: record
nodes:
  record:
    type: record_announcement
    next: {published: bye, discarded: bye, timeout: bye, denied: bye, failed: bye}
  bye: {type: hangup}
"""


@dataclass
class FakeSwitch:
    """EmergencySwitch.set as the node uses it."""

    down: bool = False
    calls: list[dict[str, Any]] = field(default_factory=list)

    async def set(self, prompt: str, *, set_by: str, ttl: float, text: str | None = None,
                  recorded_by: str | None = None, recorded_at: float | None = None) -> Announcement:
        if self.down:
            raise StoreUnavailable("redis down")
        self.calls.append(dict(prompt=prompt, set_by=set_by, ttl=ttl, recorded_by=recorded_by,
                               recorded_at=recorded_at))
        now = time.time()
        return Announcement(normalise_prompt(prompt), set_by, now, now + ttl, text, recorded_by, recorded_at)


def voice(path: str) -> None:
    """What Asterisk writes when the ops person speaks: here 2 s at 16 kHz (normalised to 8 kHz)."""
    t = np.arange(32000) / 16000
    with wave.open(path + ".wav", "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((0.3 * np.sin(2 * np.pi * 300 * t) * 32767).astype("<i2").tobytes())


async def go(tmp_path: Path, script: str, *, tier: str = "ops", auth: str = "verified",
             switch: FakeSwitch | None = None, silent_takes: int = 0,
             ) -> tuple[str, Call, FakeChannel, FakeSwitch, Path]:
    folder = tmp_path / "ann"
    switch = switch or FakeSwitch()
    svc = Services(Settings(announcements_dir=folder, announcements_ttl=7200.0), FakePrompts(), JourneyLog(None),
                   clock=lambda: NOW, emergency=switch)  # type: ignore[arg-type]
    ch = FakeChannel.scripted(script)
    silent = [silent_takes]

    def record(path: str) -> None:
        if silent[0]:
            silent[0] -= 1
        else:
            voice(path)

    ch.on_record = record
    fs = flowset(FLOW)
    flow = fs.flows["ops"]
    call = Call("fake-0001", "ops", tier=tier, auth_level=auth, customer_id="9001", customer_name="Ops Desk")

    async def no_subflow(name: str) -> str:
        raise AssertionError(name)

    node = flow.nodes["record"].node
    edge = await node.run(NodeContext(call, ch, svc, fs, flow, "record", no_subflow))
    return edge, call, ch, switch, folder


def exists(path: str) -> bool:
    return Path(path).exists()


def takes(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


async def test_record_review_publish_for_four_hours(tmp_path: Path) -> None:
    edge, call, ch, switch, folder = await go(tmp_path, "1 2")
    assert edge == "published" and call.outcome == "announcement-published"
    assert prompts(ch)[:2] == ["ops-record", "ops-review"]
    [take] = takes(folder)
    assert ch.played[2] == take["asterisk"]  # heard back
    assert prompts(ch)[-1] == "ops-published"
    assert take["state"] == "published" and take["recorded_by"] == "ops:9001" and take["recorded_by_name"] == "Ops Desk"
    assert take["recorded_at"] == NOW.isoformat() and take["ttl"] == 4 * 3600 and take["seconds"] == 2.0
    with wave.open(take["file"], "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
    assert take["asterisk"] == f"{folder.resolve()}/{take['id']}"
    assert switch.calls == [dict(prompt=take["asterisk"], set_by="ops:9001", ttl=4 * 3600.0,
                                 recorded_by="ops:9001", recorded_at=NOW.timestamp())]
    assert not list((folder / "incoming").iterdir())


async def test_hash_or_silence_at_the_duration_uses_the_setting(tmp_path: Path) -> None:
    _, _, _, switch, _ = await go(tmp_path, "1 #")
    _, _, _, switch2, _ = await go(tmp_path / "b", "1 t")
    assert switch.calls[0]["ttl"] == 7200.0 and switch2.calls[0]["ttl"] == 7200.0


async def test_record_again_then_publish_the_second_take(tmp_path: Path) -> None:
    edge, call, ch, switch, folder = await go(tmp_path, "2 1 3")
    assert edge == "published"
    by_id = {t["id"]: t for t in takes(folder)}
    first, second = (by_id[path.rsplit("/", 1)[1]] for path in ch.recorded)  # in the order recorded
    assert first["state"] == "replaced" and not exists(first["file"])
    assert second["state"] == "published" and exists(second["file"])
    assert switch.calls[0]["prompt"] == second["asterisk"] and switch.calls[0]["ttl"] == 24 * 3600.0
    assert prompts(ch).count("ops-record") == 2 and len(ch.recorded) == 2


async def test_discard_deletes_the_audio_and_publishes_nothing(tmp_path: Path) -> None:
    edge, call, ch, switch, folder = await go(tmp_path, "3")
    assert edge == "discarded" and switch.calls == []
    [take] = takes(folder)
    assert take["state"] == "discarded" and take["recorded_by"] == "ops:9001" and not exists(take["file"])
    assert prompts(ch)[-1] == "ops-discarded"


async def test_a_key_during_the_playback_chooses(tmp_path: Path) -> None:
    edge, _, ch, _, _ = await go(tmp_path, "3")  # "3" arrives while the take plays back
    assert edge == "discarded" and "ops-review-menu" not in prompts(ch)


async def test_wrong_key_then_silence_abandons_the_take(tmp_path: Path) -> None:
    edge, call, ch, switch, folder = await go(tmp_path, "t 9 t t")
    assert edge == "timeout" and switch.calls == []
    assert "invalid" in prompts(ch)
    assert takes(folder)[0]["state"] == "abandoned"


async def test_nothing_heard_asks_again(tmp_path: Path) -> None:
    edge, _, ch, switch, folder = await go(tmp_path, "1 #", silent_takes=1)
    assert edge == "published" and prompts(ch)[:3] == ["ops-record", "ops-empty", "ops-record"]
    assert len(takes(folder)) == 1


async def test_only_verified_ops_accounts(tmp_path: Path) -> None:
    for tier, auth in (("standard", "verified"), ("vip", "verified"), ("ops", "identified")):
        edge, call, ch, switch, _ = await go(tmp_path, "1 1", tier=tier, auth=auth)
        assert edge == "denied" and ch.recorded == [] and switch.calls == []
        assert [e.detail["result"] for e in call.journey if e.kind == "announcement"] == ["denied"]


async def test_switch_down_fails_and_keeps_the_draft(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable):  # the engine takes the node's `failed` edge
        await go(tmp_path, "1 1", switch=FakeSwitch(down=True))
    [take] = takes(tmp_path / "ann")
    assert take["state"] == "draft" and exists(take["file"])


def test_bad_parameters_are_reported() -> None:
    _, found = build_params(RecordAnnouncement, {"durations": {"#": 1, "12": 2, "5": 9999}, "takes": 0})
    text = " ".join(m for _, m in found)
    assert "key '#'" in text and "key '12'" in text and "9999 hours" in text and "takes" in text

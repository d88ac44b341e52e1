"""The survey node: a keypad score (and an optional comment) stored as a JSON line with queue and agent."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from ivr.config import Settings
from ivr.journeys import JourneyLog
from ivr.services import Services
from ivr.testing import FakeChannel, FakePrompts
from tests.flowkit import prompts, run, visited

NOW = datetime(2025, 3, 10, 15, 30, tzinfo=UTC)
FLOW = """
flow: s
start: q
nodes:
  q: {{type: queue, queue: support, next: {{continue: survey}}}}
  survey: {{type: survey{params}, next: bye}}
  bye: {{type: hangup}}
"""


async def go(tmp_path: Path, script: str, params: str = "") -> tuple[list[dict[str, object]], FakeChannel]:
    store = tmp_path / "surveys.jsonl"
    svc = Services(Settings(survey_store=store), FakePrompts(), JourneyLog(None),
                   clock=lambda: NOW)
    ch = FakeChannel.scripted(script)
    ch.queue_status = "CONTINUE"
    ch.vars.update(MEMBERNAME="Agent 2", MEMBERINTERFACE="PJSIP/agent2")
    call, _ = await run(FLOW.format(params=params), svc=svc, channel=ch)
    assert visited(call) == ["q", "survey", "bye"]
    assert ch.apps[0] == ("Queue", ("support", "c", "", "", ""))
    lines = store.read_text().splitlines() if store.exists() else []
    return [json.loads(line) for line in lines], ch


async def test_score_is_stored_with_queue_and_agent(tmp_path: Path) -> None:
    [entry], ch = await go(tmp_path, "4")
    assert entry == {"time": NOW.isoformat(), "call_id": "fake-0001", "flow": "s", "queue": "support",
                     "agent": "Agent 2", "agent_interface": "PJSIP/agent2", "score": 4, "comment": None}
    assert prompts(ch)[-3:] == ["survey-intro", "survey-thanks", "goodbye"]


async def test_invalid_key_then_a_score(tmp_path: Path) -> None:
    [entry], ch = await go(tmp_path, "9 5")
    assert entry["score"] == 5 and "invalid" in prompts(ch)


async def test_no_score_stores_nothing(tmp_path: Path) -> None:
    entries, _ = await go(tmp_path, "t t")
    assert entries == []


async def test_spoken_comment_is_recorded(tmp_path: Path) -> None:
    [entry], ch = await go(tmp_path, "3", params=", comment: true")
    assert str(entry["comment"]).endswith("/survey-fake-0001")
    assert "survey-comment" in prompts(ch)

"""The `hours` and `announcement` nodes on a FakeChannel: schedule edges, call variables, the emergency switch."""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ivr.call import Call
from ivr.config import Settings
from ivr.errors import IvrError
from ivr.flows.engine import Engine
from ivr.flows.registry import check_all
from ivr.journeys import JourneyLog
from ivr.nodes import NODE_TYPES
from ivr.nodes.hours import clock_time, spoken_when
from ivr.ops.emergency import Announcement
from ivr.ops.emergency_admin import TEXT_ONLY
from ivr.ops.schedule import load_schedules
from ivr.services import Services
from ivr.testing import FakeChannel, FakePrompts
from tests.flowkit import flowset, prompts, visited

ROOT = Path(__file__).resolve().parents[2]
ROME = ZoneInfo("Europe/Rome")
SCHEDULES, _ = load_schedules(ROOT / "dialplans" / "schedules.yaml")  # the demo: office, Europe/Rome, IT


def rome(*args: int) -> datetime:
    return datetime(*args, tzinfo=ROME)  # type: ignore[misc]


class FixedSwitch:
    """Stands in for EmergencySwitch: `active()` is all nodes use."""

    def __init__(self, ann: Announcement | None) -> None:
        self.ann = ann

    def active(self) -> Announcement | None:
        return self.ann


def announcement(prompt: str = "emergency-closure", text: str | None = None) -> Announcement:
    now = time.time()
    return Announcement(prompt, "ops@example", now, now + 600, text)


EDGE_NODES = {
    "open": "  open: {type: say, prompt: main-menu, next: bye}",
    "closed": "  closed: {type: say, prompt: [hours-closed, hours-next-open], next: bye}",
    "holiday": "  holiday: {type: say, prompt: [hours-holiday, hours-next-open], next: bye}",
    "emergency": "  emergency: {type: announcement, next: closed}",
}
ALL_EDGES = "open: open, closed: closed, holiday: holiday, emergency: emergency"


def hours_flow(edges: str = ALL_EDGES, language: str | None = "en") -> str:
    """A flow: (language →) hours → one node per wired edge → hang up."""
    wired = [pair.split(":")[0].strip() for pair in edges.split(",")]
    start = "lang" if language else "hours"
    lines = [f"flow: f\nstart: {start}\nnodes:"]
    if language:
        lines.append(f"  lang: {{type: language, language: {language}, next: hours}}")
    lines += ["  hours:", "    type: hours", "    schedule: office", f"    next: {{{edges}}}"]
    lines += [EDGE_NODES[e] for e in wired] + ["  bye: {type: hangup}"]
    return "\n".join(lines) + "\n"


async def run(when: datetime, *, edges: str = ALL_EDGES, language: str = "en", ann: Announcement | None = None,
              doc: str | None = None) -> tuple[Call, FakeChannel]:
    text = doc or hours_flow(edges, language)
    fs = dataclasses.replace(flowset(text), schedules=SCHEDULES)
    svc = Services(Settings(), FakePrompts(), JourneyLog(None), emergency=FixedSwitch(ann),  # type: ignore[arg-type]
                   clock=lambda: when)
    channel = FakeChannel.scripted("")
    call = await Engine(svc, lambda: fs).handle(channel, "f")
    return call, channel


def hours_event(call: Call) -> dict[str, object]:
    [event] = [e.detail for e in call.journey if e.kind == "hours"]
    return event


async def test_open_on_a_weekday_morning() -> None:
    call, ch = await run(rome(2026, 12, 2, 10, 0))  # a Wednesday
    assert visited(call) == ["lang", "hours", "open", "bye"]
    assert call.vars["hours_state"] == "open" and call.vars["closes_at"] == "today at 8 in the evening"
    assert call.vars["next_open"] == "" and call.vars["holiday_name"] == ""
    assert hours_event(call)["edge"] == "open"


async def test_christmas_day_is_a_holiday_with_its_name_and_the_next_opening() -> None:
    call, ch = await run(rome(2026, 12, 25, 9, 0))  # a Friday, 09:00: inside weekly hours
    assert visited(call) == ["lang", "hours", "holiday", "bye"]
    assert prompts(ch) == ["hours-holiday", "hours-next-open", "goodbye"]
    assert call.vars["holiday_name"] == "Christmas Day"
    assert call.vars["next_open"] == "on Monday at 8 in the morning"  # 26 Dec is a holiday too, then Sunday
    assert call.vars["next_open_epoch"] == str(int(rome(2026, 12, 28, 8, 0).timestamp()))
    event = hours_event(call)
    assert event["state"] == "holiday" and event["holiday"] == "Christmas Day"
    assert event["next_open"] == "2026-12-28T08:00:00+01:00"


async def test_the_holiday_in_the_callers_language() -> None:
    call, _ = await run(rome(2026, 12, 25, 9, 0), language="it")
    assert call.vars["holiday_name"] == "Natale" and call.vars["next_open"] == "lunedì alle 8"


async def test_no_holiday_edge_means_closed() -> None:
    call, _ = await run(rome(2026, 12, 25, 9, 0), edges="open: open, closed: closed")
    assert visited(call) == ["lang", "hours", "closed", "bye"]
    assert call.vars["hours_state"] == "holiday"  # the prompt can still say why
    assert hours_event(call)["edge"] == "closed"


async def test_after_hours_is_closed_until_tomorrow() -> None:
    call, ch = await run(rome(2026, 12, 2, 20, 0))  # closes at 20:00 (end excluded)
    assert visited(call) == ["lang", "hours", "closed", "bye"]
    assert prompts(ch)[:2] == ["hours-closed", "hours-next-open"]
    assert call.vars["next_open"] == "tomorrow at 8 in the morning"


async def test_recurring_and_dated_exceptions() -> None:
    call, _ = await run(rome(2026, 12, 24, 14, 0))  # Christmas Eve closes at 13:00
    assert visited(call)[2] == "closed" and call.vars["next_open"] == "on Monday at 8 in the morning"
    call, _ = await run(rome(2027, 4, 30, 10, 0))  # Company day
    assert visited(call)[2] == "closed" and "Company day" in str(hours_event(call)["reason"])


async def test_weekend_next_opening_across_the_dst_change() -> None:
    # Rome leaves summer time on Sunday 25 October 2026: Monday 08:00 is 07:00 UTC, not 06:00
    call, _ = await run(rome(2026, 10, 24, 14, 0))
    assert call.vars["next_open"] == "on Monday at 8 in the morning"
    assert datetime.fromtimestamp(int(call.vars["next_open_epoch"]), UTC) == datetime(2026, 10, 26, 7, 0, tzinfo=UTC)
    # ... and enters it on Sunday 28 March 2027, Easter: Easter Monday is a holiday, Tuesday 08:00 is 06:00 UTC
    call, _ = await run(rome(2027, 3, 27, 14, 0))
    assert call.vars["next_open"] == "on Tuesday at 8 in the morning"
    assert datetime.fromtimestamp(int(call.vars["next_open_epoch"]), UTC) == datetime(2027, 3, 30, 6, 0, tzinfo=UTC)


async def test_an_emergency_takes_the_emergency_edge() -> None:
    call, ch = await run(rome(2026, 12, 2, 10, 0), ann=announcement())
    assert visited(call) == ["lang", "hours", "emergency", "closed", "bye"]
    assert call.vars["hours_state"] == "emergency"
    assert prompts(ch)[0] == "emergency-closure"
    [em] = [e.detail for e in call.journey if e.kind == "emergency"]
    assert em == {"prompt": "emergency-closure", "set_by": "ops@example"}


async def test_without_an_emergency_edge_the_announcement_plays_then_the_schedule_decides() -> None:
    call, ch = await run(rome(2026, 12, 2, 10, 0), edges="open: open, closed: closed", ann=announcement(),
                         language="it")
    assert visited(call) == ["lang", "hours", "open", "bye"]
    assert ch.played[:2] == ["prompts/it/emergency-closure", "prompts/it/main-menu"]
    assert call.vars["hours_state"] == "open"


ANNOUNCE = """
flow: f
start: a
nodes:
  a: {{type: announcement, next: {next}}}
  menu: {{type: say, prompt: main-menu, next: bye}}
  bye: {{type: hangup}}
"""
QUIET = "  quiet: {type: say, prompt: welcome, next: bye}\n"


async def test_announcement_node_text_recording_and_none() -> None:
    when = rome(2026, 12, 2, 10, 0)
    call, ch = await run(when, doc=ANNOUNCE.format(next="menu"),
                         ann=announcement(TEXT_ONLY, "Storm {warning}: offices closed."))
    assert ch.played[0] == "tts/en/Storm {warning}: offices closed."  # an admin's braces are spoken as written
    call, ch = await run(when, doc=ANNOUNCE.format(next="menu"),
                         ann=announcement("/var/spool/asterisk/recording/em-1"))
    assert ch.played[0] == "/var/spool/asterisk/recording/em-1"
    call, ch = await run(when, doc=ANNOUNCE.format(next="{next: menu, none: quiet}") + QUIET)
    assert visited(call) == ["a", "quiet", "bye"]
    call, ch = await run(when, doc=ANNOUNCE.format(next="menu"))
    assert visited(call) == ["a", "menu", "bye"] and not [e for e in call.journey if e.kind == "emergency"]


async def test_without_redis_there_is_no_announcement() -> None:
    fs = dataclasses.replace(flowset(hours_flow(language=None)), schedules=SCHEDULES)
    svc = Services(Settings(), FakePrompts(), JourneyLog(None), clock=lambda: rome(2026, 12, 2, 10, 0))
    call = await Engine(svc, lambda: fs).handle(FakeChannel.scripted(""), "f")
    assert visited(call) == ["hours", "open", "bye"]


def test_check_names_an_unknown_schedule_at_its_line(tmp_path: Path) -> None:
    flows = tmp_path / "dialplans"
    flows.mkdir()
    shutil.copytree(ROOT / "prompts", tmp_path / "prompts")
    shutil.copy(ROOT / "dialplans" / "schedules.yaml", flows)
    (flows / "f.yaml").write_text(hours_flow().replace("schedule: office", "schedule: ofice"))
    _, _, found = check_all(Settings(flows_dir=flows, prompts_dir=tmp_path / "prompts"), NODE_TYPES)
    errors = [str(d) for d in found if d.severity == "error"]
    assert errors == [f"{flows / 'f.yaml'}:5: error: node 'hours': schedule 'ofice' is not in schedules.yaml "
                      "(known: office)"]
    (flows / "f.yaml").write_text(hours_flow("open: open"))
    _, _, found = check_all(Settings(flows_dir=flows, prompts_dir=tmp_path / "prompts"), NODE_TYPES)
    assert any("needs 'closed'" in str(d) for d in found)


def test_times_in_the_callers_language() -> None:
    now = rome(2026, 12, 2, 21, 0)  # Wednesday evening
    assert [clock_time(rome(2026, 1, 1, h, m), "en") for h, m in ((8, 0), (13, 30), (0, 0), (12, 0), (0, 15))] == [
        "8 in the morning", "1:30 in the afternoon", "midnight", "noon", "12:15 in the morning"]
    assert [clock_time(rome(2026, 1, 1, h, m), "it") for h, m in ((8, 0), (13, 30), (1, 0), (0, 0))] == [
        "alle 8", "alle 13 e 30", "all'una", "a mezzanotte"]
    assert spoken_when(rome(2026, 12, 3, 8, 0), now, "it") == "domani alle 8"
    assert spoken_when(rome(2026, 12, 14, 9, 30), now, "en") == "on Monday 14 December at 9:30 in the morning"
    assert spoken_when(rome(2026, 12, 14, 9, 30), now, "it") == "lunedì 14 dicembre alle 9 e 30"
    assert spoken_when(rome(2026, 12, 3, 8, 0), now, "es") == "tomorrow at 8 in the morning"  # no words: English


class TtsFailed(IvrError):
    pass


class BrokenTts(FakePrompts):
    async def resolve_text(self, text: str, language: str, variables: Mapping[str, str]) -> Any:
        raise TtsFailed("espeak-ng is gone")


async def test_an_announcement_that_cannot_be_rendered_does_not_stop_the_call() -> None:
    fs = dataclasses.replace(flowset(hours_flow("open: open, closed: closed")), schedules=SCHEDULES)
    svc = Services(Settings(), BrokenTts(), JourneyLog(None),
                   emergency=FixedSwitch(announcement(TEXT_ONLY, "Closed.")),  # type: ignore[arg-type]
                   clock=lambda: rome(2026, 12, 2, 10, 0))
    call = await Engine(svc, lambda: fs).handle(FakeChannel.scripted(""), "f")
    assert visited(call) == ["lang", "hours", "open", "bye"]
    assert [e.detail["what"] for e in call.journey if e.kind == "error"] == ["emergency announcement"]

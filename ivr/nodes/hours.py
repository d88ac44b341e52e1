"""`hours`: branch on a schedule from `dialplans/schedules.yaml` at the call's time (services.clock).

Edges: `open`, `closed` (required); `holiday` (else `closed`); `emergency` (taken while an emergency
announcement is on; when not wired, the announcement is played here and the schedule decides).
Call variables for prompts: `{hours_state}` (open, closed, holiday, emergency), `{holiday_name}`
(in the caller's language when the holidays library has it), `{next_open}` ("tomorrow at 8 in the morning" /
"domani alle 8"), `{next_open_epoch}` (for `say_data` date/time), `{closes_at}` (when open).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import holidays as holidays_lib

from ivr.errors import IvrError
from ivr.flows.node import Node, node_type
from ivr.nodes.announcement import active_announcement, play_announcement
from ivr.ops.schedule import Schedule, ScheduleState

if TYPE_CHECKING:
    from ivr.flows.context import NodeContext

SCHEDULE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
HOURS_VARS = ("hours_state", "holiday_name", "next_open", "next_open_epoch", "closes_at")


class ScheduleMissing(IvrError):
    """The flow names a schedule that is not loaded (ivr check reports it before it can happen)."""


@node_type("hours")
@dataclass(frozen=True)
class Hours(Node):
    """Branches on `schedule`'s state now; see the module docstring for edges and variables."""

    schedule: str
    """a schedule name in schedules.yaml"""

    edges = ("open", "closed")
    optional_edges = ("holiday", "emergency")

    def problems(self) -> list[str]:
        if not SCHEDULE_NAME.match(self.schedule):
            return [f"schedule name {self.schedule!r} must be letters, digits, '-' or '_'"]
        return []

    def check_refs(self, flows: Any) -> list[str]:
        known = getattr(flows, "schedules", {})
        if self.schedule in known:
            return []
        names = ", ".join(sorted(known)) or "none: add dialplans/schedules.yaml"
        return [f"schedule {self.schedule!r} is not in schedules.yaml (known: {names})"]

    async def run(self, ctx: NodeContext) -> str:
        schedule = ctx.flows.schedules.get(self.schedule)
        if not isinstance(schedule, Schedule):
            raise ScheduleMissing(f"schedule {self.schedule!r} is not loaded")
        now = ctx.services.clock()
        state = schedule.state_at(now)
        set_hours_vars(ctx, schedule, state, now)
        wired = ctx.flow.nodes[ctx.node_id].edges if ctx.node_id in ctx.flow.nodes else {}
        ann = active_announcement(ctx)
        if ann is not None and "emergency" in wired:
            ctx.call.vars["hours_state"] = "emergency"
            _record(ctx, schedule, state, "emergency")
            return "emergency"
        if ann is not None:
            await play_announcement(ctx, ann)
        edge = state.state if state.state in wired else "closed"
        _record(ctx, schedule, state, edge)
        return edge


def _record(ctx: NodeContext, schedule: Schedule, state: ScheduleState, edge: str) -> None:
    ctx.call.record(ctx.node_id, "hours", schedule=schedule.name, state=state.state, edge=edge,
                    reason=state.reason, holiday=state.holiday_name,
                    next_open=state.next_open.isoformat() if state.next_open else None)


def set_hours_vars(ctx: NodeContext, schedule: Schedule, state: ScheduleState, now: datetime) -> None:
    lang = ctx.language
    local_now = now.astimezone(schedule.tz)
    name = state.holiday_name or ""
    if name:
        name = holiday_name(schedule, local_now.date(), lang) or name
    ctx.call.vars.update({
        "hours_state": state.state,
        "holiday_name": name,
        "next_open": spoken_when(state.next_open, local_now, lang) if state.next_open else "",
        "next_open_epoch": str(int(state.next_open.timestamp())) if state.next_open else "",
        "closes_at": spoken_when(state.closes_at, local_now, lang) if state.closes_at else "",
    })


# --- holiday names in the caller's language --------------------------------------------------------

def holiday_name(schedule: Schedule, day: date, language: str) -> str | None:
    """The holiday's name from the holidays library in `language` (None: not available)."""
    base = schedule.holidays
    country = getattr(base, "country", None)
    supported: tuple[str, ...] = tuple(getattr(base, "supported_languages", ()) or ())
    pick = next((code for code in supported if code == language or code.startswith(f"{language}_")), None)
    if country is None or pick is None:
        return None
    localised = _localised(str(country), getattr(base, "subdiv", None), pick)
    found = localised.get(day) if localised is not None else None
    return str(found) if found else None


@functools.lru_cache(maxsize=64)
def _localised(country: str, subdiv: str | None, language: str) -> Any:
    try:
        return holidays_lib.country_holidays(country, subdiv=subdiv, language=language)
    except (NotImplementedError, KeyError, ValueError):
        return None


# --- times said in the caller's language -----------------------------------------------------------

_WORDS: dict[str, dict[str, Any]] = {
    "en": {"days": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
           "months": ("January", "February", "March", "April", "May", "June", "July", "August",
                      "September", "October", "November", "December"),
           "today": "today at {t}", "tomorrow": "tomorrow at {t}", "week": "on {day} at {t}",
           "date": "on {day} {d} {month} at {t}"},
    "it": {"days": ("lunedì", "martedì", "mercoledì", "giovedì", "venerdì", "sabato", "domenica"),
           "months": ("gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto",
                      "settembre", "ottobre", "novembre", "dicembre"),
           "today": "oggi {t}", "tomorrow": "domani {t}", "week": "{day} {t}", "date": "{day} {d} {month} {t}"},
}


def clock_time(when: datetime, language: str) -> str:
    """`8 in the morning`, `1:30 in the afternoon`, `noon` / `alle 8`, `all'una e 30`, `alle 14 e 15`."""
    h, m = when.hour, when.minute
    if language == "it":
        hour = "all'una" if h == 1 else "a mezzanotte" if h == 0 and not m else f"alle {h}"
        return hour if not m else f"{hour} e {m}"
    if (h, m) == (0, 0):
        return "midnight"
    if (h, m) == (12, 0):
        return "noon"
    part = "in the morning" if h < 12 else "in the afternoon" if h < 17 else "in the evening"
    return f"{h % 12 or 12}{f':{m:02d}' if m else ''} {part}"


def spoken_when(when: datetime, now: datetime, language: str) -> str:
    """When `when` is, relative to `now` (both in the schedule's zone), in the caller's language."""
    lang = language if language in _WORDS else "en"
    words = _WORDS[lang]
    when = when.astimezone(now.tzinfo)
    t = clock_time(when, lang)
    days = (when.date() - now.date()).days
    day = words["days"][when.weekday()]
    if days == 0:
        return str(words["today"]).format(t=t)
    if days == 1:
        return str(words["tomorrow"]).format(t=t)
    if days < 7:
        return str(words["week"]).format(day=day, t=t)
    return str(words["date"]).format(day=day, d=when.day, month=words["months"][when.month - 1], t=t)

"""Opening hours per time zone: weekly hours, holidays, dated and recurring exceptions, iCal closures."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_lib
import icalendar

from ivr.diagnostics import Diagnostic, brief
from ivr.errors import FlowError
from ivr.flows.yamlsrc import LineDict, LineList, load_yaml

State = Literal["open", "closed", "holiday", "emergency"]
Hours = tuple[tuple[int, int], ...]  # local wall-clock [start, end) in minutes after midnight; end <= 1440
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS = re.compile(r"^(\d\d):(\d\d)-(\d\d):(\d\d)$")
LOOKAHEAD_DAYS = 400  # next_open looks this far ahead


@dataclass(frozen=True)
class DayRule:
    """Hours of one date (empty = closed all day) and why."""

    hours: Hours
    reason: str = ""


@dataclass(frozen=True)
class ScheduleState:
    """What the schedule says at one instant; `next_open` is set when not open, `closes_at` when open."""

    state: State
    reason: str
    holiday_name: str | None = None
    next_open: datetime | None = None
    closes_at: datetime | None = None


@dataclass
class Schedule:
    """Pure: `state_at` needs no I/O. Precedence: emergency > holiday/closure > open hours."""

    name: str
    tz: ZoneInfo
    weekly: dict[int, Hours] = field(default_factory=dict)  # 0 = Monday
    exceptions: dict[date, DayRule] = field(default_factory=dict)
    recurring: dict[tuple[int, int], DayRule] = field(default_factory=dict)  # (month, day)
    holidays: Mapping[date, str] | None = None
    closed_days: dict[date, str] = field(default_factory=dict)  # all-day closures (iCal)
    closures: list[tuple[datetime, datetime, str]] = field(default_factory=list)  # timed closures

    def day(self, d: date) -> tuple[str, str, str | None, Hours]:
        """(kind, reason, holiday name, hours) of a local date; kind: holiday|closed|special|regular."""
        name = self.holidays.get(d) if self.holidays is not None else None
        if name:
            return "holiday", f"holiday: {name}", str(name), ()
        if d in self.closed_days:
            return "closed", f"closure: {self.closed_days[d]}", None, ()
        rule = self.exceptions.get(d) or self.recurring.get((d.month, d.day))
        if rule is None:
            return "regular", "open hours", None, self.weekly.get(d.weekday(), ())
        if not rule.hours:
            return "closed", f"closure: {rule.reason or d.isoformat()}", None, ()
        return "special", rule.reason or "special hours", None, rule.hours

    def instant(self, d: date, minute: int) -> datetime:
        """The instant a local wall time is reached: earlier one if repeated, the jump if skipped."""
        if minute >= 1440:
            d, minute = d + timedelta(days=1), minute - 1440
        naive = datetime.combine(d, time(minute // 60, minute % 60))
        first = naive.replace(tzinfo=self.tz)
        if first.astimezone(UTC).astimezone(self.tz).replace(tzinfo=None) == naive:
            return first.astimezone(self.tz)
        lo = int(naive.replace(tzinfo=self.tz, fold=1).timestamp())  # before the gap
        hi = int(first.timestamp())  # after it
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if datetime.fromtimestamp(mid, self.tz).replace(tzinfo=None) >= naive:
                hi = mid
            else:
                lo = mid
        return datetime.fromtimestamp(hi, self.tz)

    def open_spans(self, d: date) -> list[tuple[datetime, datetime]]:
        """Open spans (absolute, aware) of a local date, timed closures cut out."""
        spans = [(self.instant(d, s), self.instant(d, e)) for s, e in self.day(d)[3]]
        for c_start, c_end, _ in self.closures:
            spans = [part for s, e in spans for part in _cut(s, e, c_start, c_end)]
        return spans

    def state_at(self, when: datetime, emergency_active: bool = False) -> ScheduleState:
        if when.tzinfo is None:
            raise ValueError("state_at needs an aware datetime")
        if emergency_active:
            return ScheduleState("emergency", "emergency announcement active")
        d = when.astimezone(self.tz).date()
        kind, reason, holiday, _ = self.day(d)
        for start, end in self.open_spans(d):
            if start <= when < end:
                return ScheduleState("open", reason, closes_at=self._closes_at(end))
        nxt = self.next_open(when)
        if kind == "holiday":
            return ScheduleState("holiday", reason, holiday, nxt)
        timed = next((r for s, e, r in self.closures if s <= when < e), None)
        if timed is not None:
            return ScheduleState("closed", f"closure: {timed}", None, nxt)
        return ScheduleState("closed", reason if kind == "closed" else "outside opening hours", None, nxt)

    def next_open(self, when: datetime) -> datetime | None:
        """Start of the first open span after `when` (within LOOKAHEAD_DAYS), in the schedule's zone."""
        d = when.astimezone(self.tz).date()
        for i in range(LOOKAHEAD_DAYS):
            for start, _ in self.open_spans(d + timedelta(days=i)):
                if start > when:
                    return start
        return None

    def _closes_at(self, end: datetime) -> datetime:
        for _ in range(14):  # spans that touch (e.g. 00:00-24:00 every day) merge
            nxt = [e for s, e in self.open_spans(end.astimezone(self.tz).date()) if s == end]
            if not nxt:
                break
            end = nxt[0]
        return end


def _cut(s: datetime, e: datetime, cs: datetime, ce: datetime) -> list[tuple[datetime, datetime]]:
    if ce <= s or cs >= e:
        return [(s, e)]
    return [p for p in ((s, cs), (ce, e)) if p[0] < p[1]]


# --- loading ---------------------------------------------------------------------------------------

def load_schedules(path: str | Path, text: str | None = None) -> tuple[dict[str, Schedule], list[Diagnostic]]:
    """Read a `schedules:` mapping (from `text` if given); problems are `file:line` Diagnostics
    (an error drops its schedule)."""
    file = str(path)
    try:
        doc = load_yaml(Path(path).read_text(encoding="utf-8") if text is None else text, file)
    except FlowError as exc:
        return {}, [Diagnostic(exc.file, exc.line, exc.reason)]
    except (OSError, ValueError) as exc:  # ValueError: a YAML date like 2026-13-01
        return {}, [Diagnostic(file, 1, f"cannot read: {exc}")]
    raw = doc.get("schedules") if isinstance(doc, LineDict) else None
    if not isinstance(raw, LineDict):
        return {}, [Diagnostic(file, getattr(doc, "line", 1), "expected a `schedules:` mapping")]
    found: list[Diagnostic] = []
    out: dict[str, Schedule] = {}
    for name, body in raw.items():
        before = len(found)
        ctx = _Ctx(str(name), file, found)
        sched = _schedule(ctx, body, raw.line_of(name), Path(path).parent)
        if sched is not None and not any(f.severity == "error" for f in found[before:]):
            out[str(name)] = sched
    return out, found


@dataclass
class _Ctx:
    name: str
    file: str
    found: list[Diagnostic]

    def err(self, at: int, msg: str, severity: Literal["error", "warning"] = "error") -> None:
        self.found.append(Diagnostic(self.file, at, f"schedule {brief(self.name)}: {msg}", severity))


def _schedule(ctx: _Ctx, body: Any, line: int, base: Path) -> Schedule | None:
    if not isinstance(body, LineDict):
        ctx.err(line, "expected a mapping")
        return None
    for key in set(body) - {"timezone", "weekly", "holidays", "exceptions", "recurring", "ical"}:
        ctx.err(body.line_of(key), f"unknown key {brief(key)}")
    try:
        sched = Schedule(ctx.name, ZoneInfo(str(body.get("timezone", ""))))
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a directory (America), too long
        ctx.err(body.line_of("timezone"), f"unknown or missing timezone {brief(body.get('timezone'))}")
        return None
    weekly = body.get("weekly", LineDict())
    if not isinstance(weekly, LineDict):
        ctx.err(body.line_of("weekly"), "weekly: expected a mapping like `mon-fri: ['08:00-18:00']`")
    for key, spec in weekly.items() if isinstance(weekly, LineDict) else ():
        days, hours = _days(str(key)), _hours(spec)
        if days is None or hours is None:
            ctx.err(weekly.line_of(key), f"weekly {brief(key)}: days like mon or mon-fri, hours like 08:00-18:00")
        else:
            sched.weekly.update(dict.fromkeys(days, hours))
    spec = body.get("holidays")
    try:
        if spec is not None:
            spec = {"country": spec} if isinstance(spec, str) else spec
            sched.holidays = holidays_lib.country_holidays(
                str(spec["country"]), subdiv=spec.get("subdiv"), language=spec.get("language"))
    except (KeyError, TypeError, AttributeError, NotImplementedError) as exc:
        ctx.err(body.line_of("holidays"), f"holidays: {exc} (use {{country: IT, subdiv: .., language: ..}})")
    for key, target in (("exceptions", sched.exceptions), ("recurring", sched.recurring)):
        items = body.get(key, [])
        if not isinstance(items, list):
            ctx.err(body.line_of(key), f"{key}: expected a list")
        for i, item in enumerate(items if isinstance(items, list) else []):
            at = items.item_lines[i] if isinstance(items, LineList) else body.line_of(key)
            item = item if isinstance(item, LineDict) else LineDict()
            when, hours = _date(item.get("date"), key == "recurring"), _hours(item.get("hours", []))
            if when is None or hours is None or bool(hours) == bool(item.get("closed")):
                ctx.err(at, f"{key}: needs `date` ({'MM-DD' if key == 'recurring' else 'YYYY-MM-DD'}) "
                        "and `hours: [...]` or `closed: true`")
                continue
            target[when] = DayRule(hours, str(item.get("reason", "")))  # type: ignore[index]
            if isinstance(when, date) and hours and sched.holidays is not None and when in sched.holidays:
                ctx.err(at, f"{when} is a holiday: the holiday wins over these hours", "warning")
    icals = body.get("ical", [])
    for ics in icals if isinstance(icals, list) else [icals]:
        try:
            _ical(ctx, sched, (base / str(ics)).read_bytes(), body.line_of("ical"))
        except (OSError, ValueError) as exc:
            ctx.err(body.line_of("ical"), f"iCalendar {ics}: {exc}")
    return sched


def _ical(ctx: _Ctx, sched: Schedule, data: bytes, line: int) -> None:
    for ev in icalendar.Calendar.from_ical(data).walk("VEVENT"):
        summary = str(ev.get("SUMMARY", "calendar closure"))
        if ev.get("RRULE"):
            ctx.err(line, f"iCalendar {brief(summary)}: RRULE not expanded, first occurrence only", "warning")
        start = ev.decoded("DTSTART")
        length = ev.decoded("DURATION", timedelta(days=0 if isinstance(start, datetime) else 1))
        end = ev.decoded("DTEND") if "DTEND" in ev else start + length
        if not isinstance(start, datetime):  # all-day: [start, end) dates
            sched.closed_days.update(dict.fromkeys(
                (start + timedelta(days=i) for i in range(max(1, (end - start).days))), summary))
            continue
        start, end = (t if t.tzinfo else t.replace(tzinfo=sched.tz) for t in (start, end))
        sched.closures.append((start, end, summary))
    sched.closures.sort()


def _days(key: str) -> list[int] | None:
    a, _, b = key.lower().partition("-")
    if key == "daily" or a not in DAYS or (b and b not in DAYS):
        return list(range(7)) if key == "daily" else None
    i, j = DAYS.index(a), DAYS.index(b or a)
    return list(range(i, j + 1)) if i <= j else [*range(i, 7), *range(0, j + 1)]


def _hours(spec: Any) -> Hours | None:
    out = []
    for item in [] if spec in ("closed", None) else spec if isinstance(spec, list) else [spec]:
        m = _HOURS.match(str(item).strip())
        h1, m1, h2, m2 = (int(g) for g in m.groups()) if m else (99, 0, 0, 0)
        if h1 > 23 or m1 > 59 or m2 > 59 or not h1 * 60 + m1 < h2 * 60 + m2 <= 1440:
            return None
        out.append((h1 * 60 + m1, h2 * 60 + m2))
    return tuple(sorted(out))


def _date(value: Any, recurring: bool) -> date | tuple[int, int] | None:
    try:
        if recurring:
            month, day = (int(p) for p in str(value).split("-"))
            return date(2000, month, day) and (month, day)  # 2000 is a leap year: 02-29 is allowed
        return value if isinstance(value, date) else date.fromisoformat(str(value))
    except (TypeError, ValueError, OverflowError):  # OverflowError: month 99999999999999999999
        return None

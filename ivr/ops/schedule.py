"""Opening hours per time zone: weekly hours, holidays, dated and recurring exceptions, iCal closures."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_lib
import icalendar
from pydantic import AfterValidator, BeforeValidator, PlainValidator

from ivr.diagnostics import Diagnostic, brief
from ivr.errors import FlowError
from ivr.validation import Checked, at_key, describe, line_of, validate
from ivr.yamlsrc import LineDict, load_yaml

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


# --- the file format (schedules.yaml) ----------------------------------------------------------------


def _parse_hours(spec: Any) -> Hours:
    hours = _hours(spec)
    if hours is None:
        raise ValueError(f"hours like 08:00-18:00 (or closed), got {spec!r}")
    return hours


def _parse_days(key: str) -> str:
    if _days(key) is None:
        raise ValueError("days like mon, mon-fri or daily")
    return key


def _timezone(name: Any) -> str:
    try:
        ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a directory of zones (America), too long
        raise ValueError(f"unknown timezone {brief(name)}") from None
    return str(name)


def _holidays(spec: Any) -> Mapping[date, str] | None:
    """`IT` or `{country: IT, subdiv: .., language: ..}` → the holidays library's calendar."""
    if spec is None:
        return None
    spec = {"country": spec} if isinstance(spec, str) else spec
    try:
        return holidays_lib.country_holidays(str(spec["country"]), subdiv=spec.get("subdiv"),
                                             language=spec.get("language"))
    except (KeyError, TypeError, AttributeError, NotImplementedError) as exc:
        raise ValueError(f"{exc} (use {{country: IT, subdiv: .., language: ..}})") from None


def _iso_date(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"expected YYYY-MM-DD, got {value!r}") from None
    return value


def _month_day(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return date.fromisoformat(f"2000-{value}")  # a leap year: 02-29 is a date
        except ValueError:
            raise ValueError(f"expected MM-DD, got {value!r}") from None
    return value


HoursSpec = Annotated[Hours, BeforeValidator(_parse_hours)]


@dataclass(frozen=True)
class DatedHours(Checked):
    """An `exceptions:` item: one date's hours, or `closed: true`."""

    date: Annotated[date, BeforeValidator(_iso_date)]
    hours: HoursSpec = ()
    closed: bool = False
    reason: str = ""

    def problems(self) -> list[str]:
        return [] if bool(self.hours) != self.closed else ["needs `hours: [...]` or `closed: true` (one of them)"]


@dataclass(frozen=True)
class RecurringHours(DatedHours):
    """A `recurring:` item: the same for a month and day (MM-DD) every year."""

    date: Annotated[date, BeforeValidator(_month_day)]


@dataclass(frozen=True)
class ScheduleSpec(Checked):
    """One entry of `schedules.yaml`."""

    timezone: Annotated[str, BeforeValidator(_timezone)]
    weekly: Mapping[Annotated[str, AfterValidator(_parse_days)], HoursSpec] = field(default_factory=dict)
    holidays: Annotated[Any, PlainValidator(_holidays)] = None
    exceptions: tuple[DatedHours, ...] = ()
    recurring: tuple[RecurringHours, ...] = ()
    ical: str | tuple[str, ...] = ()


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
        ctx = _Ctx(str(name), file, found)
        if not isinstance(body, LineDict):
            ctx.err(raw.line_of(name), "expected a mapping")
            continue
        spec, problems = validate(ScheduleSpec, body)
        for p in map(at_key, problems):
            ctx.err(line_of(body, p.loc, body.line), describe(p))
        if spec is not None:
            before = len(found)
            sched = _compile(ctx, spec, body, Path(path).parent)
            if not any(f.severity == "error" for f in found[before:]):
                out[str(name)] = sched
    return out, found


@dataclass
class _Ctx:
    name: str
    file: str
    found: list[Diagnostic]

    def err(self, at: int, msg: str, severity: Literal["error", "warning"] = "error") -> None:
        self.found.append(Diagnostic(self.file, at, f"schedule {brief(self.name)}: {msg}", severity))


def _compile(ctx: _Ctx, spec: ScheduleSpec, body: LineDict, base: Path) -> Schedule:
    sched = Schedule(ctx.name, ZoneInfo(spec.timezone), holidays=spec.holidays)
    for key, hours in spec.weekly.items():
        sched.weekly.update(dict.fromkeys(_days(key) or (), hours))
    for kind, days in (("exceptions", spec.exceptions), ("recurring", spec.recurring)):
        for i, day in enumerate(days):
            when = day.date if kind == "exceptions" else (day.date.month, day.date.day)
            target: dict[Any, DayRule] = sched.exceptions if kind == "exceptions" else sched.recurring
            target[when] = DayRule(day.hours, day.reason)
            if isinstance(when, date) and day.hours and sched.holidays is not None and when in sched.holidays:
                ctx.err(line_of(body, (kind, i), body.line), f"{when} is a holiday: the holiday wins over these hours",
                        "warning")
    for ics in (spec.ical,) if isinstance(spec.ical, str) else spec.ical:
        try:
            _ical(ctx, sched, (base / ics).read_bytes(), body.line_of("ical"))
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

"""Schedules: weekly hours, holidays, exceptions, recurring dates, iCal closures, DST, diagnostics."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ivr.ops.schedule import Schedule, load_schedules

ROME = ZoneInfo("Europe/Rome")
NY = ZoneInfo("America/New_York")

YAML = """\
schedules:
  support:
    timezone: Europe/Rome
    weekly:
      mon-fri: ["08:30-13:00", "14:00-18:00"]
      sat: "09:00-12:30"
      sun: closed
    holidays: {country: IT, subdiv: RM}
    exceptions:
      - {date: 2026-08-14, closed: true, reason: Summer bridge}
      - {date: 2026-12-07, hours: ["10:00-12:00"], reason: Inventory}
    recurring:
      - {date: 12-24, hours: ["08:30-13:00"], reason: Christmas Eve}
      - {date: 12-31, closed: true, reason: New Year's Eve}
    ical: closures.ics
  night-rome:
    timezone: Europe/Rome
    weekly: {daily: "01:00-04:00"}
  us:
    timezone: America/New_York
    weekly: {daily: ["09:00-17:00"]}
    holidays: {country: US, subdiv: NY}
"""

ICS = """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
BEGIN:VEVENT
UID:a
DTSTART;VALUE=DATE:20261102
DTEND;VALUE=DATE:20261104
SUMMARY:Office move
END:VEVENT
BEGIN:VEVENT
UID:b
DTSTART;TZID=Europe/Rome:20261110T150000
DTEND;TZID=Europe/Rome:20261110T160000
SUMMARY:All-hands meeting
END:VEVENT
BEGIN:VEVENT
UID:c
DTSTART:20261111T090000
DURATION:PT1H
SUMMARY:Floating training
END:VEVENT
END:VCALENDAR
"""


@pytest.fixture(scope="module")
def schedules(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Schedule]:
    d = tmp_path_factory.mktemp("sched")
    (d / "closures.ics").write_text(ICS.replace("\n", "\r\n"))
    (d / "schedules.yaml").write_text(YAML)
    found, diags = load_schedules(d / "schedules.yaml")
    assert diags == []
    return found


def rome(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=ROME)


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=UTC)


def test_christmas_morning_is_a_holiday(schedules: dict[str, Schedule]) -> None:
    st = schedules["support"].state_at(rome(2026, 12, 25, 9, 0))
    assert st.state == "holiday"
    assert st.holiday_name == "Christmas Day"
    # 26 Dec is St Stephen's Day, 27 Dec a Sunday: next open Monday morning
    assert st.next_open == rome(2026, 12, 28, 8, 30)


def test_regional_holiday_and_weekly_hours(schedules: dict[str, Schedule]) -> None:
    s = schedules["support"]
    assert s.state_at(rome(2026, 6, 29, 10, 0)).state == "holiday"  # Saints Peter and Paul, Rome only
    open_ = s.state_at(rome(2026, 6, 30, 10, 0))
    assert (open_.state, open_.closes_at) == ("open", rome(2026, 6, 30, 13, 0))
    lunch = s.state_at(rome(2026, 6, 30, 13, 0))
    assert (lunch.state, lunch.reason, lunch.next_open) == ("closed", "outside opening hours",
                                                            rome(2026, 6, 30, 14, 0))
    sunday = s.state_at(rome(2026, 7, 4, 12, 30))  # Saturday 12:30: just closed, next Monday
    assert sunday.next_open == rome(2026, 7, 6, 8, 30)


def test_dated_and_recurring_exceptions(schedules: dict[str, Schedule]) -> None:
    s = schedules["support"]
    bridge = s.state_at(rome(2026, 8, 14, 10, 0))
    assert (bridge.state, bridge.reason) == ("closed", "closure: Summer bridge")
    assert s.state_at(rome(2026, 12, 7, 9, 0)).next_open == rome(2026, 12, 7, 10, 0)
    assert s.state_at(rome(2026, 12, 7, 11, 0)).reason == "Inventory"
    eve = s.state_at(rome(2027, 12, 24, 12, 0))  # a Friday: recurring every year
    assert (eve.state, eve.closes_at) == ("open", rome(2027, 12, 24, 13, 0))
    assert s.state_at(rome(2027, 12, 24, 14, 0)).state == "closed"
    assert s.state_at(rome(2026, 12, 31, 10, 0)).reason == "closure: New Year's Eve"


def test_ical_closures(schedules: dict[str, Schedule]) -> None:
    s = schedules["support"]
    for day in (2, 3):
        st = s.state_at(rome(2026, 11, day, 10, 0))
        assert (st.state, st.reason) == ("closed", "closure: Office move")
    assert s.state_at(rome(2026, 11, 4, 10, 0)).state == "open"  # DTEND is exclusive
    meeting = s.state_at(rome(2026, 11, 10, 15, 30))
    assert (meeting.state, meeting.reason) == ("closed", "closure: All-hands meeting")
    assert meeting.next_open == rome(2026, 11, 10, 16, 0)
    assert s.state_at(rome(2026, 11, 10, 14, 30)).closes_at == rome(2026, 11, 10, 15, 0)
    assert s.state_at(rome(2026, 11, 11, 9, 30)).state == "closed"  # floating time = schedule's zone


def test_emergency_wins_over_everything(schedules: dict[str, Schedule]) -> None:
    st = schedules["support"].state_at(rome(2026, 6, 30, 10, 0), emergency_active=True)
    assert (st.state, st.next_open) == ("emergency", None)
    assert schedules["support"].state_at(rome(2026, 12, 25, 9, 0), True).state == "emergency"


def test_rome_spring_forward(schedules: dict[str, Schedule]) -> None:
    s = schedules["night-rome"]  # 01:00-04:00 local; 29 Mar 2026 02:00 CET -> 03:00 CEST
    assert s.state_at(utc(2026, 3, 28, 23, 59)).state == "closed"
    assert s.state_at(utc(2026, 3, 29, 0, 0)).state == "open"  # 01:00 CET
    st = s.state_at(utc(2026, 3, 29, 1, 30))  # 03:30 CEST
    assert st.state == "open" and st.closes_at == utc(2026, 3, 29, 2, 0)  # a 2-hour night
    assert s.state_at(utc(2026, 3, 29, 2, 0)).state == "closed"


def test_rome_fall_back(schedules: dict[str, Schedule]) -> None:
    s = schedules["night-rome"]  # 25 Oct 2026 03:00 CEST -> 02:00 CET
    st = s.state_at(utc(2026, 10, 24, 23, 0))  # 01:00 CEST
    assert st.state == "open" and st.closes_at == utc(2026, 10, 25, 3, 0)  # a 4-hour night
    assert s.state_at(utc(2026, 10, 25, 0, 30)).state == "open"  # 02:30 CEST
    assert s.state_at(utc(2026, 10, 25, 1, 30)).state == "open"  # 02:30 CET, the second time
    assert s.state_at(utc(2026, 10, 25, 3, 0)).state == "closed"


def test_wall_times_in_a_gap_or_repeated() -> None:
    s = Schedule("edge", ROME, weekly=dict.fromkeys(range(7), ((150, 300),)))  # 02:30-05:00
    # 02:30 does not exist on 29 Mar: it opens when the clock jumps (03:00 CEST = 01:00Z)
    assert s.next_open(utc(2026, 3, 28, 23, 0)) == utc(2026, 3, 29, 1, 0)
    s = Schedule("edge", NY, weekly=dict.fromkeys(range(7), ((0, 90),)))  # 00:00-01:30
    assert s.state_at(utc(2026, 11, 1, 5, 15)).state == "open"  # 01:15 EDT
    assert s.state_at(utc(2026, 11, 1, 6, 15)).state == "closed"  # 01:15 EST: closed at the first 01:30


def test_new_york_dst_days(schedules: dict[str, Schedule]) -> None:
    s = schedules["us"]
    assert s.state_at(utc(2026, 3, 7, 13, 59)).next_open == utc(2026, 3, 7, 14, 0)  # 09:00 EST
    assert s.state_at(utc(2026, 3, 8, 12, 0)).next_open == utc(2026, 3, 8, 13, 0)  # 09:00 EDT
    assert s.state_at(utc(2026, 3, 8, 13, 0)).closes_at == utc(2026, 3, 8, 21, 0)  # 17:00 EDT
    evening = s.state_at(datetime(2026, 10, 31, 18, 0, tzinfo=NY))
    assert evening.next_open == utc(2026, 11, 1, 14, 0)  # 09:00 EST, the day the clocks go back
    assert evening.next_open.utcoffset() == datetime(2026, 11, 1, 12, tzinfo=NY).utcoffset()
    assert s.state_at(utc(2026, 11, 26, 15, 0)).holiday_name == "Thanksgiving Day"


def test_merged_spans_and_never_open() -> None:
    always = Schedule("24x7", ROME, weekly=dict.fromkeys(range(7), ((0, 1440),)))
    assert always.state_at(rome(2026, 5, 1, 12, 0)).closes_at is not None  # merged up to the look-ahead
    never = Schedule("never", ROME)
    st = never.state_at(rome(2026, 5, 1, 12, 0))
    assert (st.state, st.next_open) == ("closed", None)
    with pytest.raises(ValueError):
        always.state_at(datetime(2026, 5, 1, 12, 0))


def test_diagnostics_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent("""\
        schedules:
          a:
            timezone: Mars/Olympus
          b:
            timezone: Europe/Rome
            weekly:
              mon-fry: ["08:00-18:00"]
              tue: ["18:00-08:00"]
              wed: 18:00
            exceptions:
              - {date: "2026-13-01", closed: true}
              - {date: 2026-12-25, hours: ["09:00-12:00"]}
            holidays: {country: XX}
            colour: blue
          c:
            timezone: Europe/Rome
            exceptions:
              - {date: 2026-12-25, hours: ["09:00-12:00"]}
            holidays: IT
        """))
    found, diags = load_schedules(path)
    lines = {(d.line, d.severity) for d in diags}
    assert {(3, "error"), (7, "error"), (8, "error"), (9, "error"), (11, "error"), (13, "error"),
            (14, "error")} <= lines
    assert (18, "warning") in lines  # special hours on a holiday: the holiday wins
    assert list(found) == ["c"]
    assert all(str(d).startswith(f"{path}:") for d in diags)
    assert found["c"].state_at(rome(2026, 12, 25, 10, 0)).state == "holiday"


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    assert load_schedules(tmp_path / "missing.yaml")[1][0].message.startswith("cannot read")
    (tmp_path / "x.yaml").write_text("schedules: [1, 2]\n")
    assert "schedules" in load_schedules(tmp_path / "x.yaml")[1][0].message
    (tmp_path / "y.yaml").write_text("schedules:\n  a: {timezone: UTC\n")
    assert load_schedules(tmp_path / "y.yaml")[1][0].line >= 2

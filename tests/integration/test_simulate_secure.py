"""The simulator shows every key a caller presses, except those keyed into secure input."""

from __future__ import annotations

from pathlib import Path

from ivr.simulate import simulate
from tests.appkit import project_copy, settings_for

FLOW = """
flow: pins
start: account
nodes:
  account: {type: gather, prompt: enter-account, var: account, max_digits: 4, next: pin}
  pin: {type: gather, prompt: enter-pin, var: pin, secure: true, max_digits: 8, next: bye}
  bye: {type: say, prompt: goodbye, next: done}
  done: {type: return}
"""


async def test_simulating_a_pin_prompt_masks_the_keys(tmp_path: Path) -> None:
    flows, _ = project_copy(tmp_path, anytime=True)
    (flows / "pins.yaml").write_text(FLOW)
    lines: list[str] = []
    _, journey = await simulate(settings_for(tmp_path), "pins", "1 0 0 3 8 0 4 1 7 2 6 9", echo=lines.append)
    keys = [line.strip() for line in lines if "⌨" in line]
    assert keys == ["⌨ 1 (barge-in)", "⌨ 0", "⌨ 0", "⌨ 3", "⌨ • (barge-in)"] + ["⌨ •"] * 7, keys
    assert not any(d in "".join(keys[4:]) for d in "0123456789")
    assert journey["outcome"] == "hangup" and "80417269" not in str(journey)


async def test_simulate_at_a_chosen_time_follows_the_opening_hours(tmp_path: Path) -> None:
    from ivr.simulate import parse_at

    project_copy(tmp_path)  # the demo's real schedule: Mon-Fri 08-20, Sat 09-13 (Rome)
    said = {}
    for when in ("2026-12-07 10:00 Europe/Rome", "2026-12-06 10:00 Europe/Rome"):  # a Monday, a Sunday
        _, journey = await simulate(settings_for(tmp_path), "main", "1", at=parse_at(when), echo=None)
        said[when] = [e["node"] for e in journey["journey"] if e["kind"] == "enter"]
    assert "main_menu" in said["2026-12-07 10:00 Europe/Rome"]
    assert "closed" in said["2026-12-06 10:00 Europe/Rome"]
    assert "main_menu" not in said["2026-12-06 10:00 Europe/Rome"]
    assert parse_at("2026-12-07T10:00+01:00").utcoffset() is not None
    for bad in ("tomorrow", "2026-12-07 10:00 Mars/Olympus"):
        try:
            parse_at(bad)
        except ValueError as exc:
            assert bad.split()[-1] in str(exc)
        else:
            raise AssertionError(bad)

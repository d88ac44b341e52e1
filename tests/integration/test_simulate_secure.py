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

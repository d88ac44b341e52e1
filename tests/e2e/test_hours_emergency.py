"""Opening hours and the emergency announcement on real Asterisk, with SIPp callers.

The service's clock is injected (the schedule is Europe/Rome, the demo `office`), so a call can happen
"on 25 December at 09:00". What the caller heard is read twice: the journey (prompt names) and
Asterisk's own log ("Playing '<file>'"), mapped back to the words the service rendered into that file.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp

from lab import AsteriskInstance, Pause, WaitHangup, run_call
from tests.appkit import project_copy
from tests.e2e.servicekit import Service, running_service, said, visited

ROME = ZoneInfo("Europe/Rome")
ITALIAN_CALLER = "+390255501234"
TOKEN = "e2e-admin-token"
FLOW = f"""
flow: main
start: who
nodes:
  who:
    type: branch
    cases: [{{if: 'caller_id == "{ITALIAN_CALLER}"', goto: italiano}}]
    else: hours
  italiano: {{type: language, language: it, next: hours}}
  hours:
    type: hours
    schedule: office
    next: {{open: open, closed: closed, holiday: holiday}}
  open: {{type: say, prompt: welcome, next: bye}}
  closed: {{type: say, prompt: [hours-closed, hours-next-open], next: bye}}
  holiday: {{type: say, prompt: [hours-holiday, hours-next-open], next: bye}}
  bye: {{type: hangup}}
"""
STEPS = [Pause(1000), WaitHangup(60_000)]  # the caller listens; the service hangs up


def project(tmp: Path) -> None:
    flows, _ = project_copy(tmp)
    (flows / "main.yaml").write_text(FLOW)


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=ROME)  # type: ignore[misc]


async def heard_words(asterisk: AsteriskInstance, svc: Service, since: int) -> list[str]:
    """What Asterisk played since the log mark, as the words the service rendered (files it made)."""
    log = ""
    for _ in range(20):  # the log is written asynchronously
        log = asterisk.log_text(since=since, tail=5000)
        if "Playing '" in log:
            break
        await asyncio.sleep(0.1)
    stems = [path.rsplit(".", 1)[0] for path in re.findall(r"Playing '([^']+)'", log)]
    return [svc.app.prompts.describe(stem) or stem for stem in stems]


async def call(asterisk: AsteriskInstance, svc: Service, n: int, caller_id: str = "+12025550199"
               ) -> tuple[dict[str, object], list[str]]:
    mark = asterisk.log_mark()
    result = await run_call(asterisk.sip_port, STEPS, caller_id=caller_id, time_limit=90)
    assert result.ok, result.describe()
    journey = (await svc.journey_count(n))[-1]
    return journey, await heard_words(asterisk, svc, mark)


async def test_christmas_day_callers_hear_the_holiday_in_their_language(
        asterisk: AsteriskInstance, tmp_path: Path) -> None:
    project(tmp_path)
    async with running_service(asterisk, tmp_path) as svc:
        svc.app.services.clock = lambda: at(2026, 12, 25, 9, 0)  # a Friday morning: open hours, but Christmas
        journey, words = await call(asterisk, svc, 1)
        assert visited(journey) == ["who", "hours", "holiday", "bye"]
        assert said(journey) == ["hours-holiday", "hours-next-open", "goodbye"]
        assert "Our offices are closed today for Christmas Day." in " ".join(words)
        assert "We will be open again on Monday at 8 in the morning." in words  # 26 Dec is a holiday too
        journey, words = await call(asterisk, svc, 2, caller_id=ITALIAN_CALLER)
        assert said(journey) == ["hours-holiday", "hours-next-open", "goodbye"]
        assert "Oggi i nostri uffici sono chiusi per Natale." in " ".join(words)
        assert "Riapriremo lunedì alle 8." in words
    [event] = [e for e in journey["journey"] if e["kind"] == "hours"]  # type: ignore[index, union-attr]
    assert event["state"] == "holiday" and event["next_open"] == "2026-12-28T08:00:00+01:00"


async def test_after_hours_callers_take_the_closed_path(asterisk: AsteriskInstance, tmp_path: Path) -> None:
    project(tmp_path)
    async with running_service(asterisk, tmp_path) as svc:
        svc.app.services.clock = lambda: at(2026, 12, 2, 21, 30)  # Wednesday evening, after 20:00
        journey, words = await call(asterisk, svc, 1)
    assert visited(journey) == ["who", "hours", "closed", "bye"]
    assert said(journey) == ["hours-closed", "hours-next-open", "goodbye"]
    assert "We will be open again tomorrow at 8 in the morning." in words
    assert journey["outcome"] == "hangup"


def ivr_emergency(*args: str, cwd: Path, redis_url: str) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("IVR_")}, "IVR_REDIS_URL": redis_url}
    return subprocess.run([sys.executable, "-m", "ivr.cli", "emergency", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


async def test_an_emergency_switched_on_between_two_calls_is_heard_by_the_second(
        asterisk: AsteriskInstance, tmp_path: Path, redis_url: str) -> None:
    project(tmp_path)
    async with running_service(asterisk, tmp_path, redis_url=redis_url, http_token=TOKEN) as svc:
        svc.app.services.clock = lambda: at(2026, 12, 2, 10, 0)  # open
        first, _ = await call(asterisk, svc, 1)
        assert said(first) == ["welcome", "goodbye"]
        done = await asyncio.to_thread(ivr_emergency, "on", "--prompt", "emergency-closure", "--minutes", "10",
                                       "--by", "duty-manager", cwd=tmp_path, redis_url=redis_url)
        assert done.returncode == 0, done.stderr
        await svc.wait_for("the service to see the switch", lambda: svc.app.services.emergency is not None
                           and svc.app.services.emergency.active() is not None, 5)
        second, words = await call(asterisk, svc, 2)
        assert said(second) == ["emergency-closure", "welcome", "goodbye"]
        assert visited(second) == ["who", "hours", "open", "bye"]  # then the schedule decides, as usual
        assert words[0].startswith("Important: due to an emergency, our offices are closed today.")
        [event] = [e for e in second["journey"] if e["kind"] == "emergency"]  # type: ignore[index, union-attr]
        assert event["set_by"] == "duty-manager"
        async with aiohttp.ClientSession(f"http://127.0.0.1:{svc.app.http_port}") as http, http.delete(
                "/emergency", json={"by": "duty-manager"}, headers={"Authorization": f"Bearer {TOKEN}"}) as r:
            assert r.status == 200 and (await r.json())["active"] is False
        await svc.wait_for("the switch off", lambda: svc.app.services.emergency is not None
                           and svc.app.services.emergency.active() is None, 5)
        third, _ = await call(asterisk, svc, 3)
        assert said(third) == ["welcome", "goodbye"]

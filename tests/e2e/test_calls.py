"""The demo line on real Asterisk: SIPp callers press keys; the real service runs the calls.

What each call did is read from the service's journey and from the AMI events its own AMI client
received (QueueCallerJoin proves the caller really reached the queue in Asterisk).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from lab import AsteriskInstance, Dtmf, Hangup, Pause, WaitHangup, run_call
from tests.e2e.servicekit import running_service, said, visited


async def test_language_and_menu_reach_the_right_queue(asterisk: AsteriskInstance, tmp_path: Path) -> None:
    async with running_service(asterisk, tmp_path) as svc:
        steps = [Pause(2500), Dtmf("2"), Pause(3000), Dtmf("0"), Pause(7000), Hangup()]
        result = await run_call(asterisk.sip_port, steps, time_limit=40)
        assert result.ok, result.describe()
        [journey] = await svc.journey_count(1)
        joins = svc.named("QueueCallerJoin")
    assert journey["language"] == "it" and journey["outcome"] == "queue:support-it"
    assert visited(journey) == ["identify", "choose_language", "italiano", "hours", "main_menu", "agent", "support_it"]
    assert [j["Queue"] for j in joins] == ["support-it"]
    assert said(journey) == ["welcome", "speech-use-keypad", "main-menu", "transfer-agent"]


async def test_invalid_key_then_timeouts_then_fallback(asterisk: AsteriskInstance, tmp_path: Path) -> None:
    async with running_service(asterisk, tmp_path) as svc:
        # English; a wrong key in the main menu; then silence until the menu gives up (2 timeouts)
        steps = [Pause(2500), Dtmf("1"), Pause(3000), Dtmf("7"), Pause(45_000), Hangup()]
        call = asyncio.create_task(run_call(asterisk.sip_port, steps, time_limit=80))
        await svc.wait_for("the caller in the support queue", lambda: bool(svc.named("QueueCallerJoin")), 70)
        await asterisk.acli(f"channel request hangup {svc.named('QueueCallerJoin')[0]['Channel']}")
        await call
        [journey] = await svc.journey_count(1)
    inputs = [e.get("via") for e in journey["journey"] if e["kind"] == "input" and e["node"] == "main_menu"]
    assert inputs == ["dtmf", "timeout", "timeout"]
    heard = said(journey)
    assert heard[heard.index("invalid") - 1:] == ["main-menu", "invalid", "main-menu", "no-input", "main-menu",
                                                 "transfer-agent"]
    assert journey["outcome"] == "queue:support"
    assert svc.named("QueueCallerJoin")[0]["Queue"] == "support"


async def test_caller_hangs_up_mid_prompt(asterisk: AsteriskInstance, tmp_path: Path) -> None:
    async with running_service(asterisk, tmp_path) as svc:
        result = await run_call(asterisk.sip_port, [Pause(2500), Dtmf("1"), Pause(1500), Hangup()], time_limit=30)
        assert result.ok, result.describe()
        [journey] = await svc.journey_count(1)
        await svc.wait_for("no live AGI session", lambda: not svc.app.agi.calls, 5)
        assert not svc.app.journeys.live
        channels = await asterisk.acli("core show channels count")
    assert journey["outcome"] == "caller-hangup"
    assert journey["journey"][-2]["node"] == "main_menu"  # it was in the menu prompt when the caller left
    assert "0 active channels" in channels, channels


async def test_twenty_simultaneous_calls_all_complete(asterisk: AsteriskInstance, tmp_path: Path) -> None:
    async with running_service(asterisk, tmp_path) as svc:
        numbers = [f"+1555010{i:04d}" for i in range(20)]
        steps = [Pause(2500), Dtmf("1"), Pause(3000), Dtmf("0"), Pause(6000), Hangup()]
        result = await run_call(asterisk.sip_port, steps, caller_id=numbers, calls=20, time_limit=90)
        assert result.ok, result.describe()
        journeys = await svc.journey_count(20, limit=30)
    assert sorted(j["caller_id"] for j in journeys) == sorted(numbers)
    assert {j["outcome"] for j in journeys} == {"queue:support"}
    assert len([e for e in svc.named("QueueCallerJoin") if e["Queue"] == "support"]) == 20


async def test_flow_edited_during_a_call(asterisk: AsteriskInstance, tmp_path: Path) -> None:
    async with running_service(asterisk, tmp_path, reload_watch=True) as svc:
        flow = tmp_path / "dialplans" / "main.yaml"
        first = asyncio.create_task(run_call(
            asterisk.sip_port, [Pause(2500), Dtmf("1"), Pause(5000), Dtmf("0"), Pause(6000), Hangup()],
            caller_id="+15550001111", time_limit=40))
        await asyncio.sleep(3.5)   # the first caller is in the main menu now
        flow.write_text(flow.read_text().replace("    queue: support\n", "    queue: orders\n"))
        await svc.wait_for("the reload", lambda: svc.app.registry.reloads >= 2, 10)
        second = await run_call(asterisk.sip_port, [Pause(2500), Dtmf("1"), Pause(3000), Dtmf("0"), Pause(6000),
                                                    Hangup()], caller_id="+15550002222", time_limit=40)
        assert (await first).ok and second.ok
        journeys = {j["caller_id"]: j for j in await svc.journey_count(2)}
    assert journeys["+15550001111"]["outcome"] == "queue:support"   # finished on the flow it started with
    assert journeys["+15550002222"]["outcome"] == "queue:orders"    # the next call hears the change
    assert {e["Queue"] for e in svc.named("QueueCallerJoin")} == {"support", "orders"}


async def test_service_stopping_hands_live_calls_to_the_dialplan(asterisk: AsteriskInstance, tmp_path: Path) -> None:
    async with running_service(asterisk, tmp_path, drain_seconds=1.0) as svc:
        call = asyncio.create_task(run_call(asterisk.sip_port, [Pause(2500), Dtmf("1"), WaitHangup(40_000)],
                                            caller_id="+15550003333", time_limit=60))
        await svc.wait_for("the caller in the main menu", lambda: any(
            e.kind == "enter" and e.node == "main_menu" for c in svc.app.journeys.live.values() for e in c.journey))
        await svc.app.stop()   # SIGTERM does this: drain for 1 s, then hand the call back
        events = svc.events
    # the service is gone: its AMI client no longer listens, so ask Asterisk directly
    shown = ""
    for _ in range(50):
        shown = await asterisk.acli("queue show support")
        if "+15550003333" in shown or "Callers: 1" in shown or "1 caller" in shown:
            break
        await asyncio.sleep(0.2)
    assert "caller" in shown and "No callers" not in shown, shown
    channel = next(line.split()[1] for line in shown.splitlines() if "PJSIP/" in line and "wait" in line)
    assert "IVR_STATUS=handoff" in await asterisk.acli(f"core show channel {channel}")
    await asterisk.acli(f"channel request hangup {channel}")
    await call
    assert events is not None

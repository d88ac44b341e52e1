"""AGI sessions on real Asterisk: a call past the session cap reaches the dialplan's queue while the live one is
unharmed; a cancelled EXEC AudioSocket (recognition failed) leaves the session in step with Asterisk."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from ivr.speech.service import SpeechService
from ivr.testing import FailingRecognizer
from lab import AsteriskInstance, Dtmf, Hangup, Pause, Speak, WaitHangup, espeak_wav, run_call
from tests.appkit import project_copy
from tests.e2e.servicekit import running_service, visited

TO_SUPPORT = [Pause(2500), Dtmf("1"), Pause(3000), Dtmf("0"), Pause(6000), Hangup()]  # English, agent


async def test_a_call_past_the_cap_reaches_the_queue_and_the_live_call_goes_on(
        asterisk: AsteriskInstance, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "ivr.agi")
    async with running_service(asterisk, tmp_path, agi_max_sessions=1) as svc:
        first = asyncio.create_task(run_call(asterisk.sip_port, TO_SUPPORT, caller_id="+15550000001",
                                             time_limit=40))
        await svc.wait_for("the first call in the service", lambda: len(svc.app.agi.calls) == 1, 15)
        second = asyncio.create_task(run_call(asterisk.sip_port, [WaitHangup(30_000)], caller_id="+15550000002",
                                              time_limit=40))

        def joined(number: str) -> list[dict[str, str]]:
            return [e for e in svc.named("QueueCallerJoin") if e.get("CallerIDNum") == number]

        await svc.wait_for("the refused call in the queue", lambda: bool(joined("+15550000002")), 20)
        [join] = joined("+15550000002")
        shown = await asterisk.acli(f"core show channel {join['Channel']}")
        assert join["Queue"] == "support"
        assert "AGISTATUS=FAILURE" in shown and "IVR_FALLBACK=1" in shown, shown  # the dialplan's fallback
        assert len(svc.app.agi.calls) == 1 and svc.app.agi.refused == 1
        await asterisk.acli(f"channel request hangup {join['Channel']}")
        assert (await second).ok
        result = await first
        assert result.ok, result.describe()
        [journey] = await svc.journey_count(1)
    assert journey["outcome"] == "queue:support" and journey["caller_id"] == "+15550000001"
    assert visited(journey)[-3:] == ["main_menu", "agent", "support"]
    assert len(joined("+15550000001")) == 1  # the first caller reached the queue through the service
    assert [r.getMessage() for r in caplog.records if "refused" in r.getMessage()] == [
        f"[{join['Uniqueid']}] AGI call refused: 1 sessions live (agi_max_sessions); the dialplan takes it"]


LISTEN_THEN_QUEUE = """
flow: main
start: menu
nodes:
  menu:
    type: menu
    prompt: {text: "Say balance, or agent."}
    options: {"1": balance, "0": agent}
    say: {"1": [balance], "0": [agent]}
    fallback: agent
    next: {invalid: agent, timeout: agent}
  balance: {type: hangup}
  agent:
    type: queue
    queue: support
    timeout: 3
    next: {timeout: nobody}
  nobody: {type: hangup, prompt: {text: "Nobody is free. Goodbye."}}
"""


def agi_trace(log: str) -> list[str]:
    """`agi set debug on` output → ["Rx <command>", "Tx <reply>", ...] (the environment block and HANGUP
    notices left out)."""
    out: list[str] = []
    for line in log.splitlines():
        if "AGI Rx << " in line:
            out.append("Rx " + line.split("AGI Rx << ", 1)[1])
        elif "AGI Tx >> " in line:
            text = line.split("AGI Tx >> ", 1)[1]
            if out and not text.startswith("agi_") and text.strip() and text != "HANGUP":
                out.append("Tx " + text)
    return out


async def test_recognition_failing_mid_listen_leaves_the_session_in_step(
        asterisk: AsteriskInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """listen.py cancels the in-flight EXEC AudioSocket; the flow goes on to the queue, whose QUEUESTATUS
    (TIMEOUT after 3 s without agents) is read from its own reply: before, GET VARIABLE read the Queue reply."""
    caplog.set_level(logging.INFO, "ivr.agi")

    async def dead(self: SpeechService, language: str) -> FailingRecognizer:
        return FailingRecognizer()

    monkeypatch.setattr(SpeechService, "recognizer_for", dead)
    flows, _ = project_copy(tmp_path, anytime=True)
    (flows / "main.yaml").write_text(LISTEN_THEN_QUEUE)
    hello = espeak_wav("hello there", tmp_path / "hello.wav", pad_seconds=1.0)
    mark = asterisk.log_mark()
    await asterisk.acli("agi set debug on")  # Asterisk logs every AGI line it reads and writes
    try:
        async with running_service(asterisk, tmp_path, extra={"speech": {"mode": "stream"}}) as svc:
            result = await run_call(asterisk.sip_port, [Pause(1500), Speak(hello, via="rtp_stream"),
                                                        WaitHangup(30_000)], time_limit=45)
            assert result.ok, result.describe()
            [journey] = await svc.journey_count(1, limit=20)
            joins = svc.named("QueueCallerJoin")
    finally:
        await asterisk.acli("agi set debug off")
    trace = agi_trace(asterisk.log_path().read_bytes()[mark:].decode(errors="replace"))
    # Asterisk answered every command before it read the next one. Before, the service sent EXEC Queue while
    # the queue's prompt was playing (it had taken the AudioSocket reply for the prompt's): Asterisk cut the
    # prompt short without a reply (res_agi: a new command on the socket stops STREAM FILE) and the caller
    # never heard it.
    cut = [(cmd, after) for (cmd, after) in zip(trace, trace[1:], strict=False)
           if cmd.startswith("Rx") and not after.startswith("Tx")]
    assert cut == [], trace
    streams = [i for i, line in enumerate(trace) if line.startswith("Rx STREAM FILE")]
    assert streams and all("endpos=" in trace[i + 1] for i in streams), trace  # each prompt played to its end
    assert visited(journey) == ["menu", "agent", "nobody"], journey
    assert [e["status"] for e in journey["journey"] if e["kind"] == "queue-result"] == ["TIMEOUT"], journey
    assert [j["Queue"] for j in joins] == ["support"]
    assert journey["outcome"] == "queue:support", journey
    assert sum("dropped the late reply (200) to the cancelled EXEC AudioSocket" in r.getMessage()
               for r in caplog.records) == 1

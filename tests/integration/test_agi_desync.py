"""AGI sessions against abuse and accidents, over TCP with the real service: a cancelled EXEC AudioSocket, an
over-long reply line, a peer that never answers, more calls than the cap."""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path
from typing import Any

import pytest

from ivr.agi.audiosocket_codec import HANGUP_FRAME, encode_audio, encode_uuid
from ivr.speech.service import SpeechService
from ivr.testing import FailingRecognizer, FakeAsterisk, _split
from tests.appkit import project_copy, running

DESYNC_FLOW = """
flow: desync
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
  nobody: {type: hangup}
"""


class SequentialAsterisk(FakeAsterisk):
    """FakeAsterisk that runs EXEC AudioSocket as Asterisk does: it connects back to the service's AudioSocket
    server, sends audio until the service ends the stream, and only then answers the command and reads the next."""

    async def call(self, host: str, port: int, script_name: str, limit: float = 30.0) -> Any:
        reader, writer = await asyncio.open_connection(host, port)
        env = {**self.env, "network_script": script_name, "request": f"agi://{host}:{port}/{script_name}"}
        writer.write("".join(f"agi_{k}: {v}\n" for k, v in env.items()).encode() + b"\n")
        try:
            async with asyncio.timeout(limit):
                while raw := await reader.readline():
                    line = raw.decode().rstrip("\n")
                    if line.startswith("EXEC ") and _split(line[5:])[0] == "AudioSocket":
                        self.transcript.commands.append(line)
                        reply = await self._audiosocket(_split(line[5:])[1])
                    else:
                        reply = self._answer(line)
                    writer.write(reply.encode() + b"\n")
                    await writer.drain()
        except ConnectionResetError:
            self._say("☎ the service reset the AGI connection")  # it closed with replies unread
        finally:
            writer.close()
        return self.transcript

    async def _audiosocket(self, data: str) -> str:
        uid, _, address = data.partition(",")
        host, _, port = address.rpartition(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(encode_uuid(uuid.UUID(uid)) + encode_audio(bytes(320)) * 5)
        await writer.drain()
        while chunk := await reader.read(4096):  # the service's audio, until its hang-up frame or a close
            if chunk.endswith(HANGUP_FRAME):
                break
        writer.close()
        self._say("☎ AudioSocket ended")
        return "200 result=0"


async def test_a_cancelled_exec_audiosocket_does_not_desync_the_call(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Recognition fails mid-listen: listen.py cancels the in-flight EXEC AudioSocket. The queue that follows
    must read its own replies: QUEUESTATUS=TIMEOUT takes the timeout edge (before, GET VARIABLE read the Queue
    reply, found no status and the call stopped there)."""
    caplog.set_level(logging.INFO, "ivr.agi")

    async def dead(self: SpeechService, language: str) -> FailingRecognizer:
        return FailingRecognizer()

    monkeypatch.setattr(SpeechService, "recognizer_for", dead)
    flows, _ = project_copy(tmp_path, anytime=True)
    (flows / "desync.yaml").write_text(DESYNC_FLOW)
    async with running(tmp_path, extra={"speech": {"mode": "stream"}}) as app:
        peer = SequentialAsterisk("", env={"uniqueid": "desync-1"})
        peer.queue_status = "TIMEOUT"
        t = await peer.call("127.0.0.1", app.agi.port, "desync")
        journey = app.journeys.recent[-1]
    visited = [e["node"] for e in journey["journey"] if e["kind"] == "enter"]
    assert visited == ["menu", "agent", "nobody"], journey
    assert [e["status"] for e in journey["journey"] if e["kind"] == "queue-result"] == ["TIMEOUT"]
    assert t.queue == "support" and t.hung_up_by == "service"
    assert sum("dropped the late reply (200) to the cancelled EXEC AudioSocket" in r.getMessage()
               for r in caplog.records) == 1


async def _start_call(port: int, uniqueid: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"agi_network: yes\nagi_uniqueid: {uniqueid}\nagi_network_script: main\n\n".encode())
    await writer.drain()
    return reader, writer


async def test_an_over_long_reply_line_ends_that_session_with_one_log_line(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "ivr")
    async with running(tmp_path) as app:
        reader, writer = await _start_call(app.agi.port, "long-1")
        assert await reader.readline() == b"ANSWER\n"
        writer.write(b"200 result=0 (" + b"x" * 20_000 + b")\n")
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 5) == b""  # the service closed the session at once
        writer.close()
        good = await FakeAsterisk("1 0").call("127.0.0.1", app.agi.port, "main")
        assert good.queue == "support" and not app.agi.calls
    lines = [r.getMessage() for r in caplog.records if "long-1" in r.getMessage() and r.levelno >= logging.WARNING]
    assert lines == ["[long-1] AGI session ended: AGI reply line over 8192 bytes"]
    assert app.journeys.recent[0]["outcome"] == "agi-session-ended"


async def test_a_command_without_reply_ends_the_session_after_its_short_timeout(tmp_path: Path) -> None:
    async with running(tmp_path, agi_reply_timeout=0.3) as app:
        reader, writer = await _start_call(app.agi.port, "mute-1")
        assert await reader.readline() == b"ANSWER\n"   # never answered
        assert await asyncio.wait_for(reader.read(), 3) == b""   # was one hour
        writer.close()


async def test_past_the_session_cap_a_call_is_refused_and_the_live_one_goes_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "ivr.agi")
    async with running(tmp_path, agi_max_sessions=1) as app:
        reader, writer = await _start_call(app.agi.port, "first-1")
        assert await reader.readline() == b"ANSWER\n"   # the first call is live
        refused = await FakeAsterisk("1 0", env={"uniqueid": "second-1"}).call("127.0.0.1", app.agi.port, "main", 5)
        assert refused.commands == ["FAILURE"]  # res_agi: AGISTATUS=FAILURE, the dialplan's fallback queue
        assert app.agi.refused == 1
        writer.write(b"200 result=0\n")            # the first call is unharmed: its flow goes on
        await writer.drain()
        assert (await asyncio.wait_for(reader.readline(), 5)).startswith(b"STREAM FILE")
        writer.close()
        for _ in range(100):
            if not app.agi.calls:
                break
            await asyncio.sleep(0.02)
        again = await FakeAsterisk("1 0").call("127.0.0.1", app.agi.port, "main")  # a free place again
        assert again.queue == "support"
    lines = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert lines == ["[second-1] AGI call refused: 1 sessions live (agi_max_sessions); the dialplan takes it"]

"""The real service over TCP: a fake Asterisk speaking AGI, bad peers, concurrency, drain."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

from ivr.testing import FakeAsterisk
from tests.appkit import running


async def test_demo_call_reaches_italian_agents(tmp_path: Path) -> None:
    async with running(tmp_path) as app:
        t = await FakeAsterisk("2 0").call("127.0.0.1", app.agi.port, "main")
    assert t.commands[0] == "ANSWER"
    assert t.queue == "support-it" and t.hung_up_by == "service"
    assert any('SET VARIABLE "CHANNEL(language)" "it"' in c for c in t.commands)
    assert any('SET VARIABLE "__IVR_LANGUAGE" "it"' in c for c in t.commands)
    journey = json.loads((tmp_path / "journeys.jsonl").read_text().splitlines()[-1])
    assert journey["outcome"] == "queue:support-it" and journey["language"] == "it"


async def test_unknown_script_gets_apology_and_human(tmp_path: Path) -> None:
    async with running(tmp_path) as app:
        t = await FakeAsterisk("").call("127.0.0.1", app.agi.port, "no-such-flow")
    assert t.queue == "support" and len(t.played) == 1


async def _raw(port: int, data: bytes, read: bool = True) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    writer.write_eof()
    out = await asyncio.wait_for(reader.read(), 5) if read else b""
    writer.close()
    return out


@pytest.mark.parametrize("data", [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",          # not AGI at all
    b"agi_network: yes\nagi_uniqueid: 1.1\n",         # truncated header, then close
    b"\n",                                             # empty header
    b"agi_x: " + b"y" * 100_000 + b"\n\n",             # absurd line
])
async def test_bad_peers_are_dropped_and_others_still_served(tmp_path: Path, data: bytes,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "ivr.agi")
    async with running(tmp_path) as app:
        writer_task = asyncio.create_task(_raw(app.agi.port, data))
        good = await FakeAsterisk("1 0").call("127.0.0.1", app.agi.port, "main")
        assert await writer_task == b""   # the bad peer got nothing, the connection was closed
        assert good.queue == "support"
        assert not app.agi.calls
    drops = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert len(drops) == 1


async def test_silent_peer_is_dropped_after_header_timeout(tmp_path: Path) -> None:
    async with running(tmp_path, agi_header_timeout=0.3) as app:
        reader, writer = await asyncio.open_connection("127.0.0.1", app.agi.port)
        assert await asyncio.wait_for(reader.read(), 3) == b""
        writer.close()


async def test_garbage_reply_mid_call_ends_that_call_only(tmp_path: Path) -> None:
    async with running(tmp_path) as app:
        reader, writer = await asyncio.open_connection("127.0.0.1", app.agi.port)
        writer.write(b"agi_network: yes\nagi_uniqueid: bad-1\nagi_network_script: main\n\n")
        await reader.readline()                       # the first command
        writer.write(b"this is not agi\n")
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 5) == b""   # the service hung up on it
        writer.close()
        good = await FakeAsterisk("1 0").call("127.0.0.1", app.agi.port, "main")
        assert good.queue == "support" and not app.agi.calls


async def test_caller_vanishing_mid_prompt_leaves_no_task(tmp_path: Path) -> None:
    async with running(tmp_path) as app:
        reader, writer = await asyncio.open_connection("127.0.0.1", app.agi.port)
        writer.write(b"agi_network: yes\nagi_uniqueid: gone-1\nagi_network_script: main\n\n")
        assert await reader.readline() == b"ANSWER\n"
        writer.write(b"200 result=0\n")
        assert (await reader.readline()).startswith(b"STREAM FILE")
        writer.close()                                 # socket gone mid-prompt, no HANGUP line
        for _ in range(50):
            if not app.agi.calls:
                break
            await asyncio.sleep(0.02)
        assert not app.agi.calls
        assert app.journeys.recent[-1]["outcome"] == "caller-hangup"


async def test_hangup_line_mid_call(tmp_path: Path) -> None:
    async with running(tmp_path) as app:
        t = await FakeAsterisk("1 h").call("127.0.0.1", app.agi.port, "main")
        assert t.hung_up_by == "caller"
        assert app.journeys.recent[-1]["outcome"] == "caller-hangup"


async def test_200_concurrent_calls_all_complete(tmp_path: Path) -> None:
    async with running(tmp_path) as app:
        calls = [FakeAsterisk("1 0" if i % 2 else "2 0", env={"uniqueid": f"c-{i}"}).call(
            "127.0.0.1", app.agi.port, "main") for i in range(200)]
        results = await asyncio.gather(*calls)
        assert [r.queue for r in results].count("support") == 100
        assert [r.queue for r in results].count("support-it") == 100
        assert app.journeys.kpis()["calls_finished"] == 200 and not app.agi.calls


async def test_drain_lets_calls_finish_then_hands_the_rest_back(tmp_path: Path) -> None:
    async with running(tmp_path, drain_seconds=0.5) as app:
        reader, writer = await asyncio.open_connection("127.0.0.1", app.agi.port)
        writer.write(b"agi_network: yes\nagi_uniqueid: slow-1\nagi_network_script: main\n\n")
        await reader.readline()                        # the service waits for our reply: a live call
        stop = asyncio.create_task(app.stop())
        await asyncio.sleep(0.1)
        writer.write(b"200 result=0 endpos=1\n")       # the prompt played; the caller goes quiet
        await writer.drain()
        lines = []
        while line := await asyncio.wait_for(reader.readline(), 5):
            lines.append(line.decode().strip())
            if line.startswith(b"SET VARIABLE"):
                writer.write(b"200 result=1\n")
            elif not line.startswith(b"WAIT FOR DIGIT"):
                writer.write(b"200 result=0\n")
        await stop
        assert 'SET VARIABLE "IVR_STATUS" "handoff"' in lines
        writer.close()

"""AgiSession against a scripted Asterisk side: a cancelled command's reply, over-long lines, timeouts, size."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, cast

import pytest

from ivr.agi.protocol import MAX_COMMAND_BYTES
from ivr.agi.session import MAX_LINE, AgiSession
from ivr.agi.timeouts import ReplyTimeouts
from ivr.errors import AgiError, AgiSessionEnded, CallEnded


class Wire:
    """The writing side as the session sees it; `stuck` makes drain() wait forever (Asterisk not reading)."""

    def __init__(self, *, stuck: bool = False) -> None:
        self.sent: list[bytes] = []
        self.stuck = stuck
        self.closed = False

    def write(self, data: bytes) -> None:
        self.sent.append(data)

    async def drain(self) -> None:
        if self.stuck:
            await asyncio.Event().wait()

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    async def wait_closed(self) -> None:
        return None


def session(wire: Wire | None = None, **kw: Any) -> tuple[AgiSession, asyncio.StreamReader, Wire]:
    reader = asyncio.StreamReader(limit=MAX_LINE)
    wire = wire or Wire()
    return AgiSession(reader, cast(Any, wire), {"uniqueid": "u-1"}, **kw), reader, wire


async def until(predicate: Any, limit: float = 2.0) -> None:
    async with asyncio.timeout(limit):
        while not predicate():  # noqa: ASYNC110 - polls the stub's state, nothing to wait on
            await asyncio.sleep(0.005)


async def test_a_cancelled_commands_reply_is_dropped_before_the_next_command(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "ivr.agi")
    s, reader, wire = session()
    listening = asyncio.create_task(s.command("EXEC", "AudioSocket", "uuid,127.0.0.1:9"))
    await until(lambda: wire.sent)
    listening.cancel()  # what nodes/listen.py does when recognition fails
    with pytest.raises(asyncio.CancelledError):
        await listening
    assert s.owed == ("EXEC AudioSocket",)
    nxt = asyncio.create_task(s.command("STREAM FILE", "/p/sorry", ""))
    await asyncio.sleep(0.05)
    assert len(wire.sent) == 1  # not written while Asterisk is still in EXEC AudioSocket
    reader.feed_data(b"200 result=0\n")  # AudioSocket ends: its reply
    await until(lambda: len(wire.sent) == 2)
    assert wire.sent[1] == b'STREAM FILE "/p/sorry" ""\n'
    reader.feed_data(b"200 result=0 endpos=8000\n")
    reply = await asyncio.wait_for(nxt, 2)
    assert reply.extras == {"endpos": "8000"}  # its own reply, not the AudioSocket one
    assert s.owed == () and not s.closed
    dropped = [r.getMessage() for r in caplog.records if "late reply" in r.getMessage()]
    assert dropped == ["[u-1] dropped the late reply (200) to the cancelled EXEC AudioSocket"]


async def test_a_late_reply_split_over_a_520_block_is_dropped_whole() -> None:
    s, reader, wire = session()
    first = asyncio.create_task(s.command("GET DATA", "/p/pin", 5000, 4))
    await until(lambda: wire.sent)
    reader.feed_data(b"520-Invalid command syntax.  Proper usage follows:\n")
    await asyncio.sleep(0.02)
    first.cancel()
    reader.feed_data(b" Usage: GET DATA <file>\n520 End of proper usage.\n200 result=1\n")
    assert (await s.command("SET VARIABLE", "A", "b")).result == "1"


async def test_when_the_late_reply_never_comes_the_session_ends(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "ivr.agi")
    s, reader, wire = session(resync_timeout=0.2)
    queued = asyncio.create_task(s.command("EXEC", "Queue", "support"))
    await until(lambda: wire.sent)
    queued.cancel()
    started = time.monotonic()
    with pytest.raises(AgiSessionEnded, match="cancelled EXEC Queue did not come within 0.2s"):
        await s.command("SET VARIABLE", "IVR_STATUS", "done")
    assert 0.15 < time.monotonic() - started < 1.0
    assert len(wire.sent) == 1 and wire.closed  # nothing more was sent; the socket is closed: the dialplan goes on
    with pytest.raises(CallEnded):
        await s.command("ANSWER")
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        "[u-1] AGI session ended: the reply to the cancelled EXEC Queue did not come within 0.2s"]


async def test_an_over_long_reply_line_ends_the_session_with_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "ivr.agi")
    s, reader, wire = session()
    reader.feed_data(b"200 result=1 (" + b"x" * (MAX_LINE + 100) + b")\n200 result=1\n")
    with pytest.raises(AgiSessionEnded, match=f"over {MAX_LINE} bytes"):
        await s.command("GET VARIABLE", "X")
    assert s.closed and wire.closed
    with pytest.raises(CallEnded):
        await s.command("ANSWER")
    assert len(wire.sent) == 1
    assert [r.getMessage() for r in caplog.records] == [
        f"[u-1] AGI session ended: AGI reply line over {MAX_LINE} bytes"]


@pytest.mark.parametrize(("command", "args", "waits"), [
    ("SET VARIABLE", ("A", "b"), 0.1),            # answers at once: short
    ("STREAM FILE", ("/p/x", ""), 0.3),           # a prompt
    ("WAIT FOR DIGIT", (200,), 0.3),              # its own 0.2 s + short
])
async def test_reply_timeouts_follow_the_command(command: str, args: tuple[str | int, ...], waits: float) -> None:
    s, _, wire = session(timeouts=ReplyTimeouts(short=0.1, prompt=0.3, long=5.0))
    started = time.monotonic()
    with pytest.raises(AgiSessionEnded, match=f"no reply to {command} within"):
        await s.command(command, *args)
    assert waits - 0.05 < time.monotonic() - started < waits + 0.5
    assert wire.closed


async def test_a_write_that_cannot_drain_is_inside_the_timeout() -> None:
    s, _, wire = session(Wire(stuck=True), timeouts=ReplyTimeouts(short=0.1, prompt=0.2, long=0.3))
    async with asyncio.timeout(2):
        with pytest.raises(AgiSessionEnded, match="no reply to ANSWER within 0.1s"):
            await s.command("ANSWER")
    assert wire.closed


async def test_a_line_over_asterisks_buffer_is_refused_before_sending() -> None:
    s, reader, wire = session()
    quotes = '"' * 1020  # 1,020 characters (under the old 1,024 limit), 2,040 bytes once escaped
    accents = "é" * 1020  # 1,020 characters, 2,040 bytes of UTF-8
    for value in (quotes, accents):
        with pytest.raises(AgiError, match=f"over the {MAX_COMMAND_BYTES} that fit"):
            await s.command("SET VARIABLE", "X", value)
    assert wire.sent == [] and not s.closed  # nothing went out; the session goes on
    reader.feed_data(b"200 result=1\n")
    fits = "x" * (MAX_COMMAND_BYTES - len('SET VARIABLE "X" ""'))
    await s.command("SET VARIABLE", "X", fits)
    assert len(wire.sent[0]) == MAX_COMMAND_BYTES + 1  # the longest line Asterisk's fgets reads whole


async def test_on_shutdown_the_hand_back_is_written_behind_the_owed_reply() -> None:
    s, reader, wire = session()
    waiting = asyncio.create_task(s.command("WAIT FOR DIGIT", 5000))
    await until(lambda: wire.sent)
    s.hand_back()
    waiting.cancel()
    marker = asyncio.create_task(s.command("SET VARIABLE", "IVR_STATUS", "handoff"))
    await until(lambda: len(wire.sent) == 2)  # at once: Asterisk runs it when WAIT FOR DIGIT ends
    reader.feed_data(b"200 result=0\n200 result=1\n")
    assert (await asyncio.wait_for(marker, 2)).result == "1"

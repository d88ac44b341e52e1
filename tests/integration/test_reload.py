"""Hot reload: the next call hears the change; a live call keeps its flow; a bad file changes nothing."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from ivr.testing import FakeAsterisk
from tests.appkit import running


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


async def test_edit_applies_to_next_call_not_to_the_live_one(tmp_path: Path) -> None:
    async with running(tmp_path) as app:
        flow = tmp_path / "dialplans" / "main.yaml"
        # a live call waits in the language menu while an admin edits the flow
        reader, writer = await asyncio.open_connection("127.0.0.1", app.agi.port)
        writer.write(b"agi_network: yes\nagi_uniqueid: live-1\nagi_network_script: main\n\n")
        assert await reader.readline() == b"ANSWER\n"
        writer.write(b"200 result=0\n")
        assert (await reader.readline()).startswith(b"STREAM FILE")
        _edit(flow, "    queue: support\n", "    queue: orders\n")
        result = await app.registry.reload("test")
        assert result.applied
        # the live call presses 1 then 0: it must still reach the old target
        writer.write(b"200 result=49 endpos=1\n")      # key 1 during the language prompt
        replies = iter([b"200 result=48 endpos=1\n"])  # then 0 during the main menu
        queue = ""
        while line := await asyncio.wait_for(reader.readline(), 5):
            text = line.decode()
            if text.startswith("STREAM FILE"):
                writer.write(next(replies, b"200 result=0 endpos=1\n"))
            elif text.startswith("EXEC"):
                queue = text.split('"')[3].split(",")[0]
                writer.write(b"200 result=0\n")
            else:
                writer.write(b"200 result=0\n")
            await writer.drain()
        writer.close()
        assert queue == "support"
        after = await FakeAsterisk("1 0").call("127.0.0.1", app.agi.port, "main")
        assert after.queue == "orders"


async def test_bad_edit_is_rejected_and_old_flow_keeps_serving(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, "ivr.reload")
    async with running(tmp_path) as app:
        version = app.registry.current.version
        flow = tmp_path / "dialplans" / "main.yaml"
        _edit(flow, "next: {invalid: agent, timeout: agent}", "next: {invalid: agent, timeout: nowhere}")
        result = await app.registry.reload("test")
        assert not result.applied and app.registry.current.version == version
        assert any(f"{flow}:" in r.getMessage() and "unknown node 'nowhere'" in r.getMessage()
                   for r in caplog.records)
        t = await FakeAsterisk("1 0").call("127.0.0.1", app.agi.port, "main")
        assert t.queue == "support"


async def test_file_change_is_picked_up_without_restart(tmp_path: Path) -> None:
    async with running(tmp_path, reload_watch=True) as app:
        await asyncio.sleep(0.3)  # let the watcher start
        texts = tmp_path / "prompts" / "en" / "texts.yaml"
        _edit(texts, "Sorry, that is not a valid choice.", "That key does nothing here.")
        for _ in range(100):
            if app.registry.reloads >= 2:
                break
            await asyncio.sleep(0.05)
        assert app.registry.reloads >= 2
        lines: list[str] = []
        await FakeAsterisk("1 9 0", describe=app.prompts.describe, echo=lines.append).call(
            "127.0.0.1", app.agi.port, "main")
        assert any("That key does nothing here." in line for line in lines)

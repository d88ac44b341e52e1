"""One lifecycle: components start in order and stop in reverse; a failed start unwinds what had started."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from ivr.background import Background
from ivr.lifecycle import Component, Lifecycle, component


class Recorder:
    """Fake components that write what happens to them into one list."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def part(self, name: str, *, fail_start: bool = False, fail_stop: bool = False) -> Component:
        @asynccontextmanager
        async def run() -> AsyncIterator[None]:
            self.events.append(f"start {name}")
            if fail_start:
                raise OSError(f"{name} cannot bind")
            yield
            self.events.append(f"stop {name}")
            if fail_stop:
                raise RuntimeError(f"{name} stuck")

        return Component(name, run)


async def test_components_start_in_order_and_stop_in_reverse() -> None:
    rec = Recorder()
    life = Lifecycle([rec.part("redis"), rec.part("ami"), rec.part("http"), rec.part("agi")])
    await life.start()
    assert life.running == ["redis", "ami", "http", "agi"]
    await life.stop()
    assert rec.events == ["start redis", "start ami", "start http", "start agi",
                          "stop agi", "stop http", "stop ami", "stop redis"]
    assert life.running == []
    await life.stop()  # a second stop does nothing
    assert len(rec.events) == 8


async def test_a_component_failing_to_start_unwinds_those_already_started(caplog: pytest.LogCaptureFixture) -> None:
    rec = Recorder()
    life = Lifecycle([rec.part("redis"), rec.part("ami"), rec.part("http", fail_start=True), rec.part("agi")])
    with caplog.at_level(logging.ERROR, logger="ivr.app"), pytest.raises(OSError, match="http cannot bind"):
        await life.start()
    assert rec.events == ["start redis", "start ami", "start http", "stop ami", "stop redis"]
    assert life.running == []
    assert "http did not start (OSError)" in caplog.text
    await life.stop()  # nothing left to stop
    assert len(rec.events) == 5


async def test_a_component_failing_to_stop_is_logged_and_the_others_still_stop(
        caplog: pytest.LogCaptureFixture) -> None:
    rec = Recorder()
    life = Lifecycle([rec.part("redis"), rec.part("dialer", fail_stop=True), rec.part("agi")])
    await life.start()
    with caplog.at_level(logging.ERROR, logger="ivr.app"):
        await life.stop()
    assert rec.events[3:] == ["stop agi", "stop dialer", "stop redis"]
    assert "stopping dialer failed" in caplog.text
    assert life.running == []


async def test_components_are_stopped_as_a_normal_exit_even_while_a_start_fails() -> None:
    seen: list[object] = []

    @asynccontextmanager
    async def first() -> AsyncIterator[None]:
        try:
            yield
        except BaseException as exc:  # pragma: no cover - would mean the later failure leaked in here
            seen.append(exc)
            raise
        seen.append("stopped normally")

    rec = Recorder()
    life = Lifecycle([Component("first", first), rec.part("second", fail_start=True)])
    with pytest.raises(OSError):
        await life.start()
    assert seen == ["stopped normally"]


async def test_a_start_stop_pair_that_fails_half_way_is_stopped() -> None:
    events: list[str] = []

    async def start() -> None:
        events.append("bound the port")
        raise RuntimeError("model missing")

    async def stop() -> None:
        events.append("closed the port")

    life = Lifecycle([component("speech", start, stop)])
    with pytest.raises(RuntimeError, match="model missing"):
        await life.start()
    assert events == ["bound the port", "closed the port"]


async def test_starting_twice_is_refused() -> None:
    life = Lifecycle([component("nothing")])
    await life.start()
    with pytest.raises(RuntimeError, match="already started"):
        await life.start()
    await life.stop()
    assert life.names == ["nothing"]


async def test_background_work_is_flushed_on_the_way_out_and_the_late_cut() -> None:
    done: list[str] = []
    bg = Background()

    async def quick() -> None:
        await asyncio.sleep(0.01)
        done.append("quick")

    async def stuck() -> None:
        await asyncio.sleep(60)
        done.append("stuck")  # pragma: no cover

    life = Lifecycle([Component("background", lambda: bg.running(0.2))])
    await life.start()
    bg.spawn(quick(), name="crm-1")
    slow = bg.spawn(stuck(), name="crm-2")
    assert bg.pending == 2
    await life.stop()
    assert done == ["quick"]
    assert slow.cancelled()
    assert bg.pending == 0

"""Work a call starts and does not wait for (a CRM record ...), finished or cancelled when the service stops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

log = logging.getLogger("ivr.app")


class Background:
    """Holds the tasks it started (so none is garbage-collected mid-flight) until they finish."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, work: Coroutine[Any, Any, None], *, name: str | None = None) -> asyncio.Task[None]:
        """Run `work` beside the caller; its own errors are its business (log them there)."""
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def flush(self, seconds: float) -> int:
        """Wait up to `seconds` for the work still running, then cancel the rest; returns how many were cut."""
        if not self._tasks:
            return 0
        _, late = await asyncio.wait(set(self._tasks), timeout=seconds)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=1.0)
            log.warning("%d background task(s) still running after %.1fs were cancelled", len(late), seconds)
        return len(late)

    @asynccontextmanager
    async def running(self, flush_seconds: float) -> AsyncIterator[Background]:
        """The service's lifecycle component: on the way out, `flush(flush_seconds)`."""
        yield self
        await self.flush(flush_seconds)

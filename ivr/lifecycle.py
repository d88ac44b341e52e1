"""Components started in order in one AsyncExitStack and stopped in reverse; a failed start unwinds the started.

A component is a name and a function that returns an async context manager: entering it starts the
component, leaving it stops it (aiohttp's `cleanup_ctx`, starlette's `lifespan`). `Lifecycle.start()`
enters them in the order given; `stop()` leaves them in reverse, so what starts first stops last.
When one fails to start, those already started are stopped (in reverse) and the error propagates.

Each component is stopped as a normal exit, whatever happened elsewhere: a later component failing
to start, or an earlier one failing to stop, is no error *inside* this one. A component that fails
to stop is logged and the others still stop.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from types import TracebackType

log = logging.getLogger("ivr.app")

Opener = Callable[[], AbstractAsyncContextManager[object]]
Step = Callable[[], Awaitable[object]]
_Exit = Callable[[type[BaseException] | None, BaseException | None, TracebackType | None], Awaitable[bool]]


@dataclass(frozen=True)
class Component:
    """One part of the service: `open()` gives the async context that runs it."""

    name: str
    open: Opener


def component(name: str, start: Step | None = None, stop: Step | None = None) -> Component:
    """A component from a start/stop pair (either may be missing: a client that connects lazily has no start).

    A start that fails half way (a server bound, then a model that does not load) is followed by `stop`,
    so the pair must tolerate stopping what never fully started."""

    @asynccontextmanager
    async def run() -> AsyncIterator[None]:
        if start is not None:
            try:
                await start()
            except BaseException:
                if stop is not None:
                    with contextlib.suppress(Exception):
                        await stop()
                raise
        yield
        if stop is not None:
            await stop()

    return Component(name, run)


class Lifecycle:
    """Starts `components` in order, stops them in reverse; `running` lists the started ones."""

    def __init__(self, components: Iterable[Component]) -> None:
        self.components = list(components)
        self.running: list[str] = []
        self._stack: AsyncExitStack | None = None

    @property
    def names(self) -> list[str]:
        """Every component's name, in start order."""
        return [c.name for c in self.components]

    async def start(self) -> None:
        if self._stack is not None:
            raise RuntimeError("already started")
        async with AsyncExitStack() as stack:  # a failure below leaves this block: the started stop
            for part in self.components:
                context = part.open()
                try:
                    await context.__aenter__()
                except BaseException as exc:
                    log.error("%s did not start (%s); stopping what had started", part.name, type(exc).__name__)
                    raise
                stack.push_async_exit(self._exit(part.name, context))
                self.running.append(part.name)
                log.debug("started %s", part.name)
            self._stack = stack.pop_all()

    async def stop(self) -> None:
        """Stop every started component, last started first; a second call does nothing."""
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    def _exit(self, name: str, context: AbstractAsyncContextManager[object]) -> _Exit:
        async def leave(_type: type[BaseException] | None, _exc: BaseException | None,
                        _tb: TracebackType | None) -> bool:
            try:
                await context.__aexit__(None, None, None)
            except Exception:
                log.exception("stopping %s failed", name)
            finally:
                self.running.remove(name)
                log.debug("stopped %s", name)
            return False  # never swallow the error that is unwinding the stack

        return leave

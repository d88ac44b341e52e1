"""The FastAGI listener: one task per call, environment read under a timeout, routing by script name.

At most `max_sessions` calls run at once. A connection past that is refused at once with the line
`FAILURE`: res_agi.c ends the AGI there with AGISTATUS=FAILURE, the status it gives an unreachable
service, so the dialplan takes the call the same way (asterisk-conf/extensions.conf: an apology and the
support queue). Closing without a word would give SUCCESS without IVR_STATUS=done, which the main line
also sends to its fallback, but the callback context would then hang up on the customer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from ivr.agi.protocol import MAX_ENV_LINES, parse_env_line
from ivr.agi.session import MAX_LINE, AgiSession
from ivr.agi.timeouts import ReplyTimeouts
from ivr.errors import AgiError, CallEnded

log = logging.getLogger("ivr.agi")

Handler = Callable[[AgiSession], Awaitable[None]]


def script_name(env: dict[str, str]) -> str:
    """`agi://host:port/main?x=1` → `main` (Asterisk passes the path as agi_network_script)."""
    script = env.get("network_script") or env.get("request", "").rsplit("/", 1)[-1]
    return script.split("?", 1)[0].strip("/")


class AgiServer:
    """Accepts FastAGI connections and hands each session to `handler`; survives any one bad peer."""

    def __init__(
        self, handler: Handler, *, header_timeout: float = 5.0, max_sessions: int = 1000,
        timeouts: ReplyTimeouts | None = None, resync_timeout: float = 5.0,
    ) -> None:
        self._handler = handler
        self.header_timeout = header_timeout
        self.max_sessions = max_sessions
        self.timeouts = timeouts or ReplyTimeouts()
        self.resync_timeout = resync_timeout
        self._server: asyncio.Server | None = None
        self.calls: set[asyncio.Task[None]] = set()
        self._sessions: dict[asyncio.Task[None], AgiSession] = {}
        self.refused = 0  # connections turned away because max_sessions were live
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._accept, host, port, limit=MAX_LINE)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("FastAGI listening on %s:%d", host, self.port)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self.calls) >= self.max_sessions:
            await self._refuse(reader, writer)
            return
        task = asyncio.current_task()
        assert task is not None
        self.calls.add(task)
        peer = writer.get_extra_info("peername")
        try:
            try:
                env = await asyncio.wait_for(self._read_env(reader), self.header_timeout)
            except (TimeoutError, AgiError, ValueError, ConnectionError, asyncio.IncompleteReadError) as exc:
                reason = "timed out" if isinstance(exc, TimeoutError) else str(exc) or type(exc).__name__
                log.warning("AGI connection from %s dropped: bad environment block (%s)", peer, reason)
                writer.close()
                return
            session = AgiSession(reader, writer, env, timeouts=self.timeouts, resync_timeout=self.resync_timeout)
            self._sessions[task] = session
            try:
                await self._handler(session)
            except CallEnded:
                pass
            except AgiError as exc:
                log.warning("[%s] AGI session ended: %s", session.uniqueid, exc)
            except Exception:
                log.exception("[%s] AGI handler crashed", session.uniqueid)
            finally:
                await session.close()
        finally:
            self.calls.discard(task)
            self._sessions.pop(task, None)

    async def _refuse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Turn a call away: `FAILURE` (AGISTATUS=FAILURE), then read its environment so the close is clean."""
        self.refused += 1
        writer.write(b"FAILURE\n")
        env: dict[str, str] = {}
        try:
            # the block is already on its way; unread bytes at close() would reset the connection
            env = await asyncio.wait_for(self._read_env(reader), min(self.header_timeout, 2.0))
        except (TimeoutError, AgiError, ValueError, ConnectionError, asyncio.IncompleteReadError):
            pass
        log.warning("[%s] AGI call refused: %d sessions live (agi_max_sessions); the dialplan takes it",
                    env.get("uniqueid", "?"), len(self.calls))
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), 1.0)
        except (ConnectionError, TimeoutError, OSError):
            pass

    @staticmethod
    async def _read_env(reader: asyncio.StreamReader) -> dict[str, str]:
        env: dict[str, str] = {}
        for _ in range(MAX_ENV_LINES + 1):
            raw = await reader.readline()
            if not raw:
                raise AgiError("connection closed inside the environment block")
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line == "":
                if not env:
                    raise AgiError("empty environment block")
                return env
            key, value = parse_env_line(line)
            env[key] = value
        raise AgiError("AGI environment too long")

    async def stop_accepting(self) -> None:
        # close() only: on Python >= 3.12 wait_closed() would also wait for every live call.
        if self._server is not None:
            self._server.close()

    async def drain(self, deadline: float) -> int:
        """Wait up to `deadline` seconds for live calls; cancel the rest. Returns how many were cut."""
        if self.calls:
            _, pending = await asyncio.wait(set(self.calls), timeout=deadline)
            for task in pending:
                if (session := self._sessions.get(task)) is not None:
                    session.hand_back()
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5.0)
            return len(pending)
        return 0

"""One FastAGI connection: sends a command, waits for its reply, turns hang-ups into CallEnded."""

from __future__ import annotations

import asyncio
import logging

from ivr.agi.protocol import Reply, ReplyParser, format_command
from ivr.errors import AgiError, CallEnded

log = logging.getLogger("ivr.agi")

MAX_LINE = 8192


class AgiSession:
    """Commands run one at a time; any protocol fault ends this session only."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, env: dict[str, str],
        *, reply_timeout: float = 3600.0,
    ) -> None:
        self.env = env
        self._reader = reader
        self._writer = writer
        self._parser = ReplyParser()
        self._lock = asyncio.Lock()
        self._closed = False
        self.reply_timeout = reply_timeout

    @property
    def uniqueid(self) -> str:
        return self.env.get("uniqueid", "?")

    @property
    def hung_up(self) -> bool:
        return self._parser.hangup_seen

    @property
    def closed(self) -> bool:
        return self._closed

    async def command(self, command: str, *args: str | int) -> Reply:
        """Send one command and return its 200 reply; raise CallEnded or AgiError otherwise."""
        line = format_command(command, *args)
        async with self._lock:
            if self._closed or self._parser.hangup_seen:
                raise CallEnded("AGI session is over")
            try:
                self._writer.write(line.encode() + b"\n")
                await self._writer.drain()
                reply = await asyncio.wait_for(self._read_reply(), self.reply_timeout)
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                self._closed = True
                raise CallEnded("AGI connection closed") from exc
            except TimeoutError as exc:
                self._closed = True
                raise AgiError(f"no reply to {command} within {self.reply_timeout:.0f}s") from exc
            except AgiError:
                self._closed = True  # the peer broke the protocol: nothing it says can be trusted now
                raise
        if reply.code == 511:
            raise CallEnded("channel is dead")
        if reply.code != 200:
            first = reply.text.splitlines()[0] if reply.text else ""
            raise AgiError(f"{command} refused ({reply.code}): {first}")
        return reply

    async def _read_reply(self) -> Reply:
        while True:
            raw = await self._reader.readline()
            if not raw:
                self._closed = True
                raise CallEnded("AGI connection closed by Asterisk")
            if len(raw) > MAX_LINE:
                raise AgiError("AGI reply line too long")
            try:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
            except UnicodeDecodeError as exc:  # pragma: no cover - "replace" never raises
                raise AgiError("undecodable AGI reply") from exc
            reply = self._parser.feed(line)
            if reply is not None:
                return reply
            if self._parser.hangup_seen:
                # Asterisk still answers the command in flight, but the caller is gone: stop here.
                raise CallEnded("caller hung up")

    async def close(self) -> None:
        """Close the socket; Asterisk then continues the dialplan after AGI()."""
        self._closed = True
        if self._writer.is_closing():
            return
        try:
            self._writer.close()
            await asyncio.wait_for(self._writer.wait_closed(), 1.0)
        except (ConnectionError, TimeoutError, OSError):
            pass

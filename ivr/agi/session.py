"""One FastAGI connection: sends a command, waits for its reply, turns hang-ups into CallEnded.

Replies come back in the order the commands went out, with nothing to tell whose reply a line is. So
the session keeps the books: every command written owes one reply, and a reply is always given to
the oldest command that is owed one.

A command whose caller stops waiting (its task is cancelled: `nodes/listen.py` cancels an in-flight
`EXEC AudioSocket` when listening fails, the engine cancels a call on shutdown) still gets its reply
from Asterisk later. We keep the session and drop that reply: before the next command is written, the
owed replies are read and discarded, for at most `resync_timeout` seconds. Why not end the session at
once? Cancelling `EXEC AudioSocket` is an ordinary path on real calls, and its reply follows within
milliseconds (the AudioSocket stream is closed when listening stops), so the caller goes on in the flow
(an apology, the keypad, an agent) instead of being thrown back to the dialplan. Why not send the next
command at once and skip one reply later? Because then nobody knows how many replies come back: a new
line on the socket stops a playing STREAM FILE, GET OPTION or SAY *without* a reply ("Stop this command,
don't print a result line, as there is a new command", res_agi.c; seen on Asterisk 22: the prompt is cut
and the caller never hears it), cuts WAIT FOR DIGIT short *with* one, and waits behind an EXEC; the
command's timeout would also count whatever the cancelled one still does (a queue, a recording). So the
next command waits: for a cancelled prompt that is until the prompt ends (within `resync_timeout`).
(One exception: a call handed back on shutdown, see `hand_back`.)
When the owed reply does not come in time (the cancelled command was a queue or a dial, or Asterisk is
stuck), the session is ended: the socket is closed, Asterisk goes on in the dialplan after `AGI()`
(IVR_STATUS is not "done": its fallback queues the caller), and the command raises AgiSessionEnded
(a CallEnded: the flow stops, nothing more is sent). The session logs that one line.

A protocol fault ends the session the same way, never only the command: a reply line over MAX_LINE
bytes (its tail would be read as the next reply), a line that is not AGI, no reply within the command's
timeout (`ivr.agi.timeouts`; the write is inside that timeout too).
"""

from __future__ import annotations

import asyncio
import logging

from ivr.agi.protocol import Reply, ReplyParser, encode_command
from ivr.agi.timeouts import ReplyTimeouts
from ivr.errors import AgiError, AgiSessionEnded, CallEnded

log = logging.getLogger("ivr.agi")

MAX_LINE = 8192


class AgiSession:
    """Commands run one at a time; any protocol fault ends this session only."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, env: dict[str, str],
        *, timeouts: ReplyTimeouts | None = None, resync_timeout: float = 5.0,
    ) -> None:
        self.env = env
        self._reader = reader
        self._writer = writer
        self._parser = ReplyParser()
        self._lock = asyncio.Lock()
        self._closed = False
        self._owed: list[str] = []  # commands written whose reply is not read yet, oldest first
        self.timeouts = timeouts or ReplyTimeouts()
        self.resync_timeout = resync_timeout
        self.ended_because = ""  # why the service ended the session ("" while it runs or when Asterisk did)
        self._handing_back = False

    @property
    def uniqueid(self) -> str:
        return self.env.get("uniqueid", "?")

    @property
    def hung_up(self) -> bool:
        return self._parser.hangup_seen

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def owed(self) -> tuple[str, ...]:
        """The commands still owed a reply (their names only), oldest first."""
        return tuple(self._owed)

    async def command(self, command: str, *args: str | int) -> Reply:
        """Send one command and return its 200 reply; raise CallEnded or AgiError otherwise."""
        wire = encode_command(command, *args)  # a line Asterisk could not read whole is refused here
        name = _name(command, args)
        timeout = self.timeouts.for_command(command, args)
        async with self._lock:
            if self._closed or self._parser.hangup_seen:
                raise CallEnded("AGI session is over")
            if self._owed and not self._handing_back:
                await self._resync()
            with self._faults(f"no reply to {name} within {timeout:g}s"):
                async with asyncio.timeout(timeout):
                    self._writer.write(wire)
                    self._owed.append(name)
                    await self._writer.drain()
                    reply = await self._read_reply()
                    while self._owed:  # handing back: that was an older command's reply
                        reply = await self._read_reply()
        if reply.code == 511:
            raise CallEnded("channel is dead")
        if reply.code != 200:
            first = reply.text.splitlines()[0] if reply.text else ""
            raise AgiError(f"{command} refused ({reply.code}): {first}")
        return reply

    async def _resync(self) -> None:
        """Read and drop the replies owed to commands nobody waits for any more."""
        while self._owed:
            name = self._owed[0]
            with self._faults(f"the reply to the cancelled {name} did not come within {self.resync_timeout:g}s"):
                async with asyncio.timeout(self.resync_timeout):
                    reply = await self._read_reply()
            # the code only: a reply's data can be what the caller keyed
            log.info("[%s] dropped the late reply (%d) to the cancelled %s", self.uniqueid, reply.code, name)

    def _faults(self, timeout_reason: str) -> _Faults:
        return _Faults(self, timeout_reason)

    async def _read_reply(self) -> Reply:
        while True:
            try:
                raw = await self._reader.readline()
            except ValueError as exc:  # asyncio's LimitOverrunError: the line's tail would read as a reply
                raise AgiError(f"AGI reply line over {MAX_LINE} bytes") from exc
            if not raw:
                raise CallEnded("AGI connection closed by Asterisk")
            if len(raw) > MAX_LINE:
                raise AgiError(f"AGI reply line over {MAX_LINE} bytes")
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            reply = self._parser.feed(line)
            if reply is not None:
                if self._owed:
                    self._owed.pop(0)
                return reply
            if self._parser.hangup_seen:
                # Asterisk still answers the command in flight, but the caller is gone: stop here.
                raise CallEnded("caller hung up")

    def hand_back(self) -> None:
        """The service is stopping and cancels this call: from now on a command is written at once, even
        behind a reply still owed (Asterisk runs it once the command in flight ends). What the engine
        sends then (IVR_STATUS=handoff) must reach Asterisk, and nothing after it depends on a reply."""
        self._handing_back = True

    def end(self, reason: str) -> None:
        """End the session now (the socket closes; Asterisk goes on in the dialplan). Logged once."""
        if self._closed:
            return
        self._closed = True
        self.ended_because = reason
        log.warning("[%s] AGI session ended: %s", self.uniqueid, reason)
        if not self._writer.is_closing():
            self._writer.close()

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


class _Faults:
    """Maps what can go wrong while talking to Asterisk to CallEnded/AgiError, ending the session."""

    def __init__(self, session: AgiSession, timeout_reason: str) -> None:
        self._session = session
        self._timeout_reason = timeout_reason

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            return
        s = self._session
        if isinstance(exc, CallEnded | ConnectionError | asyncio.IncompleteReadError):
            s._closed = True  # Asterisk closed the socket or the caller hung up: nothing to log
            if not isinstance(exc, CallEnded):
                raise CallEnded("AGI connection closed") from exc
        elif isinstance(exc, TimeoutError | AgiError):
            # no reply in time, or the peer broke the protocol: nothing it says can be trusted now
            reason = self._timeout_reason if isinstance(exc, TimeoutError) else str(exc)
            s.end(reason)
            raise AgiSessionEnded(reason) from exc


def _name(command: str, args: tuple[str | int, ...]) -> str:
    """What a log line may say about a command: its words, and the application of an EXEC."""
    if command == "EXEC" and args and str(args[0]).isalnum():
        return f"EXEC {args[0]}"
    return command

"""AudioSocket server: routes each connection from Asterisk to whoever expects its uuid.

The frames and their codec are in ivr.agi.audiosocket_codec (its names are importable from here too).
Asterisk connects when the dialplan (or AGI `EXEC AudioSocket <uuid>,host:port`) runs the AudioSocket
application, sends the uuid frame first, then 20 ms audio frames and one frame per DTMF key. Audio
frames sent back are played to the caller. Sending the hang-up frame `00 00 00` ends the application:
AGI `EXEC` then returns `200 result=0` and the call goes on.

Verified against Asterisk 22.10 (SIPp caller, PCMU):
- audio frames flow only while RTP arrives: a caller sending no RTP produces no frames, and after
  2000 ms without a frame either way Asterisk ends the application ("Reached timeout after 2000 ms of no
  activity"), closes the socket, and `EXEC` returns `200 result=-1` (the channel stays up). Sending
  audio (even a 20 ms frame of silence every 0.5-1 s) keeps it open;
- the caller's keys arrive as DTMF frames (0x03, one ASCII byte per key press); `EXEC` does not
  return on a key: stop listening and `close()` to let a key press win;
- the caller hanging up closes the socket (no hang-up or error frame): `ended_by == "eof"`, `EXEC` returns
  `200 result=-1` and the next AGI command ends in `HANGUP`;
- connection refused or an unparsable uuid: `EXEC` returns `200 result=-1` at once (the source says the
  same for an unanswered channel: ANSWER first; not tried).

Usage (the AGI command blocks until the stream ends, so it runs beside the consumer):

    async with server.expect(call_uuid) as stream:
        agi = asyncio.create_task(channel.exec_app("AudioSocket", f"{call_uuid},{server.address}"))
        async with asyncio.timeout(3.0):
            await stream.wait_connected()
        async for frame in stream:          # Frame(kind=AUDIO|DTMF, ...)
            ...
        await stream.close()                # sends 00 00 00; also done when the block exits
        await agi
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid as uuidlib
from collections.abc import AsyncIterator

from ivr.agi.audiosocket_codec import (
    HANGUP_FRAME,
    AudioSocketError,
    Frame,
    Kind,
    encode_audio,
    read_frame,
)

log = logging.getLogger("ivr.audiosocket")


class AudioStream:
    """The stream of one expected uuid: frames in (audio, DTMF), audio out, `close` to end it."""

    def __init__(self, uuid: uuidlib.UUID, max_queued: int) -> None:
        self.uuid = uuid
        self._queue: asyncio.Queue[Frame | None] = asyncio.Queue()
        self._max_queued = max_queued
        self._connected = asyncio.Event()
        self._done = asyncio.Event()
        self._writer: asyncio.StreamWriter | None = None
        self.ended_by: str | None = None  # "local", "hangup", "eof", "error:<code>", "protocol: ..."
        self.dropped = 0  # audio frames dropped because the consumer fell behind
        self.frames_in = 0

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def ended(self) -> bool:
        return self._done.is_set()

    async def wait_connected(self) -> bool:
        """Wait until Asterisk connects for this uuid (True) or the stream ends first (False).

        Bound it with `asyncio.timeout(...)`: when the AGI command failed, nobody will ever connect.
        """
        connected = asyncio.ensure_future(self._connected.wait())
        done = asyncio.ensure_future(self._done.wait())
        try:
            await asyncio.wait((connected, done), return_when=asyncio.FIRST_COMPLETED)
        finally:
            connected.cancel()
            done.cancel()
        return self._connected.is_set()

    async def read(self) -> Frame | None:
        """Next audio or DTMF frame; None once the stream has ended."""
        if self._done.is_set() and self._queue.empty():
            return None
        frame = await self._queue.get()
        if frame is None:
            self._queue.put_nowait(None)  # keep returning None
        return frame

    def __aiter__(self) -> AsyncIterator[Frame]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Frame]:
        while (frame := await self.read()) is not None:
            yield frame

    async def send_audio(self, pcm: bytes) -> None:
        """Play 8 kHz slin to the caller (queued by Asterisk as it arrives: pace it yourself)."""
        if self._writer is None or self._done.is_set():
            return
        self._writer.write(encode_audio(pcm))
        with contextlib.suppress(ConnectionError):
            await self._writer.drain()

    async def close(self) -> None:
        """Send the hang-up frame (Asterisk ends the AudioSocket application; the call goes on)."""
        self._finish("local")
        writer, self._writer = self._writer, None
        if writer is None:
            return
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            writer.write(HANGUP_FRAME)
            await asyncio.wait_for(writer.drain(), 1.0)
        await _close_writer(writer)

    # -- server side

    def _attach(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._connected.set()

    def _push(self, frame: Frame) -> None:
        self.frames_in += 1
        if self._queue.qsize() >= self._max_queued:
            # The consumer stopped reading: drop the oldest frame rather than stall Asterisk.
            with contextlib.suppress(asyncio.QueueEmpty):
                self._queue.get_nowait()
                self.dropped += 1
        self._queue.put_nowait(frame)

    def _finish(self, reason: str) -> None:
        if self._done.is_set():
            return
        self.ended_by = reason
        self._done.set()
        self._queue.put_nowait(None)


class _Expectation:
    """`async with server.expect(uuid) as stream`: registered on entry, closed and forgotten on exit."""

    def __init__(self, server: AudioSocketServer, uuid: uuidlib.UUID) -> None:
        self._server = server
        self._uuid = uuid
        self._stream: AudioStream | None = None

    async def __aenter__(self) -> AudioStream:
        self._stream = self._server._register(self._uuid)
        return self._stream

    async def __aexit__(self, *exc: object) -> None:
        assert self._stream is not None
        self._server._unregister(self._uuid, self._stream)
        await self._stream.close()


class AudioSocketServer:
    """Accepts Asterisk's AudioSocket connections and routes each by its uuid frame.

    A connection whose uuid nobody expects, that sends no uuid within `uuid_timeout`, or that breaks
    the protocol is closed; no other stream is affected.
    """

    def __init__(self, *, uuid_timeout: float = 5.0, max_queued: int = 1000) -> None:
        self.uuid_timeout = uuid_timeout
        self.max_queued = max_queued
        self._expected: dict[uuidlib.UUID, AudioStream] = {}
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.host = ""
        self.port = 0
        self.rejected = 0

    @property
    def address(self) -> str:
        """`host:port` as the AudioSocket application wants it."""
        return f"{self.host}:{self.port}"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = await asyncio.start_server(self._accept, host, port)
        self.host = host
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("AudioSocket listening on %s", self.address)

    async def close(self) -> None:
        """Stop listening, end every stream, wait for the connection tasks."""
        if self._server is not None:
            self._server.close()
        for stream in list(self._expected.values()):
            await stream.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)

    def expect(self, uuid: uuidlib.UUID | str | None = None) -> _Expectation:
        """Register a uuid (a new random one when None) for the `async with` block."""
        value = uuid if isinstance(uuid, uuidlib.UUID) else uuidlib.UUID(uuid) if uuid else uuidlib.uuid4()
        return _Expectation(self, value)

    def _register(self, uuid: uuidlib.UUID) -> AudioStream:
        if uuid in self._expected:
            raise AudioSocketError(f"uuid {uuid} is already expected")
        stream = AudioStream(uuid, self.max_queued)
        self._expected[uuid] = stream
        return stream

    def _unregister(self, uuid: uuidlib.UUID, stream: AudioStream) -> None:
        if self._expected.get(uuid) is stream:
            del self._expected[uuid]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        peer = writer.get_extra_info("peername")
        stream: AudioStream | None = None  # set once this connection is attached to its stream
        try:
            try:
                first = await asyncio.wait_for(read_frame(reader), self.uuid_timeout)
            except (TimeoutError, AudioSocketError, ConnectionError) as exc:
                log.warning("AudioSocket connection from %s dropped before its uuid: %s", peer, exc or "timeout")
                self.rejected += 1
                return
            if first is None or first.kind != Kind.UUID:
                log.warning("AudioSocket connection from %s did not start with a uuid frame", peer)
                self.rejected += 1
                return
            wanted = self._expected.get(first.uuid)
            if wanted is None or wanted.connected or wanted.ended:
                log.warning("AudioSocket connection for unexpected uuid %s from %s", first.uuid, peer)
                self.rejected += 1
                with contextlib.suppress(ConnectionError, OSError):
                    writer.write(HANGUP_FRAME)
                    await writer.drain()
                return
            stream = wanted
            stream._attach(writer)
            await self._pump(reader, stream)
        except asyncio.CancelledError:
            if stream is not None:
                stream._finish("server closed")
            raise
        finally:
            if stream is None or stream.ended:
                if stream is not None:
                    stream._writer = None  # nothing more may be written to a closed connection
                await _close_writer(writer)
            if task is not None:
                self._tasks.discard(task)

    async def _pump(self, reader: asyncio.StreamReader, stream: AudioStream) -> None:
        """Move frames from the socket to the stream's queue until it ends."""
        while not stream.ended:
            try:
                frame = await read_frame(reader)
            except AudioSocketError as exc:
                log.warning("[%s] AudioSocket protocol error: %s", stream.uuid, exc)
                stream._finish(f"protocol: {exc}")
                return
            except (ConnectionError, OSError):
                stream._finish("eof")
                return
            if frame is None:
                stream._finish("eof")
                return
            if frame.kind in (Kind.AUDIO, Kind.DTMF):
                stream._push(frame)
            elif frame.kind == Kind.HANGUP:
                stream._finish("hangup")
                return
            elif frame.kind == Kind.ERROR:
                code = frame.error_code
                log.info("[%s] AudioSocket error frame from Asterisk (code %s)", stream.uuid, code)
                stream._finish(f"error:{code if code is not None else '-'}")
                return
            elif frame.kind == Kind.UUID:
                stream._finish("protocol: second uuid frame")
                return
            # other kinds (newer Asterisk audio formats ...) are skipped


async def _close_writer(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError, OSError, TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), 1.0)

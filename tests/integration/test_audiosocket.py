"""AudioSocketServer over real TCP, with a fake Asterisk that speaks the wire protocol."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from ivr.agi.audiosocket import AudioSocketServer, AudioStream
from ivr.agi.audiosocket_codec import (
    HANGUP_FRAME,
    AudioSocketError,
    ErrorCode,
    Frame,
    FrameParser,
    Kind,
    encode,
    encode_uuid,
)

FRAME = bytes(range(160)) * 2  # 320 bytes: one 20 ms slin frame
OPEN: list[asyncio.StreamWriter] = []  # fake Asterisk sockets, closed after each test


@pytest.fixture(autouse=True)
async def close_fake_peers() -> AsyncIterator[None]:
    yield
    while OPEN:
        writer = OPEN.pop()
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass


@pytest.fixture
async def server() -> AsyncIterator[AudioSocketServer]:
    s = AudioSocketServer(uuid_timeout=0.5)
    await s.start("127.0.0.1", 0)
    yield s
    await s.close()


class FakeAsterisk:
    """The Asterisk side of one AudioSocket connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, server: AudioSocketServer, uid: uuid.UUID | None = None) -> FakeAsterisk:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        OPEN.append(writer)
        peer = cls(reader, writer)
        if uid is not None:
            await peer.send(encode_uuid(uid))
        return peer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def received_until_eof(self) -> bytes:
        return await asyncio.wait_for(self.reader.read(), 2.0)

    def close(self) -> None:
        self.writer.close()


async def test_frames_flow_in_order_and_close_sends_hangup(server: AudioSocketServer) -> None:
    uid = uuid.uuid4()
    async with server.expect(uid) as stream:
        asterisk = await FakeAsterisk.connect(server, uid)
        async with asyncio.timeout(2):
            assert await stream.wait_connected()
        await asterisk.send(encode(Kind.AUDIO, FRAME) * 3 + encode(Kind.DTMF, b"7") + encode(Kind.AUDIO, FRAME))
        got = []
        async with asyncio.timeout(2):
            async for frame in stream:
                got.append(frame)
                if len(got) == 5:
                    break
        assert [f.kind for f in got] == [Kind.AUDIO] * 3 + [Kind.DTMF, Kind.AUDIO]
        assert got[0].payload == FRAME and got[3].digit == "7"
        await stream.close()
        assert stream.ended_by == "local"
    assert await asterisk.received_until_eof() == HANGUP_FRAME
    assert await stream.read() is None


async def test_leaving_the_block_closes_the_stream(server: AudioSocketServer) -> None:
    uid = uuid.uuid4()
    async with server.expect(uid) as stream:
        asterisk = await FakeAsterisk.connect(server, uid)
        async with asyncio.timeout(2):
            await stream.wait_connected()
    assert await asterisk.received_until_eof() == HANGUP_FRAME
    assert stream.ended


async def test_send_audio_reaches_asterisk_as_20ms_frames(server: AudioSocketServer) -> None:
    uid = uuid.uuid4()
    async with server.expect(uid) as stream:
        asterisk = await FakeAsterisk.connect(server, uid)
        async with asyncio.timeout(2):
            await stream.wait_connected()
        await stream.send_audio(bytes(800))
    frames = FrameParser().feed(await asterisk.received_until_eof())
    assert [(f.kind, len(f.payload)) for f in frames] == [
        (Kind.AUDIO, 320), (Kind.AUDIO, 320), (Kind.AUDIO, 160), (Kind.HANGUP, 0)]


async def test_unknown_uuid_is_hung_up_and_others_are_unaffected(server: AudioSocketServer) -> None:
    uid = uuid.uuid4()
    async with server.expect(uid) as stream:
        stranger = await FakeAsterisk.connect(server, uuid.uuid4())
        assert await stranger.received_until_eof() == HANGUP_FRAME
        asterisk = await FakeAsterisk.connect(server, uid)
        await asterisk.send(encode(Kind.AUDIO, FRAME))
        async with asyncio.timeout(2):
            frame = await stream.read()
        assert frame is not None and frame.payload == FRAME
    assert server.rejected == 1


@pytest.mark.parametrize(
    ("wire", "ended_by"),
    [
        (HANGUP_FRAME, "hangup"),
        (encode(Kind.ERROR, bytes([ErrorCode.HANGUP])), "error:1"),
        (encode(Kind.ERROR), "error:-"),
        (b"\x10\x00\x03abc", "protocol: audio frame of odd length 3"),
        (b"\x03\x00\x02ab", "protocol: DTMF frame of 2 bytes (expected 1)"),
        (encode_uuid(uuid.uuid4()), "protocol: second uuid frame"),
    ],
)
async def test_how_a_stream_ends(server: AudioSocketServer, wire: bytes, ended_by: str) -> None:
    uid, other = uuid.uuid4(), uuid.uuid4()
    async with server.expect(uid) as stream, server.expect(other) as bystander:
        asterisk = await FakeAsterisk.connect(server, uid)
        neighbour = await FakeAsterisk.connect(server, other)
        await asterisk.send(encode(Kind.AUDIO, FRAME) + wire + encode(Kind.AUDIO, FRAME))
        async with asyncio.timeout(2):
            frames = [f async for f in stream]
        assert len(frames) == 1  # the frame after the end is not delivered
        assert stream.ended_by == ended_by
        # the other call's stream still works
        await neighbour.send(encode(Kind.AUDIO, FRAME))
        async with asyncio.timeout(2):
            frame = await bystander.read()
        assert frame is not None and frame.kind == Kind.AUDIO
        assert not bystander.ended
    asterisk.close()


async def test_peer_closing_the_socket_ends_the_stream(server: AudioSocketServer) -> None:
    uid = uuid.uuid4()
    async with server.expect(uid) as stream:
        asterisk = await FakeAsterisk.connect(server, uid)
        await asterisk.send(encode(Kind.AUDIO, FRAME) + b"\x10\x01")  # then EOF mid-header
        asterisk.close()
        async with asyncio.timeout(2):
            frames = [f async for f in stream]
        assert len(frames) == 1
        assert stream.ended_by is not None and stream.ended_by.startswith("protocol")


async def test_clean_eof_without_hangup_frame(server: AudioSocketServer) -> None:
    # What Asterisk 22 does when the caller hangs up during AudioSocket: it just closes the socket.
    uid = uuid.uuid4()
    async with server.expect(uid) as stream:
        asterisk = await FakeAsterisk.connect(server, uid)
        await asterisk.send(encode(Kind.AUDIO, FRAME))
        asterisk.close()
        async with asyncio.timeout(2):
            assert len([f async for f in stream]) == 1
        assert stream.ended_by == "eof"


@pytest.mark.parametrize("first", [b"", encode(Kind.AUDIO, FRAME), b"\x01\x00\x02ab"])
async def test_connections_without_a_valid_uuid_first_are_closed(server: AudioSocketServer, first: bytes) -> None:
    peer = await FakeAsterisk.connect(server)
    if first:
        await peer.send(first)
    await peer.received_until_eof()  # closed by the server (after uuid_timeout for b"")
    assert server.rejected == 1


async def test_second_connection_for_a_connected_uuid_is_rejected(server: AudioSocketServer) -> None:
    uid = uuid.uuid4()
    async with server.expect(uid) as stream:
        first = await FakeAsterisk.connect(server, uid)
        async with asyncio.timeout(2):
            await stream.wait_connected()
        second = await FakeAsterisk.connect(server, uid)
        assert await second.received_until_eof() == HANGUP_FRAME
        await first.send(encode(Kind.AUDIO, FRAME))
        async with asyncio.timeout(2):
            assert await stream.read() is not None


async def test_expecting_a_uuid_twice_is_an_error(server: AudioSocketServer) -> None:
    uid = uuid.uuid4()
    async with server.expect(uid):
        with pytest.raises(AudioSocketError):
            async with server.expect(str(uid)):
                pass
    async with server.expect(uid):  # free again after the block
        pass


async def test_wait_connected_when_nobody_connects(server: AudioSocketServer) -> None:
    async with server.expect() as stream:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await stream.wait_connected()
        await stream.close()
        assert await stream.wait_connected() is False


async def test_slow_consumer_drops_oldest_frames_not_the_connection() -> None:
    server = AudioSocketServer(max_queued=10)
    await server.start("127.0.0.1", 0)
    try:
        uid = uuid.uuid4()
        async with server.expect(uid) as stream:
            asterisk = await FakeAsterisk.connect(server, uid)
            payloads = [bytes([n]) * 320 for n in range(30)]
            await asterisk.send(b"".join(encode(Kind.AUDIO, p) for p in payloads) + HANGUP_FRAME)
            async with asyncio.timeout(2):
                await stream._done.wait()
            got = [f.payload for f in stream_frames(stream)]
            assert stream.dropped == 20
            assert got == payloads[20:]
    finally:
        await server.close()


def stream_frames(stream: AudioStream) -> list[Frame]:
    """What is queued for the consumer right now (without waiting)."""
    out = []
    while not stream._queue.empty():
        item = stream._queue.get_nowait()
        if item is not None:
            out.append(item)
    return out


async def test_server_close_ends_live_streams() -> None:
    server = AudioSocketServer()
    await server.start("127.0.0.1", 0)
    uid = uuid.uuid4()
    async with server.expect(uid) as stream:
        asterisk = await FakeAsterisk.connect(server, uid)
        async with asyncio.timeout(2):
            await stream.wait_connected()
        await server.close()
        assert stream.ended
        assert await asterisk.received_until_eof() == HANGUP_FRAME

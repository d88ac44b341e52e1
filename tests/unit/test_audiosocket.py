"""The AudioSocket frame codec and parser (ivr.agi.audiosocket_codec), without sockets."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from ivr.agi.audiosocket_codec import (
    HANGUP_FRAME,
    AudioSocketError,
    ErrorCode,
    Frame,
    FrameParser,
    Kind,
    encode,
    encode_audio,
    encode_uuid,
    read_frame,
)
from ivr.errors import AgiError

UID = uuid.UUID("40a2d9d6-3b2c-4b8e-9a1c-6f1e2d3c4b5a")


def test_encode_header_is_kind_and_big_endian_length() -> None:
    assert encode(Kind.AUDIO, b"\x01\x02") == b"\x10\x00\x02\x01\x02"
    assert encode(Kind.HANGUP) == HANGUP_FRAME == b"\x00\x00\x00"
    assert encode(Kind.AUDIO, bytes(320))[:3] == b"\x10\x01\x40"
    assert encode_uuid(UID) == b"\x01\x00\x10" + UID.bytes


def test_encode_refuses_oversized_payloads_and_bad_kinds() -> None:
    with pytest.raises(ValueError):
        encode(Kind.AUDIO, bytes(0x10000))
    with pytest.raises(ValueError):
        encode(0x100)


def test_encode_audio_cuts_20ms_frames() -> None:
    wire = encode_audio(bytes(700) + b"\x01")  # odd byte dropped
    frames = FrameParser().feed(wire)
    assert [len(f.payload) for f in frames] == [320, 320, 60]
    assert {f.kind for f in frames} == {Kind.AUDIO}


def test_parser_handles_frames_split_anywhere() -> None:
    wire = encode_uuid(UID) + encode(Kind.AUDIO, bytes(range(200)) * 1 + bytes(120)) + encode(Kind.DTMF, b"5")
    wire += HANGUP_FRAME
    for cut in range(1, len(wire)):
        parser = FrameParser()
        frames = parser.feed(wire[:cut]) + parser.feed(wire[cut:])
        assert [f.kind for f in frames] == [Kind.UUID, Kind.AUDIO, Kind.DTMF, Kind.HANGUP]
        assert parser.pending == 0
    assert frames[0].uuid == UID
    assert frames[2].digit == "5"


def test_parser_byte_by_byte() -> None:
    parser = FrameParser()
    got: list[Frame] = []
    for b in encode(Kind.AUDIO, bytes(320)) * 3:
        got += parser.feed(bytes([b]))
    assert len(got) == 3


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (b"\x01\x00\x04abcd", "uuid frame of 4 bytes"),
        (b"\x03\x00\x02ab", "DTMF frame of 2 bytes"),
        (b"\x10\x00\x03abc", "odd length"),
        (b"\x00\x00\x01x", "hang-up frame with a payload"),
    ],
)
def test_parser_rejects_impossible_payloads(wire: bytes, message: str) -> None:
    with pytest.raises(AudioSocketError, match=message):
        FrameParser().feed(wire)


def test_audiosocket_error_is_an_agi_error() -> None:
    assert issubclass(AudioSocketError, AgiError)


def test_error_and_unknown_kinds_parse() -> None:
    frames = FrameParser().feed(encode(Kind.ERROR, bytes([ErrorCode.HANGUP])) + encode(0x11, bytes(640)))
    assert frames[0].kind == Kind.ERROR and frames[0].error_code == ErrorCode.HANGUP
    assert frames[1].kind == 0x11  # a newer audio kind: parsed, the server skips it
    assert Frame(Kind.ERROR).error_code is None


async def _reader(data: bytes) -> asyncio.StreamReader:
    r = asyncio.StreamReader()
    r.feed_data(data)
    r.feed_eof()
    return r


async def test_read_frame_clean_end_and_truncation() -> None:
    r = await _reader(encode(Kind.DTMF, b"#"))
    frame = await read_frame(r)
    assert frame is not None and frame.digit == "#"
    assert await read_frame(r) is None
    with pytest.raises(AudioSocketError, match="header"):
        await read_frame(await _reader(b"\x10\x01"))
    with pytest.raises(AudioSocketError, match="inside a frame"):
        await read_frame(await _reader(b"\x10\x01\x40" + bytes(100)))

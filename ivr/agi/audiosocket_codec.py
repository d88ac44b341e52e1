"""AudioSocket frame codec, sans sockets: Asterisk's wire format, a feed-bytes parser and a stream reader.

Wire format (Asterisk res_audiosocket): a 3-byte header, kind (1 byte) + payload length (16-bit big
endian), then the payload. The first frame carries the call's uuid, then come 20 ms frames of 8 kHz
16-bit little-endian signed linear audio (320 bytes) and (added upstream in 2025; 22.10 has it) one
frame per DTMF key. `00 00 00` is the hang-up frame. The server is ivr.agi.audiosocket.
"""

from __future__ import annotations

import asyncio
import struct
import uuid as uuidlib
from dataclasses import dataclass
from enum import IntEnum

from ivr.errors import AgiError

HEADER = struct.Struct(">BH")
HANGUP_FRAME = b"\x00\x00\x00"
MAX_PAYLOAD = 0xFFFF
AUDIO_CHUNK = 320  # 20 ms of 8 kHz slin: what Asterisk sends, and what we send back


class Kind(IntEnum):
    """Frame kinds. Unknown kinds are skipped (newer Asterisk versions add audio kinds)."""

    HANGUP = 0x00
    UUID = 0x01
    DTMF = 0x03
    AUDIO = 0x10
    ERROR = 0xFF


class ErrorCode(IntEnum):
    """Payload of an Asterisk-generated error frame."""

    NONE = 0x00
    HANGUP = 0x01  # the calling party hung up
    FRAME_FORWARDING = 0x02
    MEMORY = 0x04


class AudioSocketError(AgiError):
    """The AudioSocket peer broke the protocol (ends that one stream only)."""


@dataclass(frozen=True)
class Frame:
    """One decoded frame."""

    kind: int
    payload: bytes = b""

    @property
    def uuid(self) -> uuidlib.UUID:
        return uuidlib.UUID(bytes=self.payload)

    @property
    def digit(self) -> str:
        return self.payload.decode("ascii", "replace")

    @property
    def error_code(self) -> int | None:
        return self.payload[0] if self.payload else None


def encode(kind: int, payload: bytes = b"") -> bytes:
    """One frame on the wire."""
    if not 0 <= kind <= 0xFF:
        raise ValueError("frame kind is one byte")
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload longer than {MAX_PAYLOAD} bytes")
    return HEADER.pack(kind, len(payload)) + payload


def encode_uuid(value: uuidlib.UUID) -> bytes:
    return encode(Kind.UUID, value.bytes)


def encode_audio(pcm: bytes) -> bytes:
    """Audio to play to the caller, cut into 20 ms frames (an odd trailing byte is dropped)."""
    pcm = pcm[: len(pcm) - len(pcm) % 2]
    return b"".join(encode(Kind.AUDIO, pcm[i : i + AUDIO_CHUNK]) for i in range(0, len(pcm), AUDIO_CHUNK))


def validate(frame: Frame) -> Frame:
    """Raise AudioSocketError when a known kind has an impossible payload."""
    size = len(frame.payload)
    if frame.kind == Kind.UUID and size != 16:
        raise AudioSocketError(f"uuid frame of {size} bytes (expected 16)")
    if frame.kind == Kind.DTMF and size != 1:
        raise AudioSocketError(f"DTMF frame of {size} bytes (expected 1)")
    if frame.kind == Kind.AUDIO and size % 2:
        raise AudioSocketError(f"audio frame of odd length {size}")
    if frame.kind == Kind.HANGUP and size:
        raise AudioSocketError("hang-up frame with a payload")
    return frame


class FrameParser:
    """Feed bytes as they arrive; get complete, validated frames back. Raises AudioSocketError."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        out: list[Frame] = []
        while len(self._buf) >= HEADER.size:
            kind, length = HEADER.unpack_from(self._buf)
            if len(self._buf) < HEADER.size + length:
                break
            payload = bytes(self._buf[HEADER.size : HEADER.size + length])
            del self._buf[: HEADER.size + length]
            out.append(validate(Frame(kind, payload)))
        return out

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held back."""
        return len(self._buf)


async def read_frame(reader: asyncio.StreamReader) -> Frame | None:
    """Read one validated frame; None at a clean end of stream. Raises AudioSocketError mid-frame."""
    try:
        header = await reader.readexactly(HEADER.size)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise AudioSocketError("connection closed inside a frame header") from exc
        return None
    kind, length = HEADER.unpack(header)
    try:
        payload = await reader.readexactly(length) if length else b""
    except asyncio.IncompleteReadError as exc:
        raise AudioSocketError("connection closed inside a frame") from exc
    return validate(Frame(kind, payload))

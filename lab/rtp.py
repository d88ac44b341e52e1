"""RTP packet captures for SIPp's ``play_pcap_audio``: RFC 4733 digits and PCMU speech.

SIPp sends the UDP payloads of a pcap unchanged (only addresses and ports are rewritten), so every
press of a key must carry its own RTP timestamp: Asterisk takes an event with the timestamp of one it
has already ended for a retransmission and drops it, which is why replaying Debian's per-digit pcaps
loses the second "1" of "11". :class:`RtpTimeline` writes one pcap per step of a call, all in one RTP
stream (one SSRC, sequence numbers and timestamps carrying on), so digits and speech mix freely.
"""

from __future__ import annotations

import secrets
import struct
from dataclasses import dataclass
from pathlib import Path

from lab.audio import wav_data

PT_PCMU = 0
PT_EVENT = 101
EVENTS = {**{str(d): d for d in range(10)}, "*": 10, "#": 11, "A": 12, "B": 13, "C": 14, "D": 15}
FRAME_MS = 20
SAMPLES = 8 * FRAME_MS  # 8 kHz
ULAW_SILENCE = b"\xff" * SAMPLES


def _ipv4_checksum(header: bytes) -> int:
    total = int(sum(struct.unpack("!10H", header)))
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _frame(payload: bytes, sport: int = 40000, dport: int = 40002) -> bytes:
    """Ethernet + IPv4 + UDP around an RTP packet (127.0.0.1 -> 127.0.0.1; SIPp rewrites both)."""
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                     bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]))
    ip = ip[:10] + struct.pack("!H", _ipv4_checksum(ip)) + ip[12:]
    return b"\x00" * 12 + b"\x08\x00" + ip + udp


def write_pcap(path: Path, packets: list[tuple[float, bytes]]) -> None:
    """A classic little-endian pcap (Ethernet) of (seconds from start, RTP packet) pairs."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for t, rtp in packets:
        frame = _frame(rtp)
        sec, usec = int(t), round((t - int(t)) * 1_000_000)
        out.append(struct.pack("<IIII", 1_700_000_000 + sec, usec, len(frame), len(frame)) + frame)
    path.write_bytes(b"".join(out))


@dataclass(frozen=True)
class Capture:
    """One pcap to play and how long its playback lasts."""

    path: Path
    duration_ms: int


class RtpTimeline:
    """The caller's RTP stream, written step by step as pcaps into ``directory``.

    ``advance(ms)`` accounts for time in which the caller sends nothing (a pause), so timestamps
    follow wall-clock time as the scenario plays it.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.ssrc = int.from_bytes(secrets.token_bytes(4), "big")
        self.seq = secrets.randbelow(20000)
        self.ts = secrets.randbelow(1 << 30)
        self.count = 0

    def _rtp(self, pt: int, payload: bytes, marker: bool = False, ts: int | None = None) -> bytes:
        hdr = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, self.seq & 0xFFFF,
                          (self.ts if ts is None else ts) & 0xFFFFFFFF, self.ssrc)
        return hdr + payload

    def _save(self, name: str, packets: list[tuple[float, bytes]], duration_ms: int) -> Capture:
        self.count += 1
        path = self.directory / f"{self.count:03d}-{name}.pcap"
        write_pcap(path, packets)
        return Capture(path, duration_ms)

    def advance(self, ms: int) -> None:
        self.ts += 8 * ms

    def digit(self, digit: str, duration_ms: int = 160) -> Capture:
        """One key press: RFC 4733 packets every 20 ms for ``duration_ms``, then the end packet three
        times (same sequence number, as RFC 4733 2.5.1.4 says)."""
        event = EVENTS[digit.upper()]
        frames = max(1, duration_ms // FRAME_MS)
        start_ts, packets = self.ts, []
        for i in range(frames):
            payload = struct.pack("!BBH", event, 10, (i + 1) * SAMPLES)
            packets.append((i * FRAME_MS / 1000, self._rtp(PT_EVENT, payload, marker=i == 0, ts=start_ts)))
            self.seq += 1
        end = struct.pack("!BBH", event, 0x80 | 10, frames * SAMPLES)
        t_end = frames * FRAME_MS / 1000
        packets += [(t_end, self._rtp(PT_EVENT, end, ts=start_ts))] * 3
        self.seq += 1
        self.ts += frames * SAMPLES + SAMPLES
        return self._save(f"dtmf-{event}", packets, frames * FRAME_MS + FRAME_MS)

    def speech(self, wav: Path) -> Capture:
        """An 8 kHz mono mu-law WAV as PCMU packets, 20 ms each."""
        tag, channels, rate, data = wav_data(wav)
        if (tag, channels, rate) != (7, 1, 8000):
            raise ValueError(f"{wav}: need 8 kHz mono mu-law (see espeak_wav), got format {tag}, "
                             f"{channels} ch, {rate} Hz")
        packets = []
        for i in range(0, len(data), SAMPLES):
            chunk = data[i:i + SAMPLES].ljust(SAMPLES, b"\xff")
            packets.append((i / 8000, self._rtp(PT_PCMU, chunk, marker=i == 0)))
            self.seq += 1
            self.ts += SAMPLES
        frames = len(packets)
        return self._save("speech", packets, frames * FRAME_MS)

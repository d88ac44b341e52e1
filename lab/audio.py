"""Speech WAVs for SIPp callers: espeak-ng speaks, sox makes 8 kHz mu-law (what PCMU carries)."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
from pathlib import Path

import soundfile as sf


def _need(tool: str) -> str:
    exe = shutil.which(tool)
    if exe is None:
        raise RuntimeError(f"{tool} is not installed: run scripts/install-system")
    return exe


def espeak_wav(text: str, path: Path | str, voice: str = "en-us", speed: int = 150,
               pad_seconds: float = 3.0, pcm16: bool = False) -> Path:
    """Speak ``text`` into ``path``: 8 kHz mono mu-law WAV (what a SIPp caller sends) followed by
    ``pad_seconds`` of silence (Asterisk's silence detection needs frames to keep arriving after the
    speech). ``pcm16=True`` writes 16-bit signed PCM instead: the WAV flavour Asterisk can play."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    speech = subprocess.run([_need("espeak-ng"), "-v", voice, "-s", str(speed), "--stdout", text],
                            capture_output=True, check=True).stdout
    encoding = ["-e", "signed-integer", "-b", "16"] if pcm16 else ["-e", "u-law", "-b", "8"]
    subprocess.run([_need("sox"), "-t", "wav", "-", "-r", "8000", "-c", "1", *encoding,
                    str(path), "pad", "0", str(pad_seconds)], input=speech, capture_output=True, check=True)
    return path


def wav_data(path: Path | str) -> tuple[int, int, int, bytes]:
    """(format tag, channels, sample rate, sample bytes) of a WAV file; mu-law is format 7
    (the stdlib ``wave`` module reads PCM only)."""
    raw = Path(path).read_bytes()
    if raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise ValueError(f"{path}: not a WAV file")
    pos, fmt = 12, None
    while pos + 8 <= len(raw):
        cid, size = raw[pos:pos + 4], struct.unpack("<I", raw[pos + 4:pos + 8])[0]
        body = raw[pos + 8:pos + 8 + size]
        if cid == b"fmt ":
            fmt = struct.unpack("<HHI", body[:8])
        elif cid == b"data":
            if fmt is None:
                raise ValueError(f"{path}: data chunk before fmt chunk")
            return fmt[0], fmt[1], fmt[2], body
        pos += 8 + size + (size & 1)
    raise ValueError(f"{path}: no data chunk")


def ulaw_to_linear(data: bytes) -> bytes:
    """G.711 mu-law bytes -> 16-bit little-endian linear PCM, decoded by libsndfile: what Asterisk makes
    of a PCMU stream before AudioSocket or a recording sees it."""
    if not data:
        return b""
    pcm, _rate = sf.read(io.BytesIO(data), samplerate=8000, channels=1, format="RAW", subtype="ULAW",
                         dtype="int16")
    return bytes(pcm.astype("<i2").tobytes())


def wav_duration(path: Path | str) -> float:
    """Seconds of audio in an 8-bit mu-law/A-law or 16-bit PCM WAV."""
    tag, channels, rate, data = wav_data(path)
    width = 1 if tag in (6, 7) else 2
    return len(data) / (width * channels * rate)

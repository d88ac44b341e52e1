"""Decode recordings (libsndfile), resample them (soxr) and write the 8 kHz mono 16-bit WAV Asterisk plays."""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr

from ivr.errors import FlowError

TELEPHONE_RATE = 8000
# soxr "HQ": 20-bit precision, flat to 3.6 kHz, images and aliases > 140 dB down (bench/audio_bench.py)
RESAMPLE_QUALITY = "HQ"
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")  # what the libsndfile inside the soundfile wheel decodes
_BLOCK_FRAMES = 1 << 16  # decoded and resampled a block at a time: memory stays flat for long recordings
_WIDTHS = {"PCM_S8": 1, "PCM_U8": 1, "ULAW": 1, "ALAW": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4,
           "FLOAT": 4, "DOUBLE": 8}  # bytes per sample; compressed formats decode to 16-bit
Signal = npt.NDArray[np.float64]
_DIGESTS: dict[Path, tuple[int, int, str]] = {}


class AudioDecodeError(FlowError):
    """A recording could not be read; names the file (line 0: the whole file)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(str(path), 0, f"cannot decode audio: {reason}")
        self.path = path


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds: rate in Hz, channels, bytes per sample, length in seconds."""

    rate: int
    channels: int
    sample_width: int
    seconds: float


@dataclass(frozen=True)
class Decoded:
    """A whole recording as mono samples in [-1, 1) at its own rate."""

    rate: int
    samples: Signal


def audio_extensions() -> tuple[str, ...]:
    """File suffixes accepted as recordings (no external decoder needed for any of them)."""
    return AUDIO_SUFFIXES


def _reason(src: Path, exc: Exception) -> str:
    """libsndfile's own words, without the path (the error names it once) or its misleading 'does not exist'."""
    text = str(getattr(exc, "error_string", "") or exc).strip() or type(exc).__name__
    if text.startswith("File does not exist"):  # what it says of an MP3 it cannot parse
        return f"not a readable {src.suffix.lstrip('.').upper()} file"
    return text


@contextlib.contextmanager
def _decoding(src: Path) -> Iterator[sf.SoundFile]:
    """Open src for decoding; every failure, while opening or reading, becomes AudioDecodeError."""
    if not src.is_file():
        raise AudioDecodeError(src, "no such file")
    if src.suffix.lower() not in AUDIO_SUFFIXES:
        raise AudioDecodeError(src, f"unsupported format {src.suffix!r} (use {', '.join(AUDIO_SUFFIXES)})")
    try:
        with sf.SoundFile(src) as f:
            yield f
    except AudioDecodeError:
        raise
    except sf.SoundFileError as exc:  # libsndfile's errors, opening or mid-file (not the writer's OSError)
        raise AudioDecodeError(src, _reason(src, exc)) from exc


def _mono_blocks(f: sf.SoundFile) -> Iterator[Signal]:
    """The file's samples as float64 in [-1, 1), channels averaged, one block at a time."""
    while True:
        block = f.read(_BLOCK_FRAMES, dtype="float64", always_2d=True)
        if len(block) == 0:
            return
        mono: Signal = block.mean(axis=1)
        yield mono


def load(src: Path) -> Decoded:
    """Decode a whole recording (WAV in any PCM, float, μ-law or A-law flavour, FLAC, MP3, Ogg Vorbis/Opus)."""
    with _decoding(src) as f:
        blocks = list(_mono_blocks(f))
        return Decoded(f.samplerate, np.concatenate(blocks) if blocks else np.zeros(0))


def probe(path: Path) -> AudioInfo:
    """Format of a recording, from its header (raises AudioDecodeError on what libsndfile cannot open)."""
    with _decoding(path) as f:
        width = _WIDTHS.get(f.subtype, 2)
        return AudioInfo(f.samplerate, f.channels, width, f.frames / f.samplerate)


def duration_seconds(path: Path) -> float:
    """Length of a recording in seconds."""
    return probe(path).seconds


def is_telephone_wav(path: Path) -> bool:
    """True when the file is already what Asterisk plays natively: 8 kHz mono 16-bit PCM."""
    try:
        with wave.open(str(path), "rb") as w:
            return (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (TELEPHONE_RATE, 1, 2)
    except Exception:
        return False


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, hex; remembered while the file's mtime and size stay the same."""
    st = path.stat()
    known = _DIGESTS.get(path)
    if known and known[:2] == (st.st_mtime_ns, st.st_size):
        return known[2]
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            h.update(block)
    _DIGESTS[path] = (st.st_mtime_ns, st.st_size, h.hexdigest())
    return h.hexdigest()


def find_recordings(folder: Path) -> tuple[dict[str, Path], list[tuple[Path, str]]]:
    """Usable recordings in a folder by file stem, and (file, problem) for the unusable ones."""
    found: dict[str, Path] = {}
    problems: list[tuple[Path, str]] = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in AUDIO_SUFFIXES or path.name.startswith(".") or not path.is_file():
            continue
        if path.stem in found:
            problems.append((path, f"a second recording of {path.stem!r} (see {found[path.stem].name})"))
            continue
        try:
            probe(path)
        except AudioDecodeError as exc:
            problems.append((path, exc.reason))
            continue
        found[path.stem] = path
    return found, problems


def to_pcm16(x: Signal) -> bytes:
    """Samples in [-1, 1) → 16-bit little-endian PCM (rounded, clipped)."""
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype("<i2").tobytes()


@contextlib.contextmanager
def _atomic_wav(dst: Path, rate: int) -> Iterator[wave.Wave_write]:
    """A mono 16-bit WAV writer on a temp file beside dst, renamed over dst only when the block succeeds."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex}.tmp")
    try:
        with wave.open(str(tmp), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            yield w
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)


def write_wav_atomic(dst: Path, pcm16: bytes, rate: int = TELEPHONE_RATE) -> None:
    """Write mono 16-bit PCM to dst through a temp file in the same directory and a rename."""
    with _atomic_wav(dst, rate) as w:
        w.writeframes(pcm16)


def to_telephone_wav(src: Path, dst: Path) -> None:
    """Convert a recording to 8 kHz mono 16-bit PCM WAV at dst, atomically (blocking).

    Channels are averaged, then soxr band-limits and resamples; 8 kHz input is kept sample for sample.
    """
    with _decoding(src) as f, _atomic_wav(dst, TELEPHONE_RATE) as w:
        if f.samplerate == TELEPHONE_RATE:
            for x in _mono_blocks(f):
                w.writeframes(to_pcm16(x))
            return
        stream = soxr.ResampleStream(f.samplerate, TELEPHONE_RATE, 1, dtype="float64", quality=RESAMPLE_QUALITY)
        for x in _mono_blocks(f):
            w.writeframes(to_pcm16(stream.resample_chunk(x)))
        w.writeframes(to_pcm16(stream.resample_chunk(np.zeros(0), last=True)))

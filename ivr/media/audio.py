"""Decode recordings and write the 8 kHz mono 16-bit PCM WAV files Asterisk plays."""

from __future__ import annotations

import hashlib
import os
import uuid
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydub import AudioSegment
from pydub.utils import which

from ivr.errors import FlowError

TELEPHONE_RATE = 8000
_CUTOFF_HZ = 3600.0  # anti-aliasing low-pass for the 4 kHz Nyquist limit of telephone audio
Signal = npt.NDArray[np.float64]
AUDIO_SUFFIXES = (".wav", ".mp3", ".ogg")  # .mp3/.ogg decode only with ffmpeg
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


def audio_extensions() -> tuple[str, ...]:
    """File suffixes accepted as recordings: WAV always, MP3/OGG only when ffmpeg is installed."""
    return AUDIO_SUFFIXES if which("ffmpeg") else (".wav",)


def load(src: Path) -> AudioSegment:
    """Decode any supported recording (PCM WAV without ffmpeg; anything ffmpeg reads with it)."""
    if not src.is_file():
        raise AudioDecodeError(src, "no such file")
    if src.suffix.lower() not in audio_extensions():
        raise AudioDecodeError(src, f"unsupported format {src.suffix!r} (is ffmpeg installed?)")
    try:
        return AudioSegment.from_file(src)
    except Exception as exc:  # pydub raises CouldntDecodeError, IndexError, OSError ...
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        reason = lines[0] if lines else type(exc).__name__
        if len(lines) > 1:  # ffmpeg's own complaint comes last
            reason += f" ({lines[-1]})"
        raise AudioDecodeError(src, reason) from exc


def probe(path: Path) -> AudioInfo:
    """Format of a recording: from the WAV header when plain PCM, else by decoding it."""
    try:
        with wave.open(str(path), "rb") as w:
            rate = w.getframerate()
            return AudioInfo(rate, w.getnchannels(), w.getsampwidth(), w.getnframes() / rate)
    except Exception:  # wave raises Error, EOFError, RuntimeError ... on what it cannot parse
        seg = load(path)  # non-PCM or extensible WAV, MP3, OGG: decode, or raise AudioDecodeError
        return AudioInfo(seg.frame_rate, seg.channels, seg.sample_width, seg.duration_seconds)


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


def _as_mono_float(seg: AudioSegment) -> Signal:
    """Samples in [-1, 1), channels averaged (pydub has already made 8-bit signed, 24-bit 32-bit)."""
    dtype = {1: np.int8, 2: np.int16, 4: np.int32}[seg.sample_width]
    samples = np.frombuffer(seg.raw_data, dtype=dtype).astype(np.float64)
    samples /= float(2 ** (8 * seg.sample_width - 1))
    mono: Signal = samples.reshape(-1, seg.channels).mean(axis=1)
    return mono


def _low_pass(x: Signal, rate: int) -> Signal:
    """Blackman-windowed sinc low-pass at 3.6 kHz (FFT convolution, delay compensated)."""
    taps = int(rate / TELEPHONE_RATE * 64) | 1
    n = np.arange(taps) - taps // 2
    kernel = np.sinc(2 * _CUTOFF_HZ / rate * n) * np.blackman(taps)
    kernel /= kernel.sum()
    size = len(x) + taps - 1
    nfft = 1 << (size - 1).bit_length()
    y: Signal = np.fft.irfft(np.fft.rfft(x, nfft) * np.fft.rfft(kernel, nfft), nfft)[:size]
    return y[taps // 2 : taps // 2 + len(x)]


def _resample(x: Signal, rate: int) -> Signal:
    """Band-limit (when downsampling) and interpolate to 8 kHz."""
    if rate == TELEPHONE_RATE or len(x) == 0:
        return x
    if rate > TELEPHONE_RATE:
        x = _low_pass(x, rate)
    count = int(round(len(x) * TELEPHONE_RATE / rate))
    out: Signal = np.interp(np.arange(count) * (rate / TELEPHONE_RATE), np.arange(len(x)), x)
    return out


def write_wav_atomic(dst: Path, pcm16: bytes, rate: int = TELEPHONE_RATE) -> None:
    """Write mono 16-bit PCM to dst through a temp file in the same directory and a rename."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex}.tmp")
    try:
        with wave.open(str(tmp), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(pcm16)
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)


def to_telephone_wav(src: Path, dst: Path) -> None:
    """Convert a recording to 8 kHz mono 16-bit PCM WAV at dst, atomically (blocking)."""
    seg = load(src)
    x = _resample(_as_mono_float(seg), seg.frame_rate)
    pcm = np.clip(np.round(x * 32768.0), -32768, 32767).astype("<i2")
    write_wav_atomic(dst, pcm.tobytes())

"""The converter before soundfile + soxr (pydub decode, Blackman low-pass, linear interpolation), kept for
bench/audio_bench.py to compare against in the same run; needs pydub (and ffmpeg for MP3)."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ivr.media.audio import TELEPHONE_RATE, write_wav_atomic

Signal = npt.NDArray[np.float64]
_CUTOFF_HZ = 3600.0


def available() -> bool:
    """True when pydub is installed (it no longer is a dependency of ivr)."""
    return importlib.util.find_spec("pydub") is not None


def _load(src: Path):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # pydub imports audioop
        from pydub import AudioSegment
    return AudioSegment.from_file(src)


def _as_mono_float(seg) -> Signal:  # type: ignore[no-untyped-def]
    dtype = {1: np.int8, 2: np.int16, 4: np.int32}[seg.sample_width]
    samples = np.frombuffer(seg.raw_data, dtype=dtype).astype(np.float64)
    samples /= float(2 ** (8 * seg.sample_width - 1))
    mono: Signal = samples.reshape(-1, seg.channels).mean(axis=1)
    return mono


def _low_pass(x: Signal, rate: int) -> Signal:
    taps = int(rate / TELEPHONE_RATE * 64) | 1
    n = np.arange(taps) - taps // 2
    kernel = np.sinc(2 * _CUTOFF_HZ / rate * n) * np.blackman(taps)
    kernel /= kernel.sum()
    size = len(x) + taps - 1
    nfft = 1 << (size - 1).bit_length()
    y: Signal = np.fft.irfft(np.fft.rfft(x, nfft) * np.fft.rfft(kernel, nfft), nfft)[:size]
    return y[taps // 2 : taps // 2 + len(x)]


def _resample(x: Signal, rate: int) -> Signal:
    if rate == TELEPHONE_RATE or len(x) == 0:
        return x
    if rate > TELEPHONE_RATE:
        x = _low_pass(x, rate)
    count = int(round(len(x) * TELEPHONE_RATE / rate))
    out: Signal = np.interp(np.arange(count) * (rate / TELEPHONE_RATE), np.arange(len(x)), x)
    return out


def to_telephone_wav(src: Path, dst: Path) -> None:
    """What ivr.media.audio.to_telephone_wav did until soundfile + soxr replaced it."""
    seg = _load(src)
    x = _resample(_as_mono_float(seg), seg.frame_rate)
    pcm = np.clip(np.round(x * 32768.0), -32768, 32767).astype("<i2")
    write_wav_atomic(dst, pcm.tobytes())

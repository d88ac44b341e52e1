"""Telephone audio as numbers: 16-bit samples, 8→16 kHz resampling and fixed-size framing (numpy)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

TELEPHONE_RATE = 8000
MODEL_RATE = 16000
SAMPLE_BYTES = 2  # signed 16-bit little-endian, as Asterisk's slin and pocketsphinx expect
FRAME_MS = 20  # one RTP/AudioSocket packet
FRAME_BYTES_8K = TELEPHONE_RATE * FRAME_MS // 1000 * SAMPLE_BYTES  # 320

Int16Array = npt.NDArray[np.int16]
FloatArray = npt.NDArray[np.float64]


# ---------------------------------------------------------------- samples

def samples(pcm: bytes) -> Int16Array:
    """16-bit little-endian PCM bytes → int16 array (a trailing odd byte is ignored)."""
    usable = len(pcm) - len(pcm) % SAMPLE_BYTES
    return np.frombuffer(pcm, dtype="<i2", count=usable // SAMPLE_BYTES).astype(np.int16)


def to_bytes(x: npt.NDArray[np.floating] | Int16Array) -> bytes:
    """Round, clip to 16 bits and serialise little-endian."""
    return np.clip(np.rint(x), -32768, 32767).astype("<i2").tobytes()


def rms_dbfs(pcm: bytes) -> float:
    """Loudness of a chunk in dB relative to full scale (-inf dB for digital silence)."""
    x = samples(pcm).astype(np.float64)
    if x.size == 0:
        return float("-inf")
    power = float(np.mean(x * x))
    return 10.0 * float(np.log10(power / 32768.0**2)) if power > 0 else float("-inf")


def silence(seconds: float, rate: int = TELEPHONE_RATE) -> bytes:
    """Digital silence of the given length, 16-bit PCM."""
    return bytes(int(round(seconds * rate)) * SAMPLE_BYTES)


def duration(pcm: bytes, rate: int = TELEPHONE_RATE) -> float:
    """Length in seconds of 16-bit mono PCM."""
    return len(pcm) / (SAMPLE_BYTES * rate)


# ---------------------------------------------------------------- 8 kHz → 16 kHz

_HALF_TAPS = 16  # odd-phase taps each side: 64-tap half-band filter at 16 kHz, 2 ms look-ahead


def _odd_phase() -> FloatArray:
    """The odd-indexed taps of a Kaiser-windowed half-band low-pass (the even ones are 0 except h[0]=1)."""
    n = np.arange(-(2 * _HALF_TAPS - 1), 2 * _HALF_TAPS, 2, dtype=np.float64)  # -31, -29 ... 31
    window = np.kaiser(4 * _HALF_TAPS + 1, 8.0)[2 * _HALF_TAPS + n.astype(int)]
    taps: FloatArray = np.sinc(n / 2.0) * window
    return taps / float(taps.sum())  # unity gain at DC for the interpolated samples


_ODD = _odd_phase()


class Upsampler:
    """Streaming 2× interpolator (8 → 16 kHz): chunks in, chunks out, same result as one call.

    Each input sample is kept and a half-band-filtered sample is inserted after it, so nothing above
    the telephone band is invented. Output lags input by 16 samples (2 ms) until `flush`.
    """

    def __init__(self) -> None:
        self._buf: FloatArray = np.zeros(_HALF_TAPS, dtype=np.float64)
        self._odd = b""  # half a sample left over from a chunk of odd length

    def feed(self, pcm8k: bytes) -> bytes:
        """Append 8 kHz PCM, return the 16 kHz PCM now computable (4 bytes out per 2 in, lagged)."""
        if self._odd or len(pcm8k) % 2:
            pcm8k = self._odd + pcm8k
            self._odd = pcm8k[len(pcm8k) - len(pcm8k) % 2 :]
            pcm8k = pcm8k[: len(pcm8k) - len(self._odd)]
        x = samples(pcm8k).astype(np.float64)
        buf = np.concatenate((self._buf, x))
        count = len(buf) - 2 * _HALF_TAPS
        if count <= 0:
            self._buf = buf
            return b""
        odd = np.correlate(buf[1:], _ODD, mode="valid")[:count]
        out = np.empty(2 * count, dtype=np.float64)
        out[0::2] = buf[_HALF_TAPS : _HALF_TAPS + count]
        out[1::2] = odd
        self._buf = buf[count:]
        return to_bytes(out)

    def flush(self) -> bytes:
        """The lagging tail (the signal is taken to end in silence); the upsampler is then reset."""
        self._odd = b""
        out = self.feed(bytes(_HALF_TAPS * SAMPLE_BYTES))
        self._buf = np.zeros(_HALF_TAPS, dtype=np.float64)
        return out


def upsample(pcm8k: bytes) -> bytes:
    """Whole 8 kHz PCM → 16 kHz PCM of exactly twice the samples."""
    up = Upsampler()
    return up.feed(pcm8k) + up.flush()


def downsample(pcm16k: bytes) -> bytes:
    """16 kHz PCM → 8 kHz (half-band low-pass, then every other sample)."""
    x = samples(pcm16k).astype(np.float64)
    if x.size == 0:
        return b""
    kernel = np.zeros(4 * _HALF_TAPS - 1, dtype=np.float64)
    kernel[0::2] = _ODD / 2.0
    kernel[2 * _HALF_TAPS - 1] = 0.5
    y = np.convolve(x, kernel, mode="same")
    return to_bytes(y[0::2])


# ---------------------------------------------------------------- framing

class Reframer:
    """Regroups a byte stream into frames of exactly `size` bytes (network chunks rarely align)."""

    def __init__(self, size: int) -> None:
        if size <= 0:
            raise ValueError("frame size must be positive")
        self.size = size
        self._pending = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes; return every complete frame now available, oldest first."""
        self._pending += data
        whole = len(self._pending) - len(self._pending) % self.size
        if whole == 0:
            return []
        block = bytes(self._pending[:whole])
        del self._pending[:whole]
        return [block[i : i + self.size] for i in range(0, whole, self.size)]

    @property
    def pending(self) -> int:
        """Bytes held back waiting for the rest of a frame."""
        return len(self._pending)

    def flush(self, pad: bool = True) -> bytes:
        """The incomplete last frame, zero-padded to `size` when `pad` (b"" when nothing is held)."""
        if not self._pending:
            return b""
        tail = bytes(self._pending)
        self._pending.clear()
        return tail + bytes(self.size - len(tail)) if pad else tail


def frames(pcm: bytes, size: int = FRAME_BYTES_8K) -> Iterator[bytes]:
    """Split PCM into `size`-byte frames; the last one is zero-padded."""
    for i in range(0, len(pcm), size):
        chunk = pcm[i : i + size]
        yield chunk if len(chunk) == size else chunk + bytes(size - len(chunk))

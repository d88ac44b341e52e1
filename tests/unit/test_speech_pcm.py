"""8→16 kHz resampling and framing in ivr.speech.pcm."""

from __future__ import annotations

import numpy as np
import pytest

from ivr.speech import pcm


def tone(freq: float, seconds: float, rate: int = 8000, amplitude: float = 10000.0) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return pcm.to_bytes(amplitude * np.sin(2 * np.pi * freq * t))


def spectrum_db(data: bytes, rate: int, freq: float) -> float:
    x = pcm.samples(data).astype(np.float64)
    mag = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    f = np.fft.rfftfreq(len(x), 1 / rate)
    return float(20 * np.log10(mag[np.argmin(np.abs(f - freq))] + 1e-9))


def test_upsample_doubles_the_samples_and_keeps_a_tone() -> None:
    x = tone(1000, 1.0)
    y = pcm.upsample(x)
    assert len(y) == 2 * len(x)
    t = np.arange(16000) / 16000
    ref = 10000 * np.sin(2 * np.pi * 1000 * t)
    err = np.abs(pcm.samples(y)[100:-100].astype(np.float64) - ref[100:-100])
    assert err.max() < 5


def test_upsample_keeps_the_original_samples() -> None:
    x = tone(440, 0.2) + tone(2500, 0.2)
    y = pcm.samples(pcm.upsample(x))
    assert np.array_equal(y[0::2], pcm.samples(x))


def test_upsample_does_not_create_an_image_above_4khz() -> None:
    y = pcm.upsample(tone(3000, 1.0))
    assert spectrum_db(y, 16000, 3000) - spectrum_db(y, 16000, 5000) > 60


def test_streaming_upsampler_equals_one_shot_for_any_chunking() -> None:
    rng = np.random.default_rng(7)
    x = pcm.to_bytes(rng.normal(0, 3000, 4001))
    whole = pcm.upsample(x)
    up = pcm.Upsampler()
    out = bytearray()
    pos = 0
    while pos < len(x):
        n = int(rng.integers(0, 60)) * 2 + int(rng.integers(0, 2))  # odd sizes too
        out += up.feed(x[pos : pos + n])
        pos += n
    out += up.flush()
    assert bytes(out) == whole


def test_upsampler_can_be_reused_after_flush() -> None:
    up = pcm.Upsampler()
    a = up.feed(tone(500, 0.1)) + up.flush()
    b = up.feed(tone(500, 0.1)) + up.flush()
    assert a == b == pcm.upsample(tone(500, 0.1))


def test_downsample_inverts_upsample() -> None:
    x = tone(700, 0.5)
    back = pcm.samples(pcm.downsample(pcm.upsample(x))).astype(np.int64)
    assert np.abs(back[50:-50] - pcm.samples(x)[50:-50]).max() <= 2


def test_clipping_and_empty_input() -> None:
    assert pcm.upsample(b"") == b""
    assert pcm.downsample(b"") == b""
    assert pcm.samples(pcm.to_bytes(np.array([1e9, -1e9]))).tolist() == [32767, -32768]
    assert pcm.rms_dbfs(b"") == float("-inf")
    assert pcm.rms_dbfs(bytes(320)) == float("-inf")
    assert -4 < pcm.rms_dbfs(tone(1000, 0.1, amplitude=32767)) < -2


def test_reframer_regroups_unaligned_chunks() -> None:
    r = pcm.Reframer(4)
    assert r.feed(b"abc") == []
    assert r.pending == 3
    assert r.feed(b"defghij") == [b"abcd", b"efgh"]
    assert r.flush() == b"ij\x00\x00"
    assert r.flush() == b""
    with pytest.raises(ValueError):
        pcm.Reframer(0)


def test_frames_pads_the_last_one() -> None:
    chunks = list(pcm.frames(bytes(700)))
    assert [len(c) for c in chunks] == [320, 320, 320]
    assert pcm.duration(bytes(16000)) == 1.0
    assert len(pcm.silence(0.5)) == 8000

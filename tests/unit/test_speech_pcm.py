"""G.711 codecs, 8→16 kHz resampling and framing in ivr.speech.pcm."""

from __future__ import annotations

from collections.abc import Callable

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


Codec = Callable[[bytes], bytes]
ALL_SAMPLES = np.arange(-32768, 32768, dtype="<i2").tobytes()


@pytest.mark.parametrize(
    ("encode", "decode", "max_error"),
    [(pcm.linear_to_ulaw, pcm.ulaw_to_linear, 1024), (pcm.linear_to_alaw, pcm.alaw_to_linear, 1024)],
)
def test_g711_round_trip_error_is_within_one_quantisation_step(
    encode: Codec, decode: Codec, max_error: int,
) -> None:
    coded = encode(ALL_SAMPLES)
    assert len(coded) == 65536
    back = pcm.samples(decode(coded)).astype(np.int64)
    x = pcm.samples(ALL_SAMPLES).astype(np.int64)
    err = np.abs(back - x)
    assert err.max() <= max_error
    small = np.abs(x) < 256  # fine steps near zero
    assert err[small].max() <= 16


@pytest.mark.parametrize(
    ("encode", "decode"),
    [(pcm.linear_to_ulaw, pcm.ulaw_to_linear), (pcm.linear_to_alaw, pcm.alaw_to_linear)],
)
def test_g711_codes_are_stable_decode_encode_decode(encode: Codec, decode: Codec) -> None:
    every_code = bytes(range(256))
    once = decode(every_code)
    assert decode(encode(once)) == once


def test_ulaw_known_values() -> None:
    # 0xFF and 0x7F are the two zeros; 0x00 is the most negative, 0x80 the most positive.
    assert pcm.samples(pcm.ulaw_to_linear(b"\xff\x7f\x00\x80")).tolist() == [0, 0, -32124, 32124]
    assert pcm.linear_to_ulaw(pcm.to_bytes(np.array([0.0]))) == b"\xff"


def test_alaw_known_values() -> None:
    assert pcm.samples(pcm.alaw_to_linear(b"\xd5\x55\x2a\xaa")).tolist() == [8, -8, -32256, 32256]


def test_ulaw_matches_sox_where_sox_is_installed() -> None:
    import shutil
    import subprocess

    if shutil.which("sox") is None:
        pytest.skip("sox is not installed")
    out = subprocess.run(
        ["sox", "-t", "raw", "-r", "8000", "-e", "signed", "-b", "16", "-c", "1", "-", "-t", "raw",
         "-e", "mu-law", "-"], input=ALL_SAMPLES, capture_output=True, check=True,
    ).stdout
    decoded = pcm.samples(pcm.ulaw_to_linear(out)).astype(np.int64)
    ours = pcm.samples(pcm.ulaw_to_linear(pcm.linear_to_ulaw(ALL_SAMPLES))).astype(np.int64)
    # sox rounds at a few decision boundaries differently from G.711's reference code: never by more
    # than one step, and for under 1 % of inputs.
    assert np.mean(decoded != ours) < 0.01
    assert np.max(np.abs(decoded - ours)) <= 1024


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

"""End-of-speech detection (ivr.speech.endpoint) on synthetic voiced sound and silence."""

from __future__ import annotations

import numpy as np
import pytest

from ivr.speech import pcm
from ivr.speech.endpoint import EndpointConfig, Endpointer, EndReason

RATE = 8000
HANGOVER = {"webrtc": 0.14, "energy": 0.04}  # how long each detector keeps saying "speech" after it ends


def voice(seconds: float, pitch: float = 140.0) -> bytes:
    """A buzzy harmonic sound with a 4 Hz syllable rhythm: both detectors call it speech."""
    t = np.arange(int(seconds * RATE)) / RATE
    x = sum(np.sin(2 * np.pi * pitch * k * t) / k for k in range(1, 20))
    return pcm.to_bytes(5000 * x * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)))


def quiet(seconds: float, dbfs: float | None = None, seed: int = 0) -> bytes:
    if dbfs is None:
        return pcm.silence(seconds)
    rng = np.random.default_rng(seed)
    return pcm.to_bytes(rng.normal(0, 32768 * 10 ** (dbfs / 20), int(seconds * RATE)))


def run(audio: bytes, config: EndpointConfig | None = None, chunk: int = 320) -> tuple[Endpointer, bytes]:
    ep = Endpointer(config)
    out = bytearray()
    for i in range(0, len(audio), chunk):
        for c in ep.feed(audio[i : i + chunk]):
            out += c
        if ep.ended:
            break
    return ep, bytes(out)


@pytest.mark.parametrize("detector", ["webrtc", "energy"])
@pytest.mark.parametrize("background", [None, -55.0])
def test_speech_then_silence_ends_after_end_silence(detector: str, background: float | None) -> None:
    audio = quiet(0.5, background) + voice(1.0) + quiet(2.0, background, seed=1)
    ep, released = run(audio, EndpointConfig(detector=detector))
    assert ep.ended is EndReason.SILENCE
    assert ep.speech_start == pytest.approx(0.5, abs=0.06)
    assert ep.speech_end is not None
    assert 1.46 <= ep.speech_end <= 1.5 + HANGOVER[detector]
    assert ep.elapsed == pytest.approx(ep.speech_end + 0.6, abs=0.03)
    # what the decoder gets: lead-in 0.3 s + speech + trail 0.3 s
    assert ep.speech_start is not None
    assert pcm.duration(released) == pytest.approx(0.3 + (ep.speech_end - ep.speech_start) + 0.3, abs=0.03)


def test_release_is_lagged_so_trailing_silence_is_not_decoded() -> None:
    ep = Endpointer()
    released = 0.0
    for f in pcm.frames(quiet(0.4) + voice(2.0)):
        released += sum(pcm.duration(c) for c in ep.feed(f))
    # during speech, audio up to now - (end_silence - trail) has been handed over
    assert ep.in_speech
    assert released == pytest.approx(ep.elapsed - 0.3 - (ep.speech_start or 0) + 0.3, abs=0.05)


def test_pause_shorter_than_end_silence_does_not_end_the_utterance() -> None:
    audio = quiet(0.3) + voice(0.6) + quiet(0.45) + voice(0.6) + quiet(1.0)
    ep, _ = run(audio)
    assert ep.ended is EndReason.SILENCE
    assert ep.speech_end == pytest.approx(1.95 + 0.06, abs=0.08)


def test_longer_end_silence_setting() -> None:
    audio = quiet(0.3) + voice(0.6) + quiet(0.9) + voice(0.6) + quiet(2.0)
    ep, _ = run(audio, EndpointConfig(end_silence=1.0))
    assert ep.speech_end == pytest.approx(2.4 + 0.06, abs=0.08)
    ep, _ = run(audio, EndpointConfig(end_silence=0.6))
    assert ep.speech_end == pytest.approx(0.9 + 0.06, abs=0.08)


def test_no_input() -> None:
    ep, released = run(quiet(6.0, -50.0), EndpointConfig(no_input=3.0))
    assert ep.ended is EndReason.NO_INPUT
    assert ep.elapsed == pytest.approx(3.0, abs=0.021)
    assert released == b"" and ep.speech_start is None


def test_max_speech() -> None:
    ep, released = run(voice(5.0), EndpointConfig(max_speech=2.0))
    assert ep.ended is EndReason.MAX_SPEECH
    assert ep.elapsed == pytest.approx(2.0, abs=0.05)
    assert pcm.duration(released) == pytest.approx(ep.elapsed, abs=0.05)


def test_a_click_does_not_start_speech() -> None:
    ep, _ = run(quiet(0.5) + voice(0.06) + quiet(6.0))
    assert ep.ended is EndReason.NO_INPUT


def test_finish_while_speaking_releases_up_to_the_trail() -> None:
    ep = Endpointer()
    got = sum(pcm.duration(c) for f in pcm.frames(quiet(0.3) + voice(1.0) + quiet(0.2)) for c in ep.feed(f))
    got += sum(pcm.duration(c) for c in ep.finish())
    assert ep.ended is EndReason.STOPPED
    assert got == pytest.approx(0.3 + 1.0 + 0.2, abs=0.06)  # the 0.2 s of quiet is within the trail
    assert ep.finish() == [] and ep.feed(voice(0.1)) == []


def test_finish_before_speech() -> None:
    ep = Endpointer()
    ep.feed(quiet(0.5))
    assert ep.finish() == []
    assert ep.ended is EndReason.STOPPED and ep.speech_start is None


def test_chunking_does_not_matter() -> None:
    audio = quiet(0.5, -50.0) + voice(0.8) + quiet(1.5, -50.0)
    ep1, out1 = run(audio, chunk=320)
    ep2, out2 = run(audio, chunk=77)
    ep3, out3 = run(audio, chunk=len(audio))
    assert out1 == out2 == out3
    assert ep1.speech_start == ep2.speech_start == ep3.speech_start


def test_released_audio_is_the_input_audio() -> None:
    audio = quiet(0.5) + voice(0.8) + quiet(1.5)
    ep, out = run(audio)
    start = round(((ep.speech_start or 0) - 0.3) * RATE) * 2
    assert out == audio[start : start + len(out)]


@pytest.mark.parametrize(
    "kwargs",
    [{"detector": "magic"}, {"vad_mode": 4}, {"start_ratio": 0.0}, {"trail": 0.9},
     {"end_silence": 0.0}, {"no_input": -1.0}],
)
def test_bad_settings(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        EndpointConfig(**kwargs)  # type: ignore[arg-type]

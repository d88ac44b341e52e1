"""Real recognition with pocketsphinx of espeak-ng phrases at telephone quality (8 kHz μ-law)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache

import pytest

from ivr.errors import SpeechError
from ivr.speech import pcm
from ivr.speech.endpoint import EndpointConfig, EndReason
from ivr.speech.grammar import Grammar
from ivr.speech.intents import IntentMatcher, digits_of
from ivr.speech.pocketsphinx_rec import PocketsphinxRecognizer
from lab.audio import ulaw_to_linear

pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("sox") is None, reason="needs espeak-ng and sox",
)

MENU = Grammar.from_phrases({
    "balance": ["balance", "account balance", "how much do I owe", "why is my bill so high"],
    "payment": ["make a payment", "pay my bill"],
    "agent": ["agent", "representative", "talk to a person", "operator"],
    "hours": ["opening hours", "when are you open"],
})


@cache
def phone(text: str, voice: str = "en-us", speed: int = 160) -> bytes:
    """espeak-ng → 8 kHz μ-law (as a SIP phone sends it) → 16-bit linear, the way Asterisk hands it over."""
    wav = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text],
                         capture_output=True, check=True).stdout
    ulaw = subprocess.run(["sox", "-t", "wav", "-", "-r", "8000", "-c", "1", "-t", "raw", "-e", "mu-law", "-"],
                          input=wav, capture_output=True, check=True).stdout
    return ulaw_to_linear(ulaw)


def call(text: str, voice: str = "en-us", speed: int = 160, before: float = 1.0, after: float = 2.0) -> bytes:
    """The phrase between stretches of digital silence (what Asterisk sends for a silent RTP stream)."""
    return pcm.silence(before) + phone(text, voice, speed) + pcm.silence(after)


@pytest.fixture(scope="module")
def rec() -> Iterator[PocketsphinxRecognizer]:
    r = PocketsphinxRecognizer(max_workers=3)
    r.warm_up(1)
    yield r
    r.close()


@pytest.mark.parametrize(
    ("text", "voice", "intent"),
    [
        ("pay my bill", "en-us", "payment"),
        ("why is my bill so high", "en-us", "balance"),  # a synonym of "balance"
        ("how much do I owe", "en-gb", "balance"),
        ("talk to a person", "en-us", "agent"),
        ("representative", "en-gb", "agent"),
        ("when are you open", "en-us", "hours"),
    ],
)
async def test_whole_recording_to_intent(rec: PocketsphinxRecognizer, text: str, voice: str, intent: str) -> None:
    result = await rec.recognize(call(text, voice), MENU)
    assert result.text == text.lower()
    assert result.ended_by is EndReason.SILENCE
    assert 0.5 < result.confidence <= 1.0
    assert result.speech_start == pytest.approx(1.0, abs=0.2)
    match = IntentMatcher(MENU).match(result)
    assert match is not None and match.intent == intent and match.exact


async def test_streaming_20ms_frames_decides_soon_after_speech(rec: PocketsphinxRecognizer) -> None:
    audio = call("talk to a person", after=3.0)
    loud = [i for i, v in enumerate(pcm.samples(phone("talk to a person"))) if abs(v) > 328]  # -40 dBFS
    speech_end = 1.0 + (loud[-1] + 1) / 8000
    utt = rec.start(MENU)
    fed = 0.0
    for frame in pcm.frames(audio):
        assert not utt.finished
        utt.feed(frame)
        fed += 0.02
        if utt.finished:
            break
    assert utt.finished and utt.speech_started
    # end_silence 0.6 s after the VAD's last speech frame, which lags the real end by ~0.1 s
    assert 0.6 < fed - speech_end < 0.85
    result = await utt.result()
    assert result.text == "talk to a person" and result.ended_by is EndReason.SILENCE
    assert result.decode_seconds < 1.0
    utt.feed(bytes(320))  # frames after the decision are ignored


async def test_streaming_and_whole_recording_agree(rec: PocketsphinxRecognizer) -> None:
    audio = call("make a payment", "en-gb")
    utt = rec.start(MENU)
    for i in range(0, len(audio), 480):  # chunks need not be 20 ms
        utt.feed(audio[i : i + 480])
    streamed = await utt.result()
    whole = rec.recognize_sync(audio, MENU)
    assert streamed.text == whole.text == "make a payment"
    assert streamed.confidence == pytest.approx(whole.confidence)


async def test_out_of_grammar_speech_is_no_match(rec: PocketsphinxRecognizer) -> None:
    result = await rec.recognize(call("my internet is not working"), MENU)
    assert result.heard_speech
    assert IntentMatcher(MENU).match(result) is None


async def test_spoken_digits(rec: PocketsphinxRecognizer) -> None:
    grammar = Grammar.spoken_digits(4, 4)
    result = await rec.recognize(call("one two three four"), grammar)
    assert digits_of(result, grammar) == "1234"


async def test_no_input_needs_no_decoder(rec: PocketsphinxRecognizer) -> None:
    utt = rec.start(MENU, EndpointConfig(no_input=2.0))
    for frame in pcm.frames(pcm.silence(3.0)):
        utt.feed(frame)
        if utt.finished:
            break
    result = await utt.result()
    assert result.ended_by is EndReason.NO_INPUT and result.text == "" and not result.heard_speech


async def test_result_before_the_end_stops_listening(rec: PocketsphinxRecognizer) -> None:
    # e.g. the caller pressed a key while talking: decide with what was heard so far
    audio = call("why is my bill so high", after=0.0)
    utt = rec.start(MENU)
    for frame in pcm.frames(audio[: len(audio) // 2]):
        utt.feed(frame)
    assert utt.speech_started and not utt.finished
    result = await utt.result()
    assert result.ended_by is EndReason.STOPPED
    assert result.text in ("", "why is my bill so high")
    utt.feed(bytes(320))  # ignored
    assert await utt.result() == result


async def test_cancel_returns_the_decoder(rec: PocketsphinxRecognizer) -> None:
    utt = rec.start(MENU)
    for frame in pcm.frames(call("agent", after=0.0)):
        utt.feed(frame)
    utt.cancel()
    utt.cancel()
    with pytest.raises(asyncio.CancelledError):
        await utt.result()
    result = await rec.recognize(call("operator"), MENU)  # the pool still works
    assert result.text == "operator"


async def test_concurrent_utterances(rec: PocketsphinxRecognizer) -> None:
    texts = ["pay my bill", "operator", "opening hours"]

    async def listen(text: str) -> str:
        utt = rec.start(MENU)
        for frame in pcm.frames(call(text)):
            utt.feed(frame)
            if utt.finished:
                break
            await asyncio.sleep(0)
        return (await utt.result()).text

    assert await asyncio.gather(*(listen(t) for t in texts)) == texts


async def test_unknown_words_are_reported_and_refused(rec: PocketsphinxRecognizer) -> None:
    grammar = Grammar.from_phrases({"x": ["zorbulated flux"], "y": ["agent"]})
    assert rec.missing_words(grammar) == ["zorbulated"]
    assert rec.missing_words(MENU) == []
    with pytest.raises(SpeechError, match="zorbulated"):
        await rec.recognize(call("agent"), grammar)


async def test_closed_recognizer_refuses_work() -> None:
    r = PocketsphinxRecognizer(max_workers=1)
    r.close()
    with pytest.raises(SpeechError):
        r.start(MENU)
    with pytest.raises(SpeechError):
        await r.recognize(b"", MENU)

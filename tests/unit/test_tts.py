"""ivr.media.tts: real pyttsx3 and espeak-ng voices, and a renderer that keeps the event loop free."""

from __future__ import annotations

import asyncio
import logging
import shutil
import threading
import time
import wave
from pathlib import Path

import pytest

from ivr.media import audio, tts
from ivr.media.tts import EspeakSynthesizer, Pyttsx3Synthesizer, TtsError, TtsRenderer

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def wav_format(path: Path) -> tuple[int, int, int, float]:
    with wave.open(str(path), "rb") as w:
        return w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes() / w.getframerate()


class SlowFake:
    """Records which thread renders and how many renders overlap."""

    name = "fake"

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.active = 0
        self.max_active = 0
        self.threads: set[int] = set()
        self.texts: list[str] = []
        self._lock = threading.Lock()

    def identity(self, language: str) -> str:
        return f"fake:{language}"

    def render(self, text: str, language: str, dst: Path) -> None:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        self.threads.add(threading.get_ident())
        time.sleep(self.delay)
        audio.write_wav_atomic(dst, b"\x10\x00" * 22050, rate=22050)
        self.texts.append(text)
        with self._lock:
            self.active -= 1


@needs_espeak
def test_pyttsx3_voices_for_english_and_italian(tmp_path: Path) -> None:
    synth = Pyttsx3Synthesizer()
    assert synth.voice_for("en") == "gmw/en-us"
    assert synth.voice_for("it") == synth.voice_for("it-IT") == "roa/it"
    assert synth.voice_for("fr") == "roa/fr"  # found in the engine's own voice list
    with pytest.raises(TtsError, match="no voice"):
        synth.voice_for("xx")
    assert synth.identity("en") == "pyttsx3:gmw/en-us:165" != synth.identity("it")
    synth.render("Your balance is twenty dollars.", "en", tmp_path / "en.wav")
    synth.render("Il tuo saldo è di venti euro.", "it", tmp_path / "it.wav")
    for name in ("en.wav", "it.wav"):
        rate, channels, width, seconds = wav_format(tmp_path / name)
        assert (rate, channels, width) == (22050, 1, 2) and 1.0 < seconds < 5.0
    assert (tmp_path / "en.wav").read_bytes() != (tmp_path / "it.wav").read_bytes()


@needs_espeak
def test_pyttsx3_empty_text_gives_short_silence_instead_of_hanging(tmp_path: Path) -> None:
    Pyttsx3Synthesizer(timeout=5).render("   ", "en", tmp_path / "e.wav")
    assert wav_format(tmp_path / "e.wav")[3] == pytest.approx(0.2)


@needs_espeak
def test_espeak_command_renders_and_reports_a_bad_voice(tmp_path: Path) -> None:
    synth = EspeakSynthesizer()
    assert (synth.voice_for("en"), synth.voice_for("it_IT")) == ("en-us", "it")
    assert synth.identity("it") == "espeak-ng:it:165"
    synth.render("-5 is a number, not an option.", "en", tmp_path / "a.wav")  # text via stdin, not argv
    rate, channels, _width, seconds = wav_format(tmp_path / "a.wav")
    assert (rate, channels) == (22050, 1) and seconds > 1.0
    with pytest.raises(TtsError, match="espeak-ng failed"):
        EspeakSynthesizer(voices={"en": "zz"}).render("hello", "en", tmp_path / "b.wav")
    with pytest.raises(TtsError, match="not installed"):
        EspeakSynthesizer(binary="no-such-espeak-binary")


@needs_espeak
async def test_twenty_concurrent_real_renders_all_finish(tmp_path: Path) -> None:
    renderer = TtsRenderer(Pyttsx3Synthesizer())
    jobs = [renderer.render(f"Your order {i} has shipped.", "en" if i % 2 else "it", tmp_path / f"{i}.wav")
            for i in range(20)]
    started = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*jobs), timeout=60)
    elapsed = time.perf_counter() - started
    await renderer.close()
    for i in range(20):
        rate, channels, width, seconds = wav_format(tmp_path / f"{i}.wav")
        assert (rate, channels, width) == (8000, 1, 2) and seconds > 1.0
    assert listing(tmp_path) == sorted(f"{i}.wav" for i in range(20))  # no temp files left
    assert elapsed < 20  # measured ~0.04 s per sentence here


async def test_renders_run_one_at_a_time_off_the_event_loop(tmp_path: Path) -> None:
    fake = SlowFake(delay=0.02)
    renderer = TtsRenderer(fake)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    beat = asyncio.create_task(ticker())
    await asyncio.gather(*(renderer.render(f"t{i}", "en", tmp_path / f"{i}.wav") for i in range(20)))
    beat.cancel()
    await renderer.close()
    assert fake.max_active == 1 and len(fake.texts) == 20
    assert threading.get_ident() not in fake.threads and len(fake.threads) == 1
    assert ticks >= 20  # 20 x 20 ms of rendering did not block the loop
    assert all(wav_format(tmp_path / f"{i}.wav")[:3] == (8000, 1, 2) for i in range(20))


async def test_close_finishes_queued_work_then_refuses(tmp_path: Path) -> None:
    fake = SlowFake(delay=0.05)
    renderer = TtsRenderer(fake)
    pending = [asyncio.create_task(renderer.render(f"t{i}", "en", tmp_path / f"{i}.wav")) for i in range(3)]
    await asyncio.sleep(0)
    await renderer.close()
    await asyncio.gather(*pending)
    assert len(fake.texts) == 3
    with pytest.raises(TtsError, match="closed"):
        await renderer.render("late", "en", tmp_path / "late.wav")


async def test_a_failing_synthesiser_surfaces_and_cleans_up(tmp_path: Path) -> None:
    class Broken(SlowFake):
        def render(self, text: str, language: str, dst: Path) -> None:
            dst.write_bytes(b"half")
            raise TtsError("boom")

    renderer = TtsRenderer(Broken())
    with pytest.raises(TtsError, match="boom"):
        await renderer.render("x", "en", tmp_path / "x.wav")
    await renderer.close()
    assert listing(tmp_path) == []


@needs_espeak
def test_default_prefers_pyttsx3_and_falls_back_to_espeak(monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ivr.tts")
    assert isinstance(tts.default_synthesizer(), Pyttsx3Synthesizer)
    assert "text to speech: pyttsx3" in caplog.text

    def broken(*_args: object, **_kwargs: object) -> None:
        raise TtsError("pyttsx3 failed to initialise: no driver")

    monkeypatch.setattr(tts, "Pyttsx3Synthesizer", broken)
    caplog.clear()
    assert isinstance(tts.default_synthesizer(), EspeakSynthesizer)
    assert "falling back to the espeak-ng command" in caplog.text and "espeak-ng:en-us" in caplog.text

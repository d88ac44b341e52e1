"""Text to speech: pyttsx3 (one engine thread) or espeak-ng, rendered off the event loop to 8 kHz WAV."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ivr.errors import IvrError
from ivr.media.audio import to_telephone_wav, write_wav_atomic

log = logging.getLogger("ivr.tts")

DEFAULT_RATE = 165  # words per minute: a little slower than espeak's 175, clearer on the phone
PYTTSX3_VOICES = {"en": "gmw/en-us", "it": "roa/it"}  # voice ids pyttsx3 lists for espeak-ng
ESPEAK_VOICES = {"en": "en-us", "it": "it"}  # names for `espeak-ng -v`


class TtsError(IvrError):
    """Speech could not be synthesised (engine missing, no voice for a language, timeout)."""


class Synthesizer(Protocol):
    """A blocking text-to-speech engine; identity() names everything that changes its audio."""

    name: str

    def identity(self, language: str) -> str: ...

    def render(self, text: str, language: str, dst: Path) -> None: ...


def base_language(language: str) -> str:
    """'it-IT' / 'it_it' -> 'it'."""
    return language.strip().lower().replace("_", "-").split("-")[0]


def _write_silence(dst: Path, seconds: float = 0.2) -> None:
    """Empty text: engines hang (pyttsx3) or read stdin (espeak-ng); write silence instead."""
    write_wav_atomic(dst, b"\0\0" * int(22050 * seconds), rate=22050)


@dataclass
class _Job:
    text: str
    voice: str
    rate: int
    dst: Path
    done: concurrent.futures.Future[None]


class _EngineThread:
    """The one thread in the process that touches pyttsx3 (espeak-ng's library is process-global)."""

    _lock = threading.Lock()
    _instance: _EngineThread | None = None

    @classmethod
    def shared(cls, timeout: float = 10.0) -> _EngineThread:
        with cls._lock:  # a dead thread (failed init) is replaced; a stuck one is waited on again
            if cls._instance is None or not cls._instance.thread.is_alive():
                cls._instance = cls()
            engine = cls._instance
        try:
            engine._ready.result(timeout)
        except Exception as exc:  # TimeoutError (stuck in init) or whatever init raised
            raise TtsError(f"pyttsx3 failed to initialise: {exc!r}") from exc
        return engine

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self.voices: dict[str, str] = {}  # voice id -> its first language code
        self._ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self.thread = threading.Thread(target=self._run, name="pyttsx3-engine", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            import pyttsx3
            import pyttsx3.drivers.espeak as espeak_driver
            from pyttsx3.drivers import _espeak

            espeak_driver.print = lambda *_a, **_k: None  # silence its "Audio saved to"
            engine: Any = pyttsx3.init()
            for v in engine.getProperty("voices"):
                self.voices[str(v.id)] = str(v.languages[0]) if v.languages else ""
        except BaseException as exc:
            self._ready.set_exception(exc)
            return
        self._ready.set_result(None)
        while True:
            job = self.jobs.get()
            if not job.done.set_running_or_notify_cancel():
                continue
            try:
                for _attempt in range(3):
                    if self._speak(engine, _espeak, job):
                        break
                else:
                    raise TtsError(f"pyttsx3 wrote no audio for {job.text[:40]!r}")
                job.done.set_result(None)
            except BaseException as exc:
                job.done.set_exception(exc)

    @staticmethod
    def _speak(engine: Any, espeak: Any, job: _Job) -> bool:
        """One try. espeak-ng runs its commands (voice and rate changes too) in its own thread, and
        pyttsx3's runAndWait cancels the new utterance if that thread is still busy: wait it out."""
        job.dst.unlink(missing_ok=True)
        engine.setProperty("voice", job.voice)
        engine.setProperty("rate", job.rate)
        espeak.Synchronize()
        deadline = time.monotonic() + 2.0
        while espeak.IsPlaying() and time.monotonic() < deadline:
            time.sleep(0.002)
        engine.proxy._driver._stopping = False  # a stale flag would cancel this utterance too
        engine.save_to_file(job.text, str(job.dst))
        engine.runAndWait()
        return job.dst.is_file() and job.dst.stat().st_size > 44


class Pyttsx3Synthesizer:
    """pyttsx3 over espeak-ng; every instance feeds the same engine thread, one job at a time."""

    name = "pyttsx3"

    def __init__(self, voices: Mapping[str, str] | None = None, rate: int = DEFAULT_RATE,
                 timeout: float = 30.0) -> None:
        self._engine = _EngineThread.shared()
        self._voices = dict(PYTTSX3_VOICES if voices is None else voices)
        self.rate = rate
        self.timeout = timeout

    def voice_for(self, language: str) -> str:
        lang = base_language(language)
        wanted = self._voices.get(language.lower()) or self._voices.get(lang)
        if wanted in self._engine.voices:
            return wanted
        for voice_id, code in sorted(self._engine.voices.items()):
            if code.lower() == lang or code.lower().startswith(lang + "-"):
                return voice_id  # an unknown id would silently keep the previous voice
        raise TtsError(f"pyttsx3 has no voice for language {language!r}")

    def identity(self, language: str) -> str:
        return f"{self.name}:{self.voice_for(language)}:{self.rate}"

    def render(self, text: str, language: str, dst: Path) -> None:
        if not text.strip():
            return _write_silence(dst)
        job = _Job(text, self.voice_for(language), self.rate, dst, concurrent.futures.Future())
        self._engine.jobs.put(job)
        try:
            job.done.result(self.timeout)
        except concurrent.futures.TimeoutError as exc:
            job.done.cancel()
            raise TtsError(f"pyttsx3 took over {self.timeout:g} s for {text[:40]!r}") from exc


class EspeakSynthesizer:
    """`espeak-ng -w` in a subprocess per render: no shared state, safe from any thread."""

    name = "espeak-ng"

    def __init__(self, voices: Mapping[str, str] | None = None, rate: int = DEFAULT_RATE,
                 binary: str = "espeak-ng", timeout: float = 30.0) -> None:
        found = shutil.which(binary)
        if found is None:
            raise TtsError(f"{binary} is not installed")
        self.binary = found
        self._voices = dict(ESPEAK_VOICES if voices is None else voices)
        self.rate = rate
        self.timeout = timeout

    def voice_for(self, language: str) -> str:
        return self._voices.get(language.lower()) or self._voices.get(base_language(language)) or language

    def identity(self, language: str) -> str:
        return f"{self.name}:{self.voice_for(language)}:{self.rate}"

    def render(self, text: str, language: str, dst: Path) -> None:
        if not text.strip():
            return _write_silence(dst)
        cmd = [self.binary, "-v", self.voice_for(language), "-s", str(self.rate), "-w", str(dst), "--stdin"]
        try:
            subprocess.run(cmd, input=text.encode(), capture_output=True, timeout=self.timeout, check=True)
        except subprocess.CalledProcessError as exc:
            raise TtsError(f"espeak-ng failed: {exc.stderr.decode(errors='replace').strip()}") from exc
        except subprocess.TimeoutExpired as exc:
            raise TtsError(f"espeak-ng took over {self.timeout:g} s") from exc


def default_synthesizer() -> Synthesizer:
    """pyttsx3 when it initialises, else espeak-ng; logs which one speaks."""
    try:
        synth: Synthesizer = Pyttsx3Synthesizer()
    except TtsError as exc:
        log.warning("text to speech: %s; falling back to the espeak-ng command", exc)
        synth = EspeakSynthesizer()
    log.info("text to speech: %s (en voice %s)", synth.name, synth.identity("en"))
    return synth


class TtsRenderer:
    """Async front: one queue and one worker thread for renders and conversions."""

    def __init__(self, synthesizer: Synthesizer | None = None) -> None:
        self.synthesizer = synthesizer if synthesizer is not None else default_synthesizer()
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="tts")
        self._closed = False

    def identity(self, language: str) -> str:
        return self.synthesizer.identity(language)

    async def render(self, text: str, language: str, dst: Path) -> None:
        """Speak text into dst as 8 kHz mono 16-bit WAV (written atomically)."""
        await self._submit(self._render_blocking, text, language, dst)

    async def convert(self, src: Path, dst: Path) -> None:
        """Convert a recording into dst as 8 kHz mono 16-bit WAV."""
        await self._submit(to_telephone_wav, src, dst)

    async def close(self) -> None:
        """Refuse new work, let queued work finish, stop the worker thread."""
        self._closed = True
        await asyncio.to_thread(self._pool.shutdown, wait=True)

    async def _submit(self, fn: Any, *args: Any) -> None:
        if self._closed:
            raise TtsError("the TTS renderer is closed")
        await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def _render_blocking(self, text: str, language: str, dst: Path) -> None:
        dst.parent.mkdir(parents=True, exist_ok=True)
        raw = dst.with_name(f".{dst.stem}.{uuid.uuid4().hex}.raw.wav")
        try:
            self.synthesizer.render(text, language, raw)
            to_telephone_wav(raw, dst)
        finally:
            raw.unlink(missing_ok=True)

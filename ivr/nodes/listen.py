"""Play a prompt and take the caller's answer by keypad or by voice, whichever comes first.

One place for it, used by `menu` and `gather`:
- a key pressed during the prompt stops it and wins;
- then the caller is listened to (`stream`: over AudioSocket, frames decoded as they arrive, the stream
  closed as soon as the recogniser decides; a key frame ends listening at once and wins; `record`:
  RECORD FILE then recognise; `typed`: scripted callers type what they say);
- without speech (no speech service, mode off, no model for the caller's language) it is the keypad:
  the prompt, then a wait for a key. A language without a model hears "please use your keypad" once.

Barge-in: in `stream` mode the prompt itself is played over the AudioSocket while the caller is listened
to (`speech.barge_in`, on by default), so speaking stops it as a key does. Where its audio cannot be read
locally (not in the prompt cache) it is played by Asterisk (STREAM FILE): keys barge in, speech comes after.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid as uuidlib
import wave
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ivr.agi.audiosocket import AudioStream
from ivr.agi.audiosocket_codec import Kind
from ivr.channel import DTMF_KEYS
from ivr.flows.prompt_ref import PromptRef
from ivr.speech.endpoint import EndReason
from ivr.speech.grammar import Grammar
from ivr.speech.recognizer import Recognition, Recognizer, Utterance
from ivr.speech.service import FEATURE, SpeechService

if TYPE_CHECKING:
    from ivr.flows.context import NodeContext

log = logging.getLogger("ivr.speech")

USE_KEYPAD = PromptRef.parse("speech-use-keypad")
SIM_LISTEN_VAR = "IVR_SIM_LISTEN"  # typed mode: the scripted caller's next answer ("key:1", "say:my balance")
CONNECT_SECONDS = 3.0  # Asterisk connects to the AudioSocket server within this, or we give up listening
KEEPALIVE_SECONDS = 0.5  # Asterisk ends AudioSocket after 2 s without a frame either way
SILENT_FRAME = bytes(320)
PLAY_CHUNK = 1600  # prompt audio goes out in 100 ms pieces ...
PLAY_LEAD = 0.1  # ... this far ahead of real time (what is still queued in Asterisk plays on after a barge-in)


@dataclass(frozen=True)
class Heard:
    """What came back: a key (`via="dtmf"`), speech (`via="speech"`, maybe not understood), or nothing."""

    via: str  # dtmf, speech, timeout
    key: str = ""
    recognition: Recognition | None = None

    @property
    def text(self) -> str:
        return self.recognition.text if self.recognition is not None else ""


@dataclass(frozen=True)
class Ear:
    """Speech is possible on this call: the service and the recogniser for the caller's language."""

    service: SpeechService
    recognizer: Recognizer | None  # None in typed mode


def service_of(ctx: NodeContext) -> SpeechService | None:
    found = ctx.services.features.get(FEATURE)
    return found if isinstance(found, SpeechService) else None


async def ear_for(ctx: NodeContext) -> Ear | None:
    """Speech for this call, or None: keypad only (the caller hears why once per call)."""
    service = service_of(ctx)
    if service is None or service.mode == "off":
        return None
    recognizer = await service.recognizer_for(ctx.language)
    if recognizer is None:
        if not any(e.kind == "speech" and e.detail.get("unavailable") for e in ctx.call.journey):
            ctx.call.record(ctx.node_id, "speech", unavailable=ctx.language)
            await keypad_hint(ctx)
        return None
    return Ear(service, None if service.mode == "typed" else recognizer)


async def keypad_hint(ctx: NodeContext) -> None:
    """"Please use your keypad": a key pressed during it is kept for the prompt that follows."""
    if key := await ctx.play(USE_KEYPAD, DTMF_KEYS):
        ctx.call.typeahead += key


async def listen(
    ctx: NodeContext, prompt: PromptRef | None, *, ear: Ear | None, grammar: Grammar | None, wait: float,
    extra: Mapping[str, str] | None = None, escape: str = DTMF_KEYS,
) -> Heard:
    """Play `prompt` and take one answer. `ear`/`grammar` None: keypad only. `escape`: keys that stop the prompt."""
    streaming = ear is not None and grammar is not None and ear.recognizer is not None \
        and ear.service.mode == "stream" and ear.service.audiosocket is not None
    if streaming and escape and ear is not None and ear.service.settings.barge_in and not ctx.call.typeahead:
        audio = await _prompt_audio(ctx, prompt, extra)
        if audio is not None:
            assert ear.recognizer is not None and grammar is not None
            heard = await _stream(ctx, ear.service, ear.recognizer, grammar, wait, audio)
            if heard is not None:
                return heard
            ear = None  # AudioSocket did not connect: the keypad, this time
    key = await ctx.play(prompt, escape, extra)
    if key:
        return Heard("dtmf", key)
    if ear is None or grammar is None:
        key = await ctx.channel.wait_digit(wait)
        return Heard("dtmf", key) if key else Heard("timeout")
    if ear.service.mode == "typed" or ear.recognizer is None:
        return await _typed(ctx)
    if streaming:
        heard = await _stream(ctx, ear.service, ear.recognizer, grammar, wait)
        if heard is None:
            key = await ctx.channel.wait_digit(wait)
            return Heard("dtmf", key) if key else Heard("timeout")
        return heard
    return await _record(ctx, ear.service, ear.recognizer, grammar, wait)


# ------------------------------------------------------------------------------------------ typed


async def _typed(ctx: NodeContext) -> Heard:
    """The simulator's caller: the next scripted answer arrives as a channel variable."""
    answer = await ctx.channel.get_var(SIM_LISTEN_VAR) or ""
    kind, _, value = answer.partition(":")
    if kind == "key" and value:
        return Heard("dtmf", value[0])
    if kind == "say":
        return Heard("speech", recognition=Recognition(value, 1.0, speech_start=0.0, speech_end=0.0, raw=value))
    return Heard("timeout")


# ------------------------------------------------------------------------------------------ stream


async def _prompt_audio(
    ctx: NodeContext, prompt: PromptRef | None, extra: Mapping[str, str] | None,
) -> tuple[bytes, list[str]] | None:
    """The prompt as 8 kHz 16-bit PCM read from the prompt cache, with its names for the journey; or None."""
    if prompt is None:
        return b"", []
    store = ctx.services.prompts
    cache, asterisk_dir = getattr(store, "cache_dir", None), getattr(store, "asterisk_dir", None)
    if not isinstance(cache, Path) or asterisk_dir is None:
        return None
    pieces = await ctx.resolve(prompt, extra)
    base = str(asterisk_dir).rstrip("/") + "/"
    pcm: list[bytes] = []
    for path, _ in pieces:
        if not path.startswith(base):
            return None
        audio = await asyncio.to_thread(_read_pcm, cache / (path[len(base):] + ".wav"))
        if audio is None:
            return None
        pcm.append(audio)
    return b"".join(pcm), [i.name or d for i, (_, d) in zip(prompt.items, pieces, strict=True)]


async def _stream(
    ctx: NodeContext, service: SpeechService, recognizer: Recognizer, grammar: Grammar, wait: float,
    prompt: tuple[bytes, list[str]] = (b"", []),
) -> Heard | None:
    """Listen over AudioSocket; the prompt (8 kHz PCM) is played over the same socket and stops when the caller
    speaks or presses a key. None: Asterisk did not connect (nothing was played)."""
    server = service.audiosocket
    assert server is not None
    audio, names = prompt
    prompt_seconds = len(audio) / 16000
    endpoint = dataclasses.replace(service.settings.endpoint, no_input=wait + prompt_seconds)
    utterance = recognizer.start(grammar, endpoint)
    key, connected = "", False
    async with server.expect() as stream:
        app = asyncio.create_task(ctx.channel.exec_app("AudioSocket", f"{stream.uuid},{service.address}"))
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CONNECT_SECONDS):
                    connected = await stream.wait_connected()
            if connected:
                if names:
                    ctx.call.record(ctx.node_id, "prompt", prompts=names, via="audiosocket")
                player = asyncio.create_task(_play(stream, audio))
                try:
                    key = await _pump(stream, utterance, wait + prompt_seconds, endpoint.max_speech, player)
                finally:
                    player.cancel()
            await stream.close()  # Asterisk ends AudioSocket and EXEC returns (-1 when the caller hung up)
            await app  # a hang-up surfaces as CallEnded here or at the next command
        finally:
            if not app.done():  # only when something failed or the call is being torn down
                app.cancel()
    if not connected:
        log.warning("[%s] AudioSocket did not connect (%s): keypad only for this prompt",
                    ctx.channel.uniqueid, service.address)
        utterance.cancel()
        return None
    if key:
        utterance.cancel()
        return Heard("dtmf", key)
    recognition = await utterance.result()
    if audio and recognition.speech_start is not None and recognition.speech_start < prompt_seconds:
        ctx.call.record(ctx.node_id, "barge-in", at=round(recognition.speech_start, 2))
    return Heard("speech" if recognition.heard_speech else "timeout", recognition=recognition)


async def _pump(stream: AudioStream, utterance: Utterance, wait: float, max_speech: float,
                player: asyncio.Task[None] | None = None) -> str:
    """Feed frames until the recogniser decides, a key arrives (returned), the stream ends, or time is up.

    Wall-clock limits as well: a caller who sends no audio produces no frames at all.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not utterance.finished:
        limit = wait if not utterance.speech_started else wait + max_speech
        remaining = started + limit + 0.5 - loop.time()
        if remaining <= 0:
            return ""
        try:
            frame = await asyncio.wait_for(stream.read(), remaining)
        except TimeoutError:
            return ""
        if frame is None:
            return ""
        if frame.kind == Kind.DTMF:
            digit = frame.digit
            if digit in DTMF_KEYS:
                return digit
            continue
        utterance.feed(frame.payload)
        if utterance.speech_started and player is not None and not player.done():
            player.cancel()  # barge-in: the caller talks over the prompt
    return ""


async def _play(stream: AudioStream, prompt: bytes = b"") -> None:
    """Play `prompt` in real time (a little ahead), then keep the socket alive with silence."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for offset in range(0, len(prompt), PLAY_CHUNK):
        await stream.send_audio(prompt[offset:offset + PLAY_CHUNK])
        ahead = start + (offset + PLAY_CHUNK) / 16000 - PLAY_LEAD - loop.time()
        if ahead > 0:
            await asyncio.sleep(ahead)
    while not stream.ended:
        await stream.send_audio(SILENT_FRAME)
        await asyncio.sleep(KEEPALIVE_SECONDS)


# ------------------------------------------------------------------------------------------ record


async def _record(
    ctx: NodeContext, service: SpeechService, recognizer: Recognizer, grammar: Grammar, wait: float,
) -> Heard:
    name = uuidlib.uuid4().hex
    local = service.record_dir / f"{name}.wav"
    endpoint = dataclasses.replace(service.settings.endpoint, no_input=wait)
    recording = await ctx.channel.record(
        f"{service.record_asterisk_dir}/{name}", fmt="wav", escape=DTMF_KEYS,
        max_seconds=wait + endpoint.max_speech, silence_seconds=max(2.0, endpoint.end_silence * 3), beep=False)
    try:
        if recording.ended_by == "dtmf" and recording.digit:
            return Heard("dtmf", recording.digit)
        pcm = await asyncio.to_thread(_read_pcm, local)
    finally:
        with contextlib.suppress(OSError):
            local.unlink()
    if pcm is None:
        log.warning("[%s] recording %s is missing or not 8 kHz 16-bit mono", ctx.channel.uniqueid, local)
        return Heard("timeout")
    recognition = await recognizer.recognize(pcm, grammar, endpoint)
    if recognition.ended_by == EndReason.NO_INPUT or not recognition.heard_speech:
        return Heard("timeout", recognition=recognition)
    return Heard("speech", recognition=recognition)


def _read_pcm(path: Path) -> bytes | None:
    try:
        with wave.open(str(path), "rb") as w:
            if w.getframerate() != 8000 or w.getsampwidth() != 2 or w.getnchannels() != 1:
                return None
            return w.readframes(w.getnframes())
    except (OSError, wave.Error, EOFError):
        return None


# ------------------------------------------------------------------------------------------ confirm

YES_NO = Grammar.from_phrases({
    "yes": ["yes", "yeah", "yep", "correct", "that's right", "right", "yes please", "that is right"],
    "no": ["no", "nope", "wrong", "no it isn't", "that's wrong", "no that's wrong"],
})
HEARD = PromptRef.parse("speech-heard")
IS_THAT_RIGHT = PromptRef.parse("speech-is-that-right")


async def confirm(ctx: NodeContext, ear: Ear | None, *, text: str = "", digits: str = "",
                  wait: float = 5.0) -> bool:
    """"I heard <text or digits>, is that right?" — yes by voice or 1; no, 2, anything else or silence: False."""
    from ivr.speech.intents import IntentMatcher

    key = await ctx.play(HEARD, DTMF_KEYS)
    if not key and text:
        key = await ctx.play(PromptRef.parse({"text": text}), DTMF_KEYS)
    if not key and digits:
        key = await ctx.say_core("digits", digits, DTMF_KEYS)
    heard = Heard("dtmf", key) if key else await listen(
        ctx, IS_THAT_RIGHT, ear=ear, grammar=YES_NO, wait=wait)
    if heard.via == "speech" and heard.recognition is not None:
        threshold = ear.service.settings.min_confidence if ear is not None else 0.5
        found = IntentMatcher(YES_NO, threshold=threshold).match(heard.recognition)
        accepted = found is not None and found.intent == "yes"
    else:
        accepted = heard.key == "1"
    ctx.call.record(ctx.node_id, "confirm", accepted=accepted, via=heard.via)
    return accepted

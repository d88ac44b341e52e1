"""The recogniser contract: capabilities, a streaming per-utterance session, and what a recognition returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ivr.speech.endpoint import EndpointConfig, EndReason
from ivr.speech.grammar import Grammar


@dataclass(frozen=True)
class Alternative:
    """A runner-up hypothesis."""

    text: str
    confidence: float


@dataclass(frozen=True)
class Recognition:
    """What the caller said, as far as the recogniser can tell.

    text: what the engine heard and stands behind, normalised ("" = nothing: no-input or no-match, see
    `ended_by` and `heard_speech`); pocketsphinx only ever returns a complete sentence of the grammar,
    vosk may return part of one. confidence: 0..1, comparable across utterances of one engine, not a
    calibrated probability (see each engine's notes). Times are seconds since listening began.
    """

    text: str
    confidence: float
    alternatives: tuple[Alternative, ...] = ()
    ended_by: EndReason = EndReason.SILENCE
    speech_start: float | None = None
    speech_end: float | None = None
    decode_seconds: float = 0.0  # CPU-side time spent decoding after the end was detected
    raw: str = ""  # the engine's best path even when it was not a grammar sentence (for logs)

    @property
    def heard_speech(self) -> bool:
        return self.speech_start is not None

    @property
    def speech_seconds(self) -> float:
        if self.speech_start is None or self.speech_end is None:
            return 0.0
        return max(0.0, self.speech_end - self.speech_start)


NO_INPUT = Recognition(text="", confidence=0.0, ended_by=EndReason.NO_INPUT)


class Utterance(Protocol):
    """One listening turn. Feed audio as it arrives; stop feeding once `finished`; then await `result`.

    `feed` never blocks the event loop (decoding runs in a worker thread). `result()` may be awaited
    before `finished` (e.g. the caller pressed a key or hung up): it then ends the turn with what it has.
    `cancel()` drops the turn without a result. Audio fed after the end is ignored.
    """

    def feed(self, pcm8k: bytes) -> None: ...

    @property
    def finished(self) -> bool:
        """The endpointer decided: end of speech, no input, or too long."""
        ...

    @property
    def speech_started(self) -> bool:
        """The caller has started talking (use it to stop a prompt: barge-in)."""
        ...

    async def result(self) -> Recognition: ...

    def cancel(self) -> None: ...


class Recognizer(Protocol):
    """A speech engine. Implementations: `PocketsphinxRecognizer` (default, en-US), `VoskRecognizer`."""

    name: str
    languages: frozenset[str]  # BCP-47 primary tags or tags like "en-US" the engine has a model for
    supports_grammar: bool  # phrase lists constrain what it hears (else it transcribes freely)
    streaming: bool  # decodes while audio arrives (else all at the end)

    def missing_words(self, grammar: Grammar) -> list[str]:
        """Words of the grammar the engine cannot recognise (not in its dictionary); [] when all are fine."""
        ...

    def start(self, grammar: Grammar, endpoint: EndpointConfig | None = None) -> Utterance:
        """Begin listening for one utterance constrained by `grammar`."""
        ...

    async def recognize(
        self, pcm8k: bytes, grammar: Grammar, endpoint: EndpointConfig | None = None,
    ) -> Recognition:
        """Recognise the first utterance in a whole recording (8 kHz 16-bit mono PCM)."""
        ...

    def close(self) -> None:
        """Release models and worker threads."""
        ...

"""Vosk (Kaldi) recogniser over a model directory given in the configuration; grammar mode per prompt.

Vosk is only used with an explicit model directory: `vosk.Model(lang=...)` downloads models at run
time, which this service must never do. A model supports grammars only when it ships a dynamic graph
(`graph/HCLr.fst` + `graph/Gr.fst`, as the small models do); with a static `HCLG.fst` the phrase list is
ignored by Kaldi and the recogniser transcribes freely (`supports_grammar` tells which).

Confidence is the mean of Kaldi's per-word confidences (lattice posteriors, 0..1).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ivr.errors import SpeechError
from ivr.speech.endpoint import EndpointConfig
from ivr.speech.grammar import Grammar, normalize
from ivr.speech.pcm import TELEPHONE_RATE
from ivr.speech.recognizer import Recognition
from ivr.speech.streaming import Hypothesis, StreamingUtterance, recognize_blocking

log = logging.getLogger("ivr.speech")


def check_model_dir(model_dir: Path) -> None:
    """Raise SpeechError unless `model_dir` looks like a Vosk model (am/ and graph/ or HCLG.fst)."""
    if not model_dir.is_dir():
        raise SpeechError(f"vosk model directory {model_dir} does not exist")
    has_am = (model_dir / "am" / "final.mdl").is_file() or (model_dir / "final.mdl").is_file()
    has_graph = (model_dir / "graph").is_dir() or (model_dir / "HCLG.fst").is_file()
    if not (has_am and has_graph):
        raise SpeechError(f"{model_dir} is not a vosk model directory (no am/final.mdl or graph/)")


def has_dynamic_graph(model_dir: Path) -> bool:
    """Whether the model can be constrained by a phrase list at run time."""
    return (model_dir / "graph" / "HCLr.fst").is_file() and (model_dir / "graph" / "Gr.fst").is_file()


class VoskRecognizer:
    """`Recognizer` over one Vosk model directory, for the languages it is configured for.

    Loading the model takes seconds and hundreds of MB: build one per model at start-up, off the loop.
    """

    name = "vosk"
    streaming = True

    def __init__(
        self, model_dir: str | Path, *, languages: Iterable[str], max_workers: int = 4,
        endpoint: EndpointConfig | None = None, log_level: int = -1,
    ) -> None:
        try:
            import vosk  # imported here: loading the library is not free, and only this engine needs it
        except ImportError as exc:
            raise SpeechError("the vosk engine needs the `vosk` extra: pip install 'ivr[vosk]'") from exc

        self.model_dir = Path(model_dir)
        check_model_dir(self.model_dir)
        self.languages = frozenset(languages)
        if not self.languages:
            raise SpeechError("a vosk model needs the languages it recognises (speech.vosk_languages)")
        self.supports_grammar = has_dynamic_graph(self.model_dir)
        self.endpoint = endpoint or EndpointConfig()
        self._vosk: Any = vosk
        vosk.SetLogLevel(log_level)
        try:
            self._model = vosk.Model(model_path=str(self.model_dir))
        except Exception as exc:  # vosk raises a bare Exception("Failed to create a model")
            raise SpeechError(f"cannot load the vosk model in {self.model_dir}: {exc}") from exc
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers, thread_name_prefix="ivr-vosk")
        self._closed = False

    def missing_words(self, grammar: Grammar) -> list[str]:
        return sorted(w for w in grammar.words if self._model.vosk_model_find_word(w) < 0)

    def start(self, grammar: Grammar, endpoint: EndpointConfig | None = None) -> StreamingUtterance:
        if self._closed:
            raise SpeechError("recogniser is closed")
        return StreamingUtterance(lambda: self._session(grammar), self._executor, endpoint or self.endpoint)

    async def recognize(
        self, pcm8k: bytes, grammar: Grammar, endpoint: EndpointConfig | None = None,
    ) -> Recognition:
        if self._closed:
            raise SpeechError("recogniser is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, recognize_blocking, lambda: self._session(grammar), pcm8k,
            endpoint or self.endpoint,
        )

    def recognize_sync(
        self, pcm8k: bytes, grammar: Grammar, endpoint: EndpointConfig | None = None,
    ) -> Recognition:
        """`recognize` for scripts and worker threads (blocks)."""
        return recognize_blocking(lambda: self._session(grammar), pcm8k, endpoint or self.endpoint)

    def close(self) -> None:
        self._closed = True
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _session(self, grammar: Grammar) -> _VoskSession:
        known = [p for p in grammar.phrases if all(self._model.vosk_model_find_word(w) >= 0 for w in p.split())]
        if not known:
            raise SpeechError("no phrase of the grammar is in the vosk model's vocabulary")
        try:
            if self.supports_grammar:
                rec = self._vosk.KaldiRecognizer(
                    self._model, TELEPHONE_RATE, json.dumps(known, ensure_ascii=False),
                )
            else:
                rec = self._vosk.KaldiRecognizer(self._model, TELEPHONE_RATE)
            rec.SetWords(True)
        except Exception as exc:
            raise SpeechError(f"vosk could not start: {exc}") from exc
        return _VoskSession(rec, grammar)


class _VoskSession:
    """One KaldiRecognizer for one utterance (worker thread only)."""

    def __init__(self, rec: Any, grammar: Grammar) -> None:
        self._rec = rec
        self._grammar = grammar
        self._parts: list[dict[str, Any]] = []

    def accept(self, pcm8k: bytes) -> None:
        if pcm8k and self._rec.AcceptWaveform(pcm8k):
            # Kaldi's own endpointer closed a segment: keep it, ours decides when the turn ends.
            self._parts.append(json.loads(self._rec.Result()))

    def finish(self) -> Hypothesis:
        self._parts.append(json.loads(self._rec.FinalResult()))
        words: list[tuple[str, float]] = []
        for part in self._parts:
            for w in part.get("result", []):
                word = str(w.get("word", ""))
                if word and word != "[unk]":
                    words.append((word, float(w.get("conf", 0.0))))
        raw = " ".join(str(p.get("text", "")) for p in self._parts).strip()
        if not words:
            return Hypothesis("", 0.0, raw=raw)
        text = normalize(" ".join(w for w, _ in words))
        confidence = sum(c for _, c in words) / len(words)
        return Hypothesis(text, max(0.0, min(1.0, confidence)), raw=raw)

    def abort(self) -> None:
        self._parts.clear()

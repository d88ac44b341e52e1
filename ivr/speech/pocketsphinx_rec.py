"""The default recogniser: pocketsphinx's bundled US-English model, one JSGF grammar per prompt.

Measured facts this module is built on (bench/speech_bench.py reproduces them):
- the model is 16 kHz: telephone audio is upsampled 8 → 16 kHz first (decoding 8 kHz fails);
- only the speech is decoded, with ~0.3 s of context each side (the endpointer's lead-in and trail):
  seconds of silence around an utterance make the grammar search return nothing or a wrong phrase;
- digital silence (exact zeros, as Asterisk sends for a silent RTP stream) ruins the features: a
  little Gaussian noise (`dither_dbfs`, default -45 dBFS) is added before decoding;
- a best path that does not reach the grammar's final state is a partial phrase: it is reported as
  no match (`text == ""`, the path in `raw`).

Confidence is a heuristic: the best path's acoustic score per 10 ms frame, normalised by pocketsphinx
against the best senone of each frame (0 = the grammar path is as good as anything the model could
have heard), mapped through a logistic curve (`confidence_center`, `confidence_scale`) so that 0.5 sits
at -3.2. Measured on 672 espeak-ng telephone clips (4 voices, 3 speeds, clean and -50 dBFS noise):
at threshold 0.5, 86 % of in-grammar phrases are accepted and right, 2 % accepted and wrong, and 4 % of
out-of-grammar phrases slip through (most out-of-grammar speech already ends as "no match": a partial
path); at 0.3 the figures are 91 %, 3 %, 10 %. Use it as the "ask again" threshold, not as a probability.
Spoken digits are weak with this model on telephone audio (~20 % of 4-digit strings right with a free
digit loop, ~45 % with the exact length): prefer DTMF for numbers, or a phrase grammar of the numbers
the backend expects.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import os
import threading
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from pocketsphinx import Decoder, get_model_path

from ivr.errors import SpeechError
from ivr.speech.endpoint import EndpointConfig
from ivr.speech.grammar import Grammar
from ivr.speech.pcm import MODEL_RATE, Upsampler, samples, to_bytes
from ivr.speech.recognizer import Alternative, Recognition
from ivr.speech.streaming import Hypothesis, StreamingUtterance, recognize_blocking

_FILLERS = frozenset({"<s>", "</s>", "<sil>", "[NOISE]", "[SPEECH]"})
_MAX_SEARCHES = 32  # compiled grammars kept per decoder
_MAX_ALTERNATIVES = 3
_NBEST_SCAN = 12


def default_model() -> tuple[str, str]:
    """(acoustic model dir, dictionary) of the US-English model shipped inside the pocketsphinx wheel."""
    root = get_model_path()
    return os.path.join(root, "en-us", "en-us"), os.path.join(root, "en-us", "cmudict-en-us.dict")


class PocketsphinxRecognizer:
    """`Recognizer` over pocketsphinx. Thread-safe; decoders are pooled (one per concurrent utterance).

    Audio is endpointed as it streams in. By default (`incremental=False`) the speech is decoded in one
    go when the endpointer fires, with cepstral mean normalisation computed on that utterance alone:
    deterministic, independent of earlier callers, and it costs ~0.02 s of CPU per second of speech after
    the end. `incremental=True` decodes while the caller speaks, which needs live normalisation carried
    over from the decoder's previous utterances (the model's initial mean is far from telephone audio:
    measured 146/180 with it against 169/180 carried over or per-utterance).
    """

    name = "pocketsphinx"
    languages = frozenset({"en", "en-US"})
    supports_grammar = True
    streaming = False  # see `incremental`

    def __init__(
        self, *, hmm: str | None = None, dictionary: str | None = None,
        extra_words: Mapping[str, str] | None = None, max_workers: int = 4,
        endpoint: EndpointConfig | None = None, dither_dbfs: float = -45.0,
        confidence_center: float = -3.2, confidence_scale: float = 0.3, incremental: bool = False,
    ) -> None:
        default_hmm, default_dict = default_model()
        self._config: dict[str, Any] = {
            "hmm": hmm or default_hmm, "dict": dictionary or default_dict, "lm": None,
            "samprate": MODEL_RATE, "loglevel": "FATAL",
        }
        self._extra_words = dict(extra_words or {})
        self.endpoint = endpoint or EndpointConfig()
        self.dither = 32768.0 * 10 ** (dither_dbfs / 20) if dither_dbfs > -120 else 0.0
        self.confidence_center = confidence_center
        self.confidence_scale = confidence_scale
        self.incremental = incremental
        self.streaming = incremental
        self._idle: list[_PooledDecoder] = []
        self._pool_lock = threading.Lock()
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers, thread_name_prefix="ivr-asr")
        self._closed = False

    # ------------------------------------------------------------ Recognizer

    def missing_words(self, grammar: Grammar) -> list[str]:
        """Words not in the dictionary (blocks ~0.2 s the first time: it may load a decoder)."""
        decoder = self._acquire()
        try:
            return sorted(w for w in grammar.words if decoder.decoder.lookup_word(w) is None)
        finally:
            self._release(decoder)

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

    def warm_up(self, count: int = 1) -> None:
        """Load `count` decoders now (about 0.2 s each) instead of at the first utterances."""
        decoders = [self._acquire() for _ in range(count)]
        for d in decoders:
            self._release(d)

    def close(self) -> None:
        self._closed = True
        self._executor.shutdown(wait=True, cancel_futures=True)
        with self._pool_lock:
            self._idle.clear()

    # ------------------------------------------------------------ internals

    def confidence(self, score_per_frame: float) -> float:
        """Map a normalised acoustic score (ln units per frame, <= 0) to 0..1."""
        z = (score_per_frame - self.confidence_center) / self.confidence_scale
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def _acquire(self) -> _PooledDecoder:
        with self._pool_lock:
            if self._idle:
                return self._idle.pop()
        try:
            decoder = Decoder(**self._config)
        except (RuntimeError, ValueError) as exc:
            raise SpeechError(f"cannot load the pocketsphinx model: {exc}") from exc
        last = len(self._extra_words) - 1
        try:
            for n, (word, phones) in enumerate(self._extra_words.items()):
                decoder.add_word(word, phones, update=n == last)
        except RuntimeError as exc:
            raise SpeechError(f"cannot add words to the pocketsphinx dictionary: {exc}") from exc
        return _PooledDecoder(decoder)

    def _release(self, decoder: _PooledDecoder) -> None:
        with self._pool_lock:
            if not self._closed:
                self._idle.append(decoder)

    def _session(self, grammar: Grammar) -> _Session:
        decoder = self._acquire()
        try:
            decoder.activate(grammar)
        except Exception:
            self._release(decoder)
            raise
        return _Session(self, decoder, grammar)


class _PooledDecoder:
    """A Decoder plus the grammars compiled into it (searches named by grammar key)."""

    def __init__(self, decoder: Decoder) -> None:
        self.decoder = decoder
        self.searches: list[str] = []
        # Cepstral mean normalisation adapts live and would carry one caller's channel into the next
        # utterance on this decoder: every utterance starts again from the model's initial mean.
        self.initial_cmn = str(decoder.get_cmn())

    def activate(self, grammar: Grammar) -> None:
        key = grammar.key
        if key not in self.searches:
            missing = sorted(w for w in grammar.words if self.decoder.lookup_word(w) is None)
            if missing:
                raise SpeechError(f"words not in the pocketsphinx dictionary: {', '.join(missing)}")
            try:
                self.decoder.add_jsgf_string(key, grammar.to_jsgf())
            except (RuntimeError, ValueError) as exc:
                raise SpeechError(f"pocketsphinx rejected the grammar: {exc}") from exc
            self.searches.append(key)
            if len(self.searches) > _MAX_SEARCHES:
                old = self.searches.pop(0)
                self.decoder.remove_search(old)
        self.decoder.activate_search(key)


class _Session:
    """One utterance on one pooled decoder (worker thread only)."""

    def __init__(self, owner: PocketsphinxRecognizer, pooled: _PooledDecoder, grammar: Grammar) -> None:
        self._owner = owner
        self._pooled = pooled
        self._grammar = grammar
        self._incremental = owner.incremental
        self._up = Upsampler()
        self._rng = np.random.default_rng(0x5EED)
        self._pending = bytearray()  # 16 kHz audio kept for one batch decode
        if not self._incremental:
            # Same start for every utterance: the model's initial cepstral mean and fresh noise
            # statistics (otherwise both carry over from whoever used this decoder last).
            pooled.decoder.set_cmn(pooled.initial_cmn)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                pooled.decoder.start_stream()
        pooled.decoder.start_utt()

    def _dither(self, pcm16k: bytes) -> bytes:
        if not self._owner.dither or not pcm16k:
            return pcm16k
        x = samples(pcm16k).astype(np.float64)
        x += self._rng.normal(0.0, self._owner.dither, x.size)
        return to_bytes(x)

    def accept(self, pcm8k: bytes) -> None:
        pcm16k = self._up.feed(pcm8k)
        if self._incremental:
            if pcm16k:
                self._pooled.decoder.process_raw(self._dither(pcm16k), False, False)
        else:
            self._pending += pcm16k

    def finish(self) -> Hypothesis:
        decoder = self._pooled.decoder
        try:
            tail = self._up.flush()
            if self._incremental:
                if tail:
                    decoder.process_raw(self._dither(tail), False, False)
            else:
                audio = self._dither(bytes(self._pending) + tail)
                if audio:
                    decoder.process_raw(audio, False, True)
            decoder.end_utt()
            return self._hypothesis(decoder)
        finally:
            self._owner._release(self._pooled)

    def abort(self) -> None:
        try:
            self._pooled.decoder.end_utt()
        finally:
            self._owner._release(self._pooled)

    def _hypothesis(self, decoder: Decoder) -> Hypothesis:
        hyp = decoder.hyp()
        if hyp is None or not hyp.hypstr:
            return Hypothesis("", 0.0)
        raw = str(hyp.hypstr)
        total = 0.0
        frames = 0
        for seg in decoder.seg():
            if seg.word in ("<s>", "</s>"):
                continue
            total += math.log(seg.ascore) if seg.ascore > 0 else -700.0
            frames += seg.end_frame - seg.start_frame + 1
        per_frame = total / frames if frames else -100.0
        confidence = self._owner.confidence(per_frame)
        text = _clean(raw)
        if not self._grammar.accepts(text):
            return Hypothesis("", 0.0, raw=raw)
        return Hypothesis(text, confidence, self._alternatives(decoder, text, hyp.score, confidence), raw)

    def _alternatives(self, decoder: Decoder, best: str, best_score: float, confidence: float) -> tuple[
        Alternative, ...
    ]:
        seen = {best}
        out: list[Alternative] = []
        nbest = decoder.nbest()
        if nbest is None or best_score <= 0:
            return ()
        for n, alt in enumerate(nbest):
            if n >= _NBEST_SCAN or len(out) >= _MAX_ALTERNATIVES:
                break
            text = _clean(str(alt.hypstr))
            if text in seen or not self._grammar.accepts(text):
                continue
            seen.add(text)
            ratio = min(1.0, alt.score / best_score) if alt.score > 0 else 0.0
            out.append(Alternative(text, confidence * ratio))
        return tuple(out)


def _clean(hypstr: str) -> str:
    """Drop fillers and pronunciation variants ("why(2)" → "why")."""
    words = [w.split("(", 1)[0] for w in hypstr.split() if w not in _FILLERS]
    return " ".join(words)

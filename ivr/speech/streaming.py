"""Engine-neutral streaming: endpointing on the event loop, decoding serialised on a worker thread."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ivr.errors import SpeechError
from ivr.speech.endpoint import EndpointConfig, Endpointer, EndReason
from ivr.speech.recognizer import Alternative, Recognition

log = logging.getLogger("ivr.speech")


@dataclass(frozen=True)
class Hypothesis:
    """What an engine session returns at the end of an utterance."""

    text: str  # a grammar sentence, or "" for no match
    confidence: float
    alternatives: tuple[Alternative, ...] = ()
    raw: str = ""


class EngineSession(Protocol):
    """One utterance inside an engine. Blocking; called from one worker thread at a time."""

    def accept(self, pcm8k: bytes) -> None: ...

    def finish(self) -> Hypothesis: ...

    def abort(self) -> None: ...


SessionFactory = Callable[[], EngineSession]


class _End:
    """Queue marker: decode what was given and publish the result."""

    def __init__(self, reason: EndReason, start: float | None, end: float | None) -> None:
        self.reason = reason
        self.start = start
        self.end = end
        self.at = time.perf_counter()


class _Abort:
    """Queue marker: drop the utterance."""


_Item = bytes | _End | _Abort


class StreamingUtterance:
    """`Utterance` for any engine: see `ivr.speech.recognizer.Utterance` for the contract.

    Work items for one utterance run in order on the shared executor without holding a thread while the
    caller is silent; the engine session is opened (decoder taken from its pool) at the start of speech.
    """

    def __init__(
        self, open_session: SessionFactory, executor: concurrent.futures.Executor,
        endpoint: EndpointConfig | None = None,
    ) -> None:
        self._open = open_session
        self._executor = executor
        self.endpointer = Endpointer(endpoint)
        self._session: EngineSession | None = None
        self._lock = threading.Lock()
        self._items: deque[_Item] = deque()
        self._pumping = False
        self._started = False  # a decode job was queued
        self._closed = False  # END or ABORT queued
        self._future: concurrent.futures.Future[Recognition] = concurrent.futures.Future()
        self._error: BaseException | None = None

    # ------------------------------------------------------------ event-loop side

    @property
    def finished(self) -> bool:
        return self.endpointer.ended is not None

    @property
    def speech_started(self) -> bool:
        return self.endpointer.speech_start is not None

    def feed(self, pcm8k: bytes) -> None:
        if self._closed:
            return  # audio after the decision (or after result/cancel) is ignored
        for chunk in self.endpointer.feed(pcm8k):
            self._put(chunk)
        if self.endpointer.ended is not None:
            self._end()

    async def result(self) -> Recognition:
        if not self._closed:
            for chunk in self.endpointer.finish():
                self._put(chunk)
            self._end()
        return await asyncio.wrap_future(self._future)

    def cancel(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.endpointer.ended is None:
            self.endpointer.finish()
        if self._started:
            self._put(_Abort(), force=True)
        if not self._future.done():
            self._future.cancel()

    def _end(self) -> None:
        if self._closed:
            return
        ep = self.endpointer
        assert ep.ended is not None
        end = _End(ep.ended, ep.speech_start, ep.speech_end)
        if not self._started:
            # Nobody spoke (or a blip too short to start speech): nothing to decode.
            self._closed = True
            self._future.set_result(Recognition("", 0.0, ended_by=end.reason))
            return
        self._put(end, force=True)
        self._closed = True

    def _put(self, item: _Item, force: bool = False) -> None:
        if self._closed and not force:
            return
        self._started = True
        with self._lock:
            self._items.append(item)
            if self._pumping:
                return
            self._pumping = True
        try:
            self._executor.submit(self._drain)
        except RuntimeError as exc:  # executor shut down
            with self._lock:
                self._pumping = False
            self._fail(SpeechError(f"recogniser is closed: {exc}"))

    # ------------------------------------------------------------ worker side

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._items:
                    self._pumping = False
                    return
                item = self._items.popleft()
            try:
                self._work(item)
            except Exception as exc:  # any engine failure ends this utterance only
                log.exception("speech decoding failed")
                self._abandon()
                self._fail(SpeechError(f"speech decoding failed: {exc}"))

    def _work(self, item: _Item) -> None:
        if self._error is not None:
            return
        if isinstance(item, _Abort):
            self._abandon()
            return
        if self._session is None:
            self._session = self._open()
        if isinstance(item, bytes):
            self._session.accept(item)
            return
        hyp = self._session.finish()
        self._session = None
        rec = Recognition(
            text=hyp.text, confidence=hyp.confidence, alternatives=hyp.alternatives,
            ended_by=item.reason, speech_start=item.start, speech_end=item.end,
            decode_seconds=time.perf_counter() - item.at, raw=hyp.raw,
        )
        if not self._future.done():
            self._future.set_result(rec)

    def _abandon(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            try:
                session.abort()
            except Exception:  # pragma: no cover - best effort
                log.exception("could not abort a speech session")

    def _fail(self, exc: BaseException) -> None:
        self._error = exc
        if not self._future.done():
            self._future.set_exception(exc)


def recognize_blocking(
    open_session: SessionFactory, pcm8k: bytes, endpoint: EndpointConfig | None = None,
) -> Recognition:
    """Endpoint and decode a whole recording in the calling thread (the first utterance in it)."""
    ep = Endpointer(endpoint)
    chunks = ep.feed(pcm8k) + ep.finish()
    if ep.speech_start is None or not chunks:
        return Recognition("", 0.0, ended_by=ep.ended or EndReason.NO_INPUT)
    at = time.perf_counter()
    session = open_session()
    try:
        for chunk in chunks:
            session.accept(chunk)
        hyp = session.finish()
    except Exception as exc:
        session.abort()
        raise SpeechError(f"speech decoding failed: {exc}") from exc
    return Recognition(
        text=hyp.text, confidence=hyp.confidence, alternatives=hyp.alternatives,
        ended_by=ep.ended or EndReason.STOPPED, speech_start=ep.speech_start, speech_end=ep.speech_end,
        decode_seconds=time.perf_counter() - at, raw=hyp.raw,
    )

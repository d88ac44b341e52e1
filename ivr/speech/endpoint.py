"""End-of-speech detection: which 20 ms frames are speech, when the caller started and when they stopped."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from pocketsphinx import Vad

from ivr.speech.pcm import FRAME_BYTES_8K, FRAME_MS, TELEPHONE_RATE, Reframer, rms_dbfs

FRAME_SECONDS = FRAME_MS / 1000


class EndReason(StrEnum):
    """Why an utterance is over."""

    SILENCE = "silence"  # the caller spoke, then was quiet for `end_silence`
    MAX_SPEECH = "max_speech"  # the caller kept talking past `max_speech`
    NO_INPUT = "no_input"  # nobody spoke within `no_input`
    STOPPED = "stopped"  # the audio ended or the caller of `finish` stopped listening


@dataclass(frozen=True)
class EndpointConfig:
    """Endpointing settings; the defaults are the ones measured best on telephone clips (bench/speech_bench.py).

    detector: "webrtc" (pocketsphinx's WebRTC-derived `Vad`, mode `vad_mode` 0 loose … 3 strict) or "energy"
    (frame level above an adaptive noise floor by `energy_margin_db`).
    Speech starts when `start_ratio` of the last `start_window` seconds are speech frames (a 60 ms click
    does not start it); it ends after `end_silence` seconds without one. The WebRTC VAD holds "speech"
    ~0.1 s past the real end (its hangover), so end_silence 0.6 means ~0.7 s of actual silence; the
    energy detector has no hangover. The decoder is given `lead_in` seconds before the start and `trail`
    after the last speech frame: decoding long silences makes the grammar search fail (measured: lead-in
    and trail of 0.3 s beat 0.2 s; a trail up to end_silence changes little).
    """

    detector: str = "webrtc"
    vad_mode: int = 3
    energy_margin_db: float = 12.0
    energy_floor_dbfs: float = -50.0
    start_window: float = 0.3
    start_ratio: float = 0.6
    end_silence: float = 0.6
    lead_in: float = 0.3
    trail: float = 0.3
    no_input: float = 5.0
    max_speech: float = 10.0

    def __post_init__(self) -> None:
        if self.detector not in ("webrtc", "energy"):
            raise ValueError(f"unknown speech detector {self.detector!r} (webrtc or energy)")
        if not 0 <= self.vad_mode <= 3:
            raise ValueError("vad_mode must be 0..3")
        if not 0 < self.start_ratio <= 1:
            raise ValueError("start_ratio must be in (0, 1]")
        if self.trail > self.end_silence:
            raise ValueError("trail cannot be longer than end_silence")
        for name in ("start_window", "end_silence", "no_input", "max_speech"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")


Classifier = Callable[[bytes], bool]


def webrtc_classifier(mode: int) -> Classifier:
    """pocketsphinx's `Vad` on 20 ms frames at 8 kHz."""
    vad = Vad(mode, TELEPHONE_RATE, FRAME_SECONDS)
    return vad.is_speech  # type: ignore[no-any-return]


def energy_classifier(margin_db: float, floor_dbfs: float) -> Classifier:
    """Speech = a frame louder than the running noise floor by `margin_db` (and above `floor_dbfs`).

    The floor follows quiet frames down at once and louder ones up slowly (about 3 dB per second).
    """
    noise = [floor_dbfs - 10.0]

    def classify(frame: bytes) -> bool:
        level = rms_dbfs(frame)
        if math.isinf(level):
            return False
        if level < noise[0]:
            noise[0] = level
        else:
            noise[0] += min(level - noise[0], 0.06)
        return level > max(noise[0] + margin_db, floor_dbfs)

    return classify


class Endpointer:
    """Feed 8 kHz PCM as it arrives; get back the audio to decode, lagged so no trailing silence leaks in.

    Audio after the start of speech is released `end_silence - trail` seconds late, so when the end is
    detected the decoder has been given exactly up to `trail` seconds past the last speech frame.
    Times are seconds of audio since the first byte fed.
    """

    def __init__(self, config: EndpointConfig | None = None) -> None:
        self.config = c = config or EndpointConfig()
        self._classify = (
            webrtc_classifier(c.vad_mode) if c.detector == "webrtc"
            else energy_classifier(c.energy_margin_db, c.energy_floor_dbfs)
        )
        self._frames = Reframer(FRAME_BYTES_8K)
        self._window: deque[bool] = deque(maxlen=max(1, round(c.start_window / FRAME_SECONDS)))
        self._preroll: deque[bytes] = deque(maxlen=round((c.lead_in + c.start_window) / FRAME_SECONDS))
        self._held: deque[tuple[int, bytes]] = deque()  # (frame index, frame) not yet released
        self._n = 0  # frames seen
        self._start_frame: int | None = None
        self._last_voiced = -1
        self.ended: EndReason | None = None

    # ------------------------------------------------------------ state

    @property
    def in_speech(self) -> bool:
        return self._start_frame is not None and self.ended is None

    @property
    def speech_start(self) -> float | None:
        """When speech began (seconds), or None."""
        return None if self._start_frame is None else self._start_frame * FRAME_SECONDS

    @property
    def speech_end(self) -> float | None:
        """End of the last speech frame (seconds), or None before any speech."""
        return None if self._start_frame is None else (self._last_voiced + 1) * FRAME_SECONDS

    @property
    def elapsed(self) -> float:
        return self._n * FRAME_SECONDS

    # ------------------------------------------------------------ input

    def feed(self, pcm8k: bytes) -> list[bytes]:
        """Process audio; returns chunks to decode, in order (empty while waiting or after the end)."""
        out: list[bytes] = []
        if self.ended is not None:
            return out
        for frame in self._frames.feed(pcm8k):
            out.extend(self._frame(frame))
            if self.ended is not None:
                break
        return out

    def finish(self) -> list[bytes]:
        """No more audio: end now (reason STOPPED unless already ended); returns what is left to decode."""
        if self.ended is not None:
            return []
        self.ended = EndReason.STOPPED
        if self._start_frame is None:
            return []
        return self._release_until(self._last_voiced + self._frames_of(self.config.trail))

    def _frames_of(self, seconds: float) -> int:
        return round(seconds / FRAME_SECONDS)

    def _frame(self, frame: bytes) -> list[bytes]:
        c = self.config
        index = self._n
        self._n += 1
        voiced = self._classify(frame)
        if self._start_frame is None:
            self._preroll.append(frame)
            self._window.append(voiced)
            if voiced and sum(self._window) >= c.start_ratio * self._window.maxlen:  # type: ignore[operator]
                first = index - len(self._window) + 1 + list(self._window).index(True)
                self._start_frame = first
                self._last_voiced = index
                # hand over the speech so far plus `lead_in` before it (the pre-roll ends at `index`)
                keep = min(len(self._preroll), index - first + 1 + self._frames_of(c.lead_in))
                for offset, f in enumerate(list(self._preroll)[-keep:]):
                    self._held.append((index - keep + 1 + offset, f))
                self._preroll.clear()
                return self._release_until(index - self._frames_of(c.end_silence - c.trail))
            if index + 1 >= self._frames_of(c.no_input):
                self.ended = EndReason.NO_INPUT
            return []
        self._held.append((index, frame))
        if voiced:
            self._last_voiced = index
        if index - self._start_frame + 1 >= self._frames_of(c.max_speech):
            self.ended = EndReason.MAX_SPEECH
            return self._release_until(index)
        if index - self._last_voiced >= self._frames_of(c.end_silence):
            self.ended = EndReason.SILENCE
            return self._release_until(self._last_voiced + self._frames_of(c.trail))
        return self._release_until(index - self._frames_of(c.end_silence - c.trail))

    def _release_until(self, last: int) -> list[bytes]:
        """Release held frames with index <= last (one joined chunk); at the end, drop the rest."""
        chunk = bytearray()
        while self._held and self._held[0][0] <= last:
            chunk += self._held.popleft()[1]
        if self.ended is not None:
            self._held.clear()
        return [bytes(chunk)] if chunk else []

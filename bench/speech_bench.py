"""Speech benchmark: grammar accuracy, real-time factor, and end-of-speech → decision latency.

    .venv/bin/python bench/speech_bench.py [--quick] [--noise -50] [--detector webrtc] [--json out.json]

Clips: every phrase of a menu grammar, some spoken digit strings and out-of-grammar phrases, spoken
by espeak-ng (voices en-us, en-gb, en-us+f3, en-gb-scotland; speeds 130/160/190 wpm), converted to
8 kHz μ-law and back (telephone quality), placed after 1 s of silence and followed by 3 s of it
(optionally with white noise at --noise dBFS over everything).

Two ways of deciding, in the same run on the same clips:
- streaming: 20 ms frames go through the endpointer as they would arrive; the decision is the
  endpointer firing plus the decode that follows. Latency = audio time from the true end of speech
  to the endpointer's decision + measured CPU time of the final decode.
- record-then-recognise: a recording that stops after `--record-silence` s of silence (Asterisk's
  Record()/RECORD FILE silence detection counts whole seconds), then the whole file is recognised.
  Latency = that silence + measured time to recognise the whole recording.

True speech ends come from the clean synthesised clip (first/last sample above -40 dBFS).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ivr.speech import pcm  # noqa: E402
from ivr.speech.endpoint import EndpointConfig  # noqa: E402
from ivr.speech.grammar import Grammar, words_to_digits  # noqa: E402
from ivr.speech.intents import IntentMatcher  # noqa: E402
from ivr.speech.pocketsphinx_rec import PocketsphinxRecognizer  # noqa: E402
from ivr.speech.recognizer import Recognition  # noqa: E402
from lab.audio import ulaw_to_linear  # noqa: E402

MENU = {
    "balance": ["balance", "account balance", "how much do I owe", "why is my bill so high"],
    "payment": ["make a payment", "pay my bill", "payment"],
    "agent": ["agent", "representative", "talk to a person", "operator"],
    "hours": ["opening hours", "when are you open"],
    "repeat": ["repeat", "say that again"],
}
OUT_OF_GRAMMAR = [
    "what is the weather like today", "I want to cancel my subscription", "hello there",
    "my internet is not working", "cancel my account", "yes", "no", "what are my options",
]
DIGITS = ["one two three four", "five oh seven nine", "zero nine eight seven", "four four two one",
          "eight six three five"]
VOICES = ["en-us", "en-gb", "en-us+f3", "en-gb-scotland"]
SPEEDS = [130, 160, 190]
LEAD = 1.0
TAIL = 3.0


@dataclass
class Clip:
    text: str
    voice: str
    speed: int
    kind: str  # "menu", "digits", "oog"
    audio: bytes  # 8 kHz PCM, telephone quality, with LEAD/TAIL silence
    start: float  # true speech start, s
    end: float  # true speech end, s


@dataclass
class Outcome:
    clip: Clip
    stream: Recognition
    stream_latency: float
    record: Recognition
    record_latency: float
    record_cpu: float


@dataclass
class Stats:
    rows: list[Outcome] = field(default_factory=list)


def synth(text: str, voice: str, speed: int) -> bytes:
    wav = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text],
                         capture_output=True, check=True).stdout
    ulaw = subprocess.run(["sox", "-t", "wav", "-", "-r", "8000", "-c", "1", "-t", "raw", "-e", "mu-law", "-"],
                          input=wav, capture_output=True, check=True).stdout
    return ulaw_to_linear(ulaw)


def speech_bounds(audio: bytes) -> tuple[float, float]:
    x = np.abs(pcm.samples(audio).astype(np.float64))
    loud = np.nonzero(x > 32768 * 10 ** (-40 / 20))[0]
    return loud[0] / 8000, (loud[-1] + 1) / 8000


def make_clips(quick: bool, noise_dbfs: float | None) -> list[Clip]:
    voices = VOICES[:2] if quick else VOICES
    speeds = [160] if quick else SPEEDS
    texts = [(p, "menu") for ps in MENU.values() for p in ps] + [(d, "digits") for d in DIGITS]
    texts += [(o, "oog") for o in OUT_OF_GRAMMAR]
    rng = np.random.default_rng(42)
    clips = []
    for text, kind in texts:
        for voice in voices:
            for speed in speeds:
                speech = synth(text, voice, speed)
                s, e = speech_bounds(speech)
                audio = pcm.silence(LEAD) + speech + pcm.silence(TAIL)
                if noise_dbfs is not None:
                    x = pcm.samples(audio).astype(np.float64)
                    audio = pcm.to_bytes(x + rng.normal(0, 32768 * 10 ** (noise_dbfs / 20), x.size))
                clips.append(Clip(text, voice, speed, kind, audio, LEAD + s, LEAD + e))
    return clips


async def streaming(rec: PocketsphinxRecognizer, grammar: Grammar, clip: Clip) -> tuple[Recognition, float]:
    utt = rec.start(grammar)
    fed = 0.0
    for frame in pcm.frames(clip.audio):
        utt.feed(frame)
        fed += pcm.FRAME_MS / 1000
        if utt.finished:
            break
        if rec.incremental:
            # Frames come every 20 ms on a call, far slower than the decoder: let it catch up, as it would.
            while utt._pumping:  # noqa: ASYNC110 - polls a worker-thread flag, no event to wait on
                await asyncio.sleep(0.0005)
    t0 = time.perf_counter()
    result = await utt.result()
    compute = time.perf_counter() - t0
    return result, (fed - clip.end) + compute


def record_then_recognise(
    rec: PocketsphinxRecognizer, grammar: Grammar, clip: Clip, silence_s: float,
) -> tuple[Recognition, float, float]:
    # The recording stops `silence_s` after the speech: everything up to there is recognised at once.
    stop = min(len(clip.audio), int((clip.end + silence_s) * 8000) * 2)
    recording = clip.audio[:stop]
    t0 = time.perf_counter()
    result = rec.recognize_sync(recording, grammar, EndpointConfig(no_input=60.0, max_speech=60.0,
                                                                    end_silence=rec.endpoint.end_silence))
    cpu = time.perf_counter() - t0
    return result, silence_s + cpu, cpu


def correct(clip: Clip, r: Recognition) -> bool:
    if clip.kind == "digits":
        return words_to_digits(r.text) == words_to_digits(clip.text)
    return r.text == " ".join(clip.text.lower().split())


def pct(n: int, d: int) -> str:
    return f"{100 * n / d:5.1f}% ({n}/{d})" if d else "   n/a"


def summarise(rows: list[Outcome], menu: Grammar, threshold: float, check_length: bool = True) -> dict[str, object]:
    matcher = IntentMatcher(menu, threshold=threshold, check_length=check_length)
    out: dict[str, object] = {}
    for mode in ("stream", "record"):
        def rec_of(o: Outcome, mode: str = mode) -> Recognition:
            return o.stream if mode == "stream" else o.record
        menu_rows = [o for o in rows if o.clip.kind == "menu"]
        digit_rows = [o for o in rows if o.clip.kind == "digits"]
        oog_rows = [o for o in rows if o.clip.kind == "oog"]
        exact = sum(rec_of(o).text == " ".join(o.clip.text.lower().split()) for o in menu_rows)
        intent_ok = 0
        intent_wrong = 0
        for o in menu_rows:
            m = matcher.match(rec_of(o))
            want = menu.choice_of(o.clip.text)
            intent_ok += m is not None and m.intent == want
            intent_wrong += m is not None and m.intent != want
        digits_ok = sum(words_to_digits(rec_of(o).text) == words_to_digits(o.clip.text) for o in digit_rows)
        oog_accepted = sum(matcher.match(rec_of(o)) is not None for o in oog_rows)
        out[mode] = {
            "menu_exact": exact / max(1, len(menu_rows)),
            "menu_intent_accepted_correct": intent_ok / max(1, len(menu_rows)),
            "menu_intent_accepted_wrong": intent_wrong / max(1, len(menu_rows)),
            "digits_exact": digits_ok / max(1, len(digit_rows)),
            "oog_false_accept": oog_accepted / max(1, len(oog_rows)),
            "counts": {"menu": len(menu_rows), "digits": len(digit_rows), "oog": len(oog_rows)},
        }
    return out


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 voices, 1 speed")
    ap.add_argument("--noise", type=float, default=None, help="white noise level in dBFS (e.g. -50)")
    ap.add_argument("--detector", default="webrtc", choices=["webrtc", "energy"])
    ap.add_argument("--vad-mode", type=int, default=EndpointConfig().vad_mode)
    ap.add_argument("--end-silence", type=float, default=EndpointConfig().end_silence)
    ap.add_argument("--trail", type=float, default=EndpointConfig().trail)
    ap.add_argument("--lead-in", type=float, default=EndpointConfig().lead_in)
    ap.add_argument("--start-window", type=float, default=EndpointConfig().start_window)
    ap.add_argument("--start-ratio", type=float, default=EndpointConfig().start_ratio)
    ap.add_argument("--incremental", action="store_true", help="decode while audio arrives")
    ap.add_argument("--record-silence", type=float, default=1.0, help="Record() silence to stop (s)")
    ap.add_argument("--threshold", type=float, default=0.5, help="intent confidence threshold")
    ap.add_argument("--no-length-check", action="store_true",
                    help="accept a phrase however long the speech was (see ivr.speech.intents.too_long_for)")
    ap.add_argument("--json", type=Path, help="write the numbers here too")
    args = ap.parse_args()
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed")

    endpoint = EndpointConfig(detector=args.detector, vad_mode=args.vad_mode, end_silence=args.end_silence,
                              trail=min(args.trail, args.end_silence), lead_in=args.lead_in,
                              start_window=args.start_window, start_ratio=args.start_ratio)
    rec = PocketsphinxRecognizer(max_workers=1, endpoint=endpoint, incremental=args.incremental)
    rec.warm_up(1)
    menu = Grammar.from_phrases(MENU)
    digits = Grammar.spoken_digits(1, 12)

    t0 = time.perf_counter()
    clips = make_clips(args.quick, args.noise)
    print(f"{len(clips)} clips synthesised in {time.perf_counter() - t0:.1f}s "
          f"(detector={args.detector} mode={args.vad_mode} end_silence={args.end_silence} trail={endpoint.trail} "
          f"lead_in={args.lead_in} start={args.start_window}x{args.start_ratio} "
          f"incremental={args.incremental} noise={args.noise})")

    rows: list[Outcome] = []
    speech_seconds = 0.0
    record_cpu = 0.0
    audio_seconds = 0.0
    for clip in clips:
        grammar = digits if clip.kind == "digits" else menu
        s, s_lat = await streaming(rec, grammar, clip)
        r, r_lat, r_cpu = record_then_recognise(rec, grammar, clip, args.record_silence)
        rows.append(Outcome(clip, s, s_lat, r, r_lat, r_cpu))
        speech_seconds += clip.end - clip.start
        audio_seconds += min(pcm.duration(clip.audio), clip.end + args.record_silence)
        record_cpu += r_cpu

    summary = summarise(rows, menu, args.threshold, check_length=not args.no_length_check)
    decided = [o for o in rows if o.stream.heard_speech and o.record.heard_speech]
    s_lat = [o.stream_latency for o in decided]
    r_lat = [o.record_latency for o in decided]
    s_dec = [o.stream.decode_seconds for o in decided]
    summary["latency"] = {
        "stream_median_s": statistics.median(s_lat), "stream_p90_s": float(np.percentile(s_lat, 90)),
        "record_median_s": statistics.median(r_lat), "record_p90_s": float(np.percentile(r_lat, 90)),
        "ratio_stream_over_record_median": statistics.median(s_lat) / statistics.median(r_lat),
        "stream_final_decode_median_s": statistics.median(s_dec),
        "stream_final_decode_max_s": max(s_dec),
    }
    summary["rtf_record_then_recognise"] = record_cpu / audio_seconds
    summary["speech_cpu_per_speech_second"] = record_cpu / speech_seconds
    ends = [(o.stream.speech_end or 0) - o.clip.end for o in decided]
    starts = [(o.stream.speech_start or 0) - o.clip.start for o in decided]
    summary["endpointer"] = {
        "start_error_median_s": statistics.median(starts), "end_error_median_s": statistics.median(ends),
        "end_error_max_s": max(ends), "missed_speech": sum(not o.stream.heard_speech for o in rows),
    }

    print()
    for mode in ("stream", "record"):
        m = summary[mode]
        assert isinstance(m, dict)
        c = m["counts"]
        print(f"{mode:7} menu exact {pct(round(m['menu_exact'] * c['menu']), c['menu'])}  "
              f"intent ok@{args.threshold} {pct(round(m['menu_intent_accepted_correct'] * c['menu']), c['menu'])}  "
              f"wrong {pct(round(m['menu_intent_accepted_wrong'] * c['menu']), c['menu'])}  "
              f"digits {pct(round(m['digits_exact'] * c['digits']), c['digits'])}  "
              f"out-of-grammar accepted {pct(round(m['oog_false_accept'] * c['oog']), c['oog'])}")
    lat = summary["latency"]
    assert isinstance(lat, dict)
    print(f"\nlatency end of speech → decision: streaming median {lat['stream_median_s']:.3f}s "
          f"p90 {lat['stream_p90_s']:.3f}s | record-then-recognise (stop after {args.record_silence:g}s silence) "
          f"median {lat['record_median_s']:.3f}s p90 {lat['record_p90_s']:.3f}s | ratio stream/record "
          f"{lat['ratio_stream_over_record_median']:.2f}")
    print("streaming final decode after the endpointer fired: "
          f"median {lat['stream_final_decode_median_s'] * 1000:.0f} ms, "
          f"max {lat['stream_final_decode_max_s'] * 1000:.0f} ms")
    print(f"real-time factor, whole recordings: {summary['rtf_record_then_recognise']:.4f} "
          f"({summary['speech_cpu_per_speech_second']:.4f} s CPU per s of speech)")
    ep = summary["endpointer"]
    assert isinstance(ep, dict)
    print(f"endpointer vs true speech: start {ep['start_error_median_s'] * 1000:+.0f} ms, end median "
          f"{ep['end_error_median_s'] * 1000:+.0f} ms (max {ep['end_error_max_s'] * 1000:+.0f} ms), "
          f"missed {ep['missed_speech']}")
    wrong = [o for o in rows if o.clip.kind != "oog" and not correct(o.clip, o.stream)]
    if wrong:
        print("\nstreaming misses:")
        for o in wrong[:40]:
            print(f"  {o.clip.text!r:28} {o.clip.voice:15} {o.clip.speed}: got {o.stream.text!r} "
                  f"(raw {o.stream.raw!r}, conf {o.stream.confidence:.2f})")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    rec.close()


if __name__ == "__main__":
    asyncio.run(main())

"""Audio benchmark: recording/TTS conversion to 8 kHz before (pydub + numpy) and after (soundfile + soxr),
and the speech path's 8 → 16 kHz upsampler against soxr, in the same run.

    .venv/bin/python bench/audio_bench.py [--seconds 30] [--repeat 3]

Conversion: wall time per second of audio (best of --repeat, decode + resample + WAV write) for the
inputs the service meets: an espeak-ng render (22,050 Hz, the TTS path), uploads at 44.1 kHz stereo,
48 kHz 24-bit and 8 kHz (already telephone audio), and an MP3 (before: pydub calls ffmpeg). Quality:
the espeak render against an ideal band-limited reference (signal to error, 0-3.4 kHz), the level of a
3.3 kHz tone and what is left of a 4.1 kHz tone (it would alias to 3.9 kHz).
Upsampling: 20 ms frames as a call streams them; the image a 3.4 kHz tone leaves at 4.6 kHz; the
output held back (latency) after 1 s of input.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import audio_before  # noqa: E402
from ivr.media import audio  # noqa: E402
from ivr.speech import pcm  # noqa: E402

Converter = Callable[[Path, Path], None]
TEXT = ("Welcome to the demo line. For your balance, press one. For an agent, press zero. "
        "Our office is open Monday to Friday from eight to eight. ")


def tone(freq: float, rate: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    return np.asarray(amp * np.sin(2 * np.pi * freq * np.arange(int(rate * seconds)) / rate))


def read8k(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64) / 32768


def inputs(folder: Path, seconds: float) -> dict[str, Path]:
    rng = np.random.default_rng(1)
    made: dict[str, Path] = {}
    if shutil.which("espeak-ng"):
        made["espeak 22,050 Hz"] = folder / "espeak.wav"
        words = TEXT * max(1, int(seconds / 9))
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(made["espeak 22,050 Hz"]), words],
                       check=True, capture_output=True)
    music = lambda rate: tone(440, rate, seconds, 0.3) + rng.normal(0, 0.05, int(rate * seconds))  # noqa: E731
    made["44.1 kHz stereo"] = folder / "cd.wav"
    sf.write(made["44.1 kHz stereo"], np.stack([music(44100)] * 2, axis=1), 44100, subtype="PCM_16")
    made["48 kHz 24-bit"] = folder / "studio.wav"
    sf.write(made["48 kHz 24-bit"], music(48000), 48000, subtype="PCM_24")
    made["8 kHz mono"] = folder / "phone.wav"
    sf.write(made["8 kHz mono"], music(8000), 8000, subtype="PCM_16")
    made["MP3 44.1 kHz"] = folder / "upload.mp3"
    sf.write(made["MP3 44.1 kHz"], np.stack([music(44100)] * 2, axis=1), 44100)
    return made


def timed(convert: Converter, src: Path, dst: Path, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        convert(src, dst)
        best = min(best, time.perf_counter() - start)
    return best


def snr_vs_reference(src: Path, out: Path, band: float = 3400.0) -> float:
    """Signal to error of the 8 kHz output against the input's spectrum cut at `band` (zero phase)."""
    x, rate = sf.read(src, dtype="float64")
    if rate != 22050:
        raise ValueError("reference made for 22,050 Hz input")
    padded = np.concatenate([x, np.zeros(-len(x) % 441)])
    count = len(padded) * 160 // 441
    y = read8k(out)
    y = np.concatenate([y, np.zeros(max(0, count - len(y)))])[:count]

    def cut(v: np.ndarray, r: int, scale: float) -> np.ndarray:
        s = np.fft.rfft(v)
        s[np.fft.rfftfreq(len(v), 1 / r) > band] = 0
        return np.fft.irfft(s[: count // 2 + 1], count) * scale

    ref, got = cut(padded, 22050, count / len(padded)), cut(y, 8000, 1.0)
    return float(10 * np.log10(np.sum(ref**2) / np.sum((got - ref) ** 2)))


def tone_db(convert: Converter, folder: Path, freq: float, rate: int = 22050) -> float:
    src, dst = folder / "tone.wav", folder / "tone8k.wav"
    sf.write(src, tone(freq, rate, 1.0), rate, subtype="PCM_16")
    convert(src, dst)
    y = read8k(dst)[400:-400]
    return float(20 * np.log10(np.sqrt(np.mean(y**2)) / (0.5 / np.sqrt(2)) + 1e-12))


def conversion(folder: Path, seconds: float, repeat: int) -> None:
    have_before = audio_before.available()
    print(f"conversion to 8 kHz mono 16-bit WAV, ms per second of audio (best of {repeat})")
    print(f"  {'input':18} {'before':>8} {'after':>8} {'before/after':>13}")
    espeak: dict[str, float] = {}
    for name, src in inputs(folder, seconds).items():
        length = sf.info(src).duration
        after = timed(audio.to_telephone_wav, src, folder / "after.wav", repeat) / length * 1000
        before_ok = have_before and (src.suffix == ".wav" or shutil.which("ffmpeg"))
        before = timed(audio_before.to_telephone_wav, src, folder / "before.wav", repeat) / length * 1000 \
            if before_ok else float("nan")
        print(f"  {name:18} {before:8.2f} {after:8.2f} {before / after:12.1f}x")
        if name.startswith("espeak"):
            quality = [("after", folder / "after.wav")] + ([("before", folder / "before.wav")] if before_ok else [])
            espeak = {label: snr_vs_reference(src, out) for label, out in quality}
    if have_before:
        pairs = [("before", audio_before.to_telephone_wav), ("after", audio.to_telephone_wav)]
    else:
        print("  (before: pydub is not installed)")
        pairs = [("after", audio.to_telephone_wav)]
    print("quality                                  " + " ".join(f"{label:>8}" for label, _ in pairs))
    if espeak:
        print("  espeak render vs ideal, 0-3.4 kHz (dB) " + " ".join(f"{espeak.get(k, np.nan):8.1f}" for k, _ in pairs))
    print("  3.3 kHz tone from 22,050 Hz (dB)       " + " ".join(f"{tone_db(f, folder, 3300):8.2f}" for _, f in pairs))
    print("  4.1 kHz tone from 22,050 Hz (dB)       " + " ".join(f"{tone_db(f, folder, 4100):8.1f}" for _, f in pairs))


def upsampling(seconds: float, repeat: int) -> None:
    x = pcm.to_bytes(np.random.default_rng(2).normal(0, 3000, int(8000 * seconds)))
    frames = [x[i : i + pcm.FRAME_BYTES_8K] for i in range(0, len(x), pcm.FRAME_BYTES_8K)]

    def ours() -> None:
        up = pcm.Upsampler()
        for f in frames:
            up.feed(f)
        up.flush()

    def with_soxr() -> None:
        st = soxr.ResampleStream(8000, 16000, 1, dtype="int16", quality="HQ")
        for f in frames:
            st.resample_chunk(pcm.samples(f))
        st.resample_chunk(np.zeros(0, np.int16), last=True)

    def best(fn: Callable[[], None]) -> float:
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times) / seconds * 1e6

    t = tone(3400, 8000, 1.0, 10000 / 32768)

    def image_db(y: np.ndarray) -> float:
        """Level at 4.6 kHz relative to the tone's amplitude (window-normalised spectrum)."""
        window = np.blackman(len(y))
        spectrum = 2 * np.abs(np.fft.rfft(y * window)) / window.sum()
        bins = np.fft.rfftfreq(len(y), 1 / 16000)
        return float(20 * np.log10(spectrum[np.argmin(np.abs(bins - 4600))] / (10000 / 32768) + 1e-12))

    ours_y = pcm.samples(pcm.upsample(pcm.to_bytes(t * 32768))).astype(np.float64) / 32768
    soxr_y = soxr.resample(t, 8000, 16000, "HQ")
    one_second = [pcm.to_bytes(t[i : i + 160] * 32768) for i in range(0, 8000, 160)]
    up = pcm.Upsampler()
    held_ours = 16000 - sum(len(up.feed(f)) // 2 for f in one_second)
    st = soxr.ResampleStream(8000, 16000, 1, dtype="int16", quality="HQ")
    held_soxr = 16000 - sum(len(st.resample_chunk(pcm.samples(f))) for f in one_second)
    print("8 -> 16 kHz for pocketsphinx, 20 ms frames     half-band (kept)   soxr HQ")
    print(f"  us per second of audio                        {best(ours):8.0f}       {best(with_soxr):8.0f}")
    print(f"  image of a 3.4 kHz tone at 4.6 kHz (dB)       {image_db(ours_y):8.1f}       {image_db(soxr_y):8.1f}")
    print(f"  output held back after 1 s (ms)               {held_ours / 16:8.1f}       {held_soxr / 16:8.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="length of each test input")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        conversion(Path(tmp), args.seconds, args.repeat)
    upsampling(args.seconds, args.repeat)


if __name__ == "__main__":
    main()

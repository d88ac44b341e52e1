"""Which recogniser serves which caller language, built from the `speech.*` settings."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath

from ivr.errors import ConfigError, SpeechError
from ivr.speech.endpoint import EndpointConfig
from ivr.speech.recognizer import Recognizer
from ivr.validation import SECTION_CONFIG, Checked, CommaList, validate_section

ENGINES = ("pocketsphinx", "vosk")
MODES = ("auto", "stream", "record", "typed", "off")


def primary(language: str) -> str:
    """"en-GB" → "en"; "EN_us" → "en"."""
    return language.replace("_", "-").split("-", 1)[0].lower()


@dataclass(frozen=True)
class SpeechSettings(Checked):
    """`speech.engine`: preferred engine where several cover a language; `speech.vosk_model_dir` and
    `speech.vosk_languages`: a Vosk model and the languages it is for; `speech.max_workers`: decoding
    threads; `speech.endpoint.*`: `EndpointConfig` fields (end_silence, no_input, max_speech ...)."""

    engine: str = "pocketsphinx"
    vosk_model_dir: str | None = None
    vosk_languages: CommaList = ()
    max_workers: int = 4
    endpoint: EndpointConfig = field(default_factory=EndpointConfig)
    mode: str = "auto"  # auto (stream over AudioSocket, else record), stream, record, typed (simulator), off
    audiosocket: bool = True  # run the AudioSocket server (else: record-then-recognise)
    audiosocket_listen: str = "127.0.0.1:0"  # host:port the server binds (port 0: any free port)
    audiosocket_address: str = ""  # host:port Asterisk connects to ("" = the bound address)
    record_dir: str = ""  # record fallback: where recordings appear here ("" = <prompts.cache>/speech)
    record_asterisk_dir: str = ""  # ... and the same directory as Asterisk sees it ("" = record_dir)
    min_confidence: float = 0.5  # default threshold of menus and gathers
    barge_in: bool = True  # stream mode: play prompts over the AudioSocket so that speech interrupts them

    __pydantic_config__ = SECTION_CONFIG

    def problems(self) -> list[str]:
        """Rules beyond types (run by `ivr.validation`); `key: reason` names the setting."""
        found = []
        if self.engine not in ENGINES:
            found.append(f"engine: {self.engine!r} is not one of {', '.join(ENGINES)}")
        if self.vosk_model_dir and not self.vosk_languages:
            found.append("vosk_languages: say which languages the vosk model is for")
        if self.engine == "vosk" and not self.vosk_model_dir:
            found.append("vosk_model_dir: engine vosk needs a model directory")
        if not 1 <= self.max_workers <= 64:
            found.append("max_workers: expected an integer 1..64")
        if self.mode not in MODES:
            found.append(f"mode: {self.mode!r} is not one of {', '.join(MODES)}")
        for key in ("audiosocket_listen", "audiosocket_address"):
            value = getattr(self, key)
            if value and not _host_port(value):
                found.append(f"{key}: expected host:port, got {value!r}")
        if not 0 <= self.min_confidence <= 1:
            found.append("min_confidence: expected a number 0..1")
        return found

    @classmethod
    def from_mapping(cls, data: Mapping[str, object], prefix: str = "speech") -> SpeechSettings:
        """Parse the `speech:` section of the configuration; ConfigError names the bad key."""
        paths = {k: str(v) if isinstance(v, PurePath) else v for k, v in data.items()}  # dirs may come as Paths
        return validate_section(cls, paths, prefix)


def _host_port(text: str) -> tuple[str, int] | None:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        return None
    return host, int(port)


class SpeechRegistry:
    """Recognisers in order of preference; `for_language` picks one for a caller's language."""

    def __init__(self, recognizers: Sequence[Recognizer]) -> None:
        self.recognizers = tuple(recognizers)

    def for_language(self, language: str) -> Recognizer | None:
        """Exact tag first ("en-GB"), then the primary language ("en"); None = no model: use DTMF."""
        wanted = language.replace("_", "-").lower()
        for rec in self.recognizers:
            if wanted in {lang.lower() for lang in rec.languages}:
                return rec
        for rec in self.recognizers:
            if primary(wanted) in {primary(lang) for lang in rec.languages}:
                return rec
        return None

    @property
    def languages(self) -> frozenset[str]:
        return frozenset(lang for rec in self.recognizers for lang in rec.languages)

    def missing(self, languages: Iterable[str]) -> list[str]:
        """The languages (e.g. of the flows' prompts) no recogniser serves: `ivr check` warns about them."""
        return sorted({lang for lang in languages if self.for_language(lang) is None})

    def close(self) -> None:
        for rec in self.recognizers:
            rec.close()


def build_registry(settings: SpeechSettings) -> SpeechRegistry:
    """Load the configured recognisers (blocking: seconds for a vosk model). Raises ConfigError."""
    from ivr.speech.pocketsphinx_rec import PocketsphinxRecognizer

    sphinx = PocketsphinxRecognizer(max_workers=settings.max_workers, endpoint=settings.endpoint)
    recognizers: list[Recognizer] = [sphinx]
    if settings.vosk_model_dir:
        from ivr.speech.vosk_rec import VoskRecognizer

        try:
            vosk = VoskRecognizer(
                settings.vosk_model_dir, languages=settings.vosk_languages,
                max_workers=settings.max_workers, endpoint=settings.endpoint,
            )
        except SpeechError as exc:
            sphinx.close()
            raise ConfigError(f"speech.vosk_model_dir: {exc}") from exc
        if settings.engine == "vosk":
            recognizers.insert(0, vosk)
        else:
            recognizers.append(vosk)
    return SpeechRegistry(recognizers)

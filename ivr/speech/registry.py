"""Which recogniser serves which caller language, built from the `speech.*` settings."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

from ivr.errors import ConfigError, SpeechError
from ivr.speech.endpoint import EndpointConfig
from ivr.speech.recognizer import Recognizer

ENGINES = ("pocketsphinx", "vosk")
MODES = ("auto", "stream", "record", "typed", "off")


def primary(language: str) -> str:
    """"en-GB" → "en"; "EN_us" → "en"."""
    return language.replace("_", "-").split("-", 1)[0].lower()


@dataclass(frozen=True)
class SpeechSettings:
    """`speech.engine`: preferred engine where several cover a language; `speech.vosk_model_dir` and
    `speech.vosk_languages`: a Vosk model and the languages it is for; `speech.max_workers`: decoding
    threads; `speech.endpoint.*`: `EndpointConfig` fields (end_silence, no_input, max_speech ...)."""

    engine: str = "pocketsphinx"
    vosk_model_dir: str | None = None
    vosk_languages: tuple[str, ...] = ()
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

    @classmethod
    def from_mapping(cls, data: Mapping[str, object], prefix: str = "speech") -> SpeechSettings:
        """Parse the `speech:` section of the configuration; ConfigError names the bad key."""
        known = {"engine", "vosk_model_dir", "vosk_languages", "max_workers", "endpoint", "mode", "audiosocket",
                 "audiosocket_listen", "audiosocket_address", "record_dir", "record_asterisk_dir",
                 "min_confidence", "barge_in"}
        for key in data:
            if key not in known:
                raise ConfigError(f"{prefix}.{key}: unknown setting (known: {', '.join(sorted(known))})")
        engine = str(data.get("engine", "pocketsphinx"))
        if engine not in ENGINES:
            raise ConfigError(f"{prefix}.engine: {engine!r} is not one of {', '.join(ENGINES)}")
        model_dir = data.get("vosk_model_dir")
        if model_dir is not None and not isinstance(model_dir, str | Path):
            raise ConfigError(f"{prefix}.vosk_model_dir: expected a path")
        raw_langs = data.get("vosk_languages", ())
        if isinstance(raw_langs, str):
            langs = tuple(x.strip() for x in raw_langs.split(",") if x.strip())
        elif isinstance(raw_langs, Sequence) and all(isinstance(x, str) for x in raw_langs):
            langs = tuple(str(x) for x in raw_langs)
        else:
            raise ConfigError(f"{prefix}.vosk_languages: expected a list of language tags")
        if model_dir and not langs:
            raise ConfigError(f"{prefix}.vosk_languages: say which languages the vosk model is for")
        if engine == "vosk" and not model_dir:
            raise ConfigError(f"{prefix}.vosk_model_dir: engine vosk needs a model directory")
        workers = data.get("max_workers", 4)
        if not isinstance(workers, int) or isinstance(workers, bool) or not 1 <= workers <= 64:
            raise ConfigError(f"{prefix}.max_workers: expected an integer 1..64")
        mode = str(data.get("mode", "auto"))
        if mode not in MODES:
            raise ConfigError(f"{prefix}.mode: {mode!r} is not one of {', '.join(MODES)}")
        audiosocket, barge_in = data.get("audiosocket", True), data.get("barge_in", True)
        for key, flag in (("audiosocket", audiosocket), ("barge_in", barge_in)):
            if not isinstance(flag, bool):
                raise ConfigError(f"{prefix}.{key}: expected true or false")
        texts: dict[str, str] = {}
        for key in ("audiosocket_listen", "audiosocket_address", "record_dir", "record_asterisk_dir"):
            value = data.get(key, "127.0.0.1:0" if key == "audiosocket_listen" else "")
            if not isinstance(value, str | Path):
                raise ConfigError(f"{prefix}.{key}: expected text")
            texts[key] = str(value)
        for key in ("audiosocket_listen", "audiosocket_address"):
            if texts[key] and not _host_port(texts[key]):
                raise ConfigError(f"{prefix}.{key}: expected host:port, got {texts[key]!r}")
        threshold = data.get("min_confidence", 0.5)
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
            raise ConfigError(f"{prefix}.min_confidence: expected a number 0..1")
        return cls(
            engine=engine, vosk_model_dir=str(model_dir) if model_dir else None, vosk_languages=langs,
            max_workers=workers, endpoint=_endpoint(data.get("endpoint", {}), f"{prefix}.endpoint"),
            mode=mode, audiosocket=bool(audiosocket), barge_in=bool(barge_in), min_confidence=float(threshold),
            **texts,
        )


def _host_port(text: str) -> tuple[str, int] | None:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        return None
    return host, int(port)


def _endpoint(data: object, prefix: str) -> EndpointConfig:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{prefix}: expected a mapping")
    names = {f.name: f.type for f in fields(EndpointConfig)}
    values: dict[str, object] = {}
    for key, value in data.items():
        if key not in names:
            raise ConfigError(f"{prefix}.{key}: unknown setting")
        expected = type(getattr(EndpointConfig(), key))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or isinstance(value, bool):
            raise ConfigError(f"{prefix}.{key}: expected {expected.__name__}")
        values[key] = value
    try:
        return EndpointConfig(**values)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ConfigError(f"{prefix}: {exc}") from exc


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

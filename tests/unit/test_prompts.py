"""ivr.media.prompts: the catalogue with file:line findings, and the content-addressed prompt cache."""

from __future__ import annotations

import asyncio
import logging
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest

from ivr.diagnostics import Diagnostic, errors
from ivr.media import audio
from ivr.media.prompts import PromptCatalog, PromptNotFound, PromptStore, fill, parse_variables
from ivr.media.tts import TtsError, TtsRenderer

DEMO = Path(__file__).resolve().parents[2] / "prompts"
DEMO_NAMES = {  # at least these (features add more)
    "welcome", "main-menu", "invalid", "no-input", "goodbye", "apology", "transfer-agent", "coming-soon",
    "please-wait", "enter-account", "enter-pin", "enter-order", "auth-failed", "auth-locked", "greet-known",
    "balance-is", "order-status-is", "otp-sent", "enter-otp", "password-reset-done", "closed", "holiday",
    "callback-offer", "callback-confirmed", "voicemail-intro", "survey-intro", "survey-thanks", "you-pressed",
    "confirm-entry", "queue-position", "currency-dollars", "currency-cents", "currency-euros", "and",
    "order-state-received", "order-state-processing", "order-state-shipped", "order-state-delivered",
    "order-state-cancelled", "order-state-returned", "order-eta-is", "order-not-found", "anything-else",
    "enter-card", "enter-dob", "otp-failed",
}


class CountingSynth:
    """A fake voice: counts renders and writes a short 22,050 Hz WAV per text."""

    name = "fake"

    def __init__(self, voice: str = "v1", fail: bool = False) -> None:
        self.voice = voice
        self.fail = fail
        self.calls: list[tuple[str, str]] = []

    def identity(self, language: str) -> str:
        return f"fake:{self.voice}-{language}"

    def render(self, text: str, language: str, dst: Path) -> None:
        self.calls.append((text, language))
        if self.fail:
            raise TtsError("synthesiser down")
        audio.write_wav_atomic(dst, b"\x00\x01" * 2205, rate=22050)


def write_tone(path: Path, rate: int = 16000, channels: int = 2, freq: float = 440.0) -> Path:
    x = np.round(0.3 * 32767 * np.sin(2 * np.pi * freq * np.arange(rate // 4) / rate)).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.repeat(x, channels).tobytes())
    return path


def make(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return root


def load(root: Path, langs: tuple[str, ...] = ("en", "it")) -> tuple[PromptCatalog, list[Diagnostic]]:
    return PromptCatalog.load(root, langs, "en")


@pytest.fixture
def synth() -> CountingSynth:
    return CountingSynth()


@pytest.fixture
async def store(tmp_path: Path, synth: CountingSynth) -> PromptStore:
    root = make(tmp_path / "prompts", {
        "en/texts.yaml": 'hello: "Hello {customer_name}, welcome back."\nbye: "Goodbye."\nonly-en: "English only."\n',
        "it/texts.yaml": 'hello: "Ciao {customer_name}."\nbye: "Arrivederci."\n',
    })
    write_tone(root / "en" / "chime.wav")
    catalog, _ = load(root)
    return PromptStore(catalog, tmp_path / "cache", TtsRenderer(synth), asterisk_dir="/var/lib/asterisk/ivr")


def test_demo_catalogue_is_complete_and_clean() -> None:
    catalog, found = load(DEMO)
    assert found == []
    for lang in ("en", "it"):
        assert all(catalog.lookup(name, lang).language == lang for name in DEMO_NAMES)  # type: ignore[union-attr]
    welcome = {lang: catalog.lookup("welcome", lang).text for lang in ("en", "it")}  # type: ignore[union-attr]
    assert welcome["en"] == welcome["it"] == "Welcome to Acme. For English, press 1. Per l'italiano, premi 2."
    assert catalog.variables("greet-known", "it") == {"customer_name"}
    assert catalog.variables("order-status-is", "en") == {"order_digits", "order_status"}
    intro = catalog.lookup("beep-intro", "en")
    assert intro is not None and intro.kind == "recording" and intro.path is not None
    assert intro.path.stat().st_size < 100_000 and audio.probe(intro.path).rate != 8000


@pytest.mark.parametrize(("yaml_text", "line", "message"), [
    ('a: "x"\nb: foo: bar\n', 2, "YAML syntax error: mapping values are not allowed"),
    ('a: "x"\nb: "y"\n  c: "z"\n', 3, "YAML syntax error"),
    ('a: "x"\nb: 12\n', 2, "text of 'b' must be a string, not int"),
    ('a: "x"\n\nb: yes\n', 3, "text of 'b' must be a string, not bool"),
    ('a: "x"\nb:\n  - list\n', 3, "must be a string, not sequence"),
    ('a: "x"\nb: "  "\n', 2, "text of 'b' is empty"),
    ('a: "x"\nb: "Hi {customer name}"\n', 2, "b: bad variable {customer name}"),
    ('a: "x"\nb: "Hi {0}"\n', 2, "bad variable {0}"),
    ('a: "x"\nb: "Hi {name!r}"\n', 2, "bad variable {name}"),
    ('a: "x"\nb: "unclosed {name"\n', 2, "b: "),
    ('a: "x"\nb: "y"\na: "z"\n', 3, "duplicate prompt 'a' (first at 1)"),
    ('a: "x"\nbad name: "y"\n', 2, "bad prompt name 'bad name'"),
    ('- "a list"\n', 1, "expected a mapping of prompt name: text"),
])
def test_bad_texts_are_reported_at_their_line(tmp_path: Path, yaml_text: str, line: int, message: str) -> None:
    catalog, found = load(make(tmp_path, {"en/texts.yaml": yaml_text}), ("en",))
    assert [(d.file, d.line, d.severity) for d in found] == [(str(tmp_path / "en" / "texts.yaml"), line, "error")]
    assert found[0].message.startswith(message) or message in found[0].message
    assert not catalog.has("b", "en") or catalog.lookup("b", "en").text == "y"  # type: ignore[union-attr]


def test_unreadable_recording_is_an_error_and_the_rest_loads(tmp_path: Path) -> None:
    root = make(tmp_path, {"en/texts.yaml": 'ok: "Fine."\n'})
    (root / "en" / "broken.wav").write_bytes(b"RIFF....WAVEnope")
    catalog, found = load(root, ("en",))
    assert len(errors(found)) == 1 and found[0].file == str(root / "en" / "broken.wav")
    assert "cannot decode audio" in found[0].message
    assert catalog.has("ok", "en") and not catalog.has("broken", "en")


def test_missing_translation_falls_back_with_a_warning(tmp_path: Path) -> None:
    root = make(tmp_path, {"en/texts.yaml": 'a: "A."\nb: "B {x}."\n', "it/texts.yaml": 'b: "Bi {y}."\nc: "Ci."\n'})
    catalog, found = load(root)
    assert errors(found) == []
    by_message = {d.message: (d.file, d.line) for d in found}
    en = str(root / "en" / "texts.yaml")
    it = str(root / "it" / "texts.yaml")
    assert by_message["prompt 'a' has no 'it' version; callers hear 'en'"] == (en, 1)
    assert by_message["prompt 'b' uses other variables than its 'en' version"] == (it, 1)
    assert by_message["prompt 'c' is missing in the default language 'en': no fallback"] == (it, 2)
    src = catalog.lookup("a", "it")
    assert src is not None and (src.language, src.text) == ("en", "A.")
    assert catalog.lookup("c", "en") is None and catalog.has("c", "it")
    assert catalog.names() == {"a", "b", "c"} and catalog.variables("b", "it") == {"y"}


def test_missing_language_folders(tmp_path: Path) -> None:
    root = make(tmp_path, {"en/texts.yaml": 'a: "A."\n'})
    _, found = load(root)
    assert [(d.severity, d.message) for d in found] == [("warning", "no prompts for language 'it'")]
    _, found = PromptCatalog.load(root, ["it"], "de")
    assert ("error", "no prompts for language 'de'") in [(d.severity, d.message) for d in found]


def test_a_recording_wins_over_text_of_the_same_name(tmp_path: Path) -> None:
    root = make(tmp_path, {"en/texts.yaml": 'chime: "Ding dong."\n', "it/texts.yaml": 'chime: "Din don."\n'})
    write_tone(root / "en" / "chime.wav")
    catalog, found = load(root)
    assert found == []
    en, it = catalog.lookup("chime", "en"), catalog.lookup("chime", "it")
    assert en is not None and en.kind == "recording" and en.path == root / "en" / "chime.wav"
    assert en.text == "Ding dong."  # kept as its transcript
    assert it is not None and it.kind == "text" and it.language == "it"


def test_fill_and_parse_variables(caplog: pytest.LogCaptureFixture) -> None:
    assert parse_variables("Your order {order_number} is {order_status}. {{literal}}") == {
        "order_number", "order_status"}
    assert fill("Hi {name}, {{braces}} stay.", {"name": "Ann {x}"}) == "Hi Ann {x}, {braces} stay."
    with caplog.at_level(logging.WARNING, logger="ivr.prompts"):
        assert fill("Hello {customer_name}, welcome back.", {}, "greet") == "Hello, welcome back."
        assert fill("broken {", {}, "inline") == "broken {"
    assert "variable 'customer_name' is not set" in caplog.text and "spoken literally" in caplog.text


async def test_text_is_rendered_once_and_rerendered_when_it_changes(store: PromptStore, synth: CountingSynth,
                                                                    tmp_path: Path) -> None:
    first = await store.resolve("bye", "en", {})
    assert first.kind == "text" and first.description == "Goodbye."
    assert first.path.startswith("/var/lib/asterisk/ivr/en/") and len(first.path.rsplit("/", 1)[1]) == 24
    cached = tmp_path / "cache" / "en" / (first.path.rsplit("/", 1)[1] + ".wav")
    assert audio.is_telephone_wav(cached)
    assert await store.resolve("bye", "en", {}) == first
    assert synth.calls == [("Goodbye.", "en")]

    old = store.catalog
    make(tmp_path / "prompts", {"en/texts.yaml": 'bye: "Goodbye, see you soon."\n'})
    store.swap(load(tmp_path / "prompts")[0])
    changed = await store.resolve("bye", "en", {})
    assert changed.path != first.path and len(synth.calls) == 2
    assert store.swap(old) is not old and store.catalog is old
    assert await store.resolve("bye", "en", {}) == first and len(synth.calls) == 2


async def test_the_voice_is_part_of_the_cache_key(store: PromptStore, tmp_path: Path) -> None:
    before = await store.resolve("bye", "en", {})
    voice2 = CountingSynth(voice="v2")
    other = PromptStore(store.catalog, tmp_path / "cache", TtsRenderer(voice2))  # Asterisk sees the same dir
    after = await other.resolve("bye", "en", {})
    assert after.path.startswith(str((tmp_path / "cache").resolve()) + "/en/") and voice2.calls == [("Goodbye.", "en")]
    assert after.path.rsplit("/", 1)[1] != before.path.rsplit("/", 1)[1]


async def test_variables_are_filled_and_missing_ones_never_raise(store: PromptStore, synth: CountingSynth,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    r = await store.resolve("hello", "it", {"customer_name": "Giulia"})
    assert r.description == "Ciao Giulia." and synth.calls[-1] == ("Ciao Giulia.", "it")
    with caplog.at_level(logging.WARNING, logger="ivr.prompts"):
        r = await store.resolve("hello", "en", {})
    assert r.description == "Hello, welcome back." and "customer_name" in caplog.text
    r2 = await store.resolve("hello", "en", {"customer_name": "Bob"})
    assert r2.path != r.path and len(synth.calls) == 3


async def test_fallback_language_and_unknown_prompt(store: PromptStore, synth: CountingSynth) -> None:
    r = await store.resolve("only-en", "it", {})
    assert "/en/" in r.path and synth.calls == [("English only.", "en")]
    with pytest.raises(PromptNotFound):
        await store.resolve("nope", "en", {})


async def test_recording_is_converted_once_and_again_when_it_changes(store: PromptStore, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    conversions: list[Path] = []
    real = audio.to_telephone_wav

    def counting(src: Path, dst: Path) -> None:
        conversions.append(src)
        real(src, dst)

    monkeypatch.setattr("ivr.media.tts.to_telephone_wav", counting)
    first = await store.resolve("chime", "it", {})  # falls back to the English recording
    assert first.kind == "recording" and first.description == "chime" and "/en/" in first.path
    assert await store.resolve("chime", "en", {}) == first
    assert conversions == [tmp_path / "prompts" / "en" / "chime.wav"]
    write_tone(tmp_path / "prompts" / "en" / "chime.wav", freq=880)
    assert (await store.resolve("chime", "en", {})).path != first.path and len(conversions) == 2


async def test_concurrent_resolves_of_one_new_text_render_once(store: PromptStore, synth: CountingSynth) -> None:
    results = await asyncio.wait_for(asyncio.gather(
        *(store.resolve("hello", "en", {"customer_name": "Zoe"}) for _ in range(20))), timeout=10)
    assert len({r.path for r in results}) == 1 and len(synth.calls) == 1


async def test_inline_text_and_describe(store: PromptStore, synth: CountingSynth) -> None:
    r = await store.resolve_text("Your code is {code}.", "it", {"code": "4 2"})
    assert r.kind == "text" and r.description == "Your code is 4 2." and "/it/" in r.path
    unknown_language = await store.resolve_text("Hi.", "fr", {})
    assert "/en/" in unknown_language.path and synth.calls[-1] == ("Hi.", "en")
    assert store.describe(r.path) == "Your code is 4 2." and store.describe(r.path + ".wav") == r.description
    assert store.describe("/var/lib/asterisk/ivr/en/unknown") is None


async def test_a_failed_render_raises_and_is_retried_later(tmp_path: Path) -> None:
    make(tmp_path / "p", {"en/texts.yaml": 'a: "A."\n'})
    broken = CountingSynth(fail=True)
    store = PromptStore(load(tmp_path / "p", ("en",))[0], tmp_path / "c", TtsRenderer(broken))
    for _ in range(2):
        with pytest.raises(TtsError):
            await store.resolve("a", "en", {})
    assert len(broken.calls) == 2 and not any((tmp_path / "c").rglob("*.wav"))


async def test_build_renders_static_prompts_then_finds_them_cached(store: PromptStore,
                                                                   synth: CountingSynth) -> None:
    report = await store.build(["en", "it"])
    # en: bye, only-en rendered, chime converted, hello dynamic; it: bye rendered, hello dynamic
    assert (report.rendered, report.converted, report.cached, report.dynamic, report.failed) == (3, 1, 0, 2, [])
    again = await store.build(["en", "it"])
    assert (again.rendered, again.converted, again.cached) == (0, 0, 4) and len(synth.calls) == 3


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
async def test_demo_catalogue_builds_with_the_real_voice(tmp_path: Path) -> None:
    catalog, _ = load(DEMO)
    renderer = TtsRenderer()
    store = PromptStore(catalog, tmp_path, renderer)
    report = await asyncio.wait_for(store.build(), timeout=120)
    greet = await store.resolve("greet-known", "it", {"customer_name": "Giulia"})
    await renderer.close()
    texts = [(lang, name) for (lang, name), src in catalog.entries.items() if src.kind == "text"]
    dynamic = [t for t in texts if catalog.variables(t[1], t[0])]
    assert report.failed == [] and report.converted == 1 and report.dynamic == len(dynamic) >= 4
    # every static text in each language is rendered once; beep-intro is a recording in en, a text in it
    assert report.rendered == len(texts) - len(dynamic)
    wav = Path(greet.path + ".wav")
    assert audio.is_telephone_wav(wav) and 1.0 < audio.duration_seconds(wav) < 5.0

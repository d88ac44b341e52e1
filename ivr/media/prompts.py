"""Prompt catalogue (recordings and TTS texts per language) and the content-addressed cache Asterisk plays."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import string
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Literal

import yaml

from ivr.diagnostics import Diagnostic
from ivr.errors import IvrError
from ivr.media import audio
from ivr.media.tts import TtsRenderer

log = logging.getLogger("ivr.prompts")
Kind = Literal["recording", "text"]
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*\Z")
CONVERTER_ID = "telephone-wav/2"  # change when ivr.media.audio's conversion changes its output (2: soxr)
_STR_TAG = "tag:yaml.org,2002:str"


class PromptNotFound(IvrError):
    """No prompt of that name in the call's language nor in the default language."""


@dataclass(frozen=True)
class PromptSource:
    """Where a prompt comes from; `language` is the one actually used (after fallback)."""
    name: str
    language: str
    kind: Kind
    path: Path | None  # the recording
    text: str | None  # the TTS text; for a recording, its transcript when texts.yaml also has one
    file: str
    line: int  # 0 for a recording file


@dataclass(frozen=True)
class ResolvedPrompt:
    """What to play: `path` is Asterisk-side and has no extension."""
    path: str
    description: str  # prompt name for a recording, the spoken text for TTS
    kind: Kind


@dataclass
class BuildReport:
    rendered: int = 0  # texts synthesised now
    converted: int = 0  # recordings converted now
    cached: int = 0  # already in the cache
    dynamic: int = 0  # texts with {variables}: rendered per call
    failed: list[str] = field(default_factory=list)


def parse_variables(text: str) -> set[str]:
    """The `{name}` fields of a text; ValueError on broken braces, `{}`, `{a.b}`, `{x!r}`, `{x:>3}`."""
    names: set[str] = set()
    for _literal, name, spec, conversion in string.Formatter().parse(text):
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise ValueError(f"bad variable {{{name}}}: write {{name}} (letters, digits, _) or {{{{ }}}}")
        names.add(name)
    return names


_SPACE_BEFORE_MARK = re.compile(r" +([,.;:!?])")


def fill(text: str, variables: Mapping[str, str], where: str = "") -> str:
    """Put variable values into a text as given; a missing one is spoken as nothing (logged), never raised."""
    try:
        names = parse_variables(text)
    except ValueError:
        log.warning("prompt %s: text has broken braces or variables; spoken literally", where)
        return text
    for name in sorted(names - variables.keys()):
        log.warning("prompt %s: variable %r is not set; spoken as nothing", where, name)
    spoken = " ".join(text.format_map({name: str(variables.get(name, "")) for name in names}).split())
    return _SPACE_BEFORE_MARK.sub(r"\1", spoken)  # "Hello , welcome" when a name is empty → "Hello, welcome"


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _load_texts(path: Path, lang: str, found: list[Diagnostic]) -> dict[str, PromptSource]:
    file, out = str(path), dict[str, PromptSource]()
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader) if path.is_file() else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        found.append(Diagnostic(file, mark.line + 1 if mark else 0, f"YAML syntax error: {problem}"))
        return out
    except (OSError, UnicodeDecodeError) as exc:
        found.append(Diagnostic(file, 0, f"cannot read: {exc}"))
        return out
    if root is not None and not isinstance(root, yaml.MappingNode):
        found.append(Diagnostic(file, _line(root), "expected a mapping of prompt name: text"))
    for key, value in root.value if isinstance(root, yaml.MappingNode) else []:
        name, at = key.value if isinstance(key, yaml.ScalarNode) else None, _line(value)
        if not isinstance(name, str) or not NAME_RE.match(name):
            found.append(Diagnostic(file, _line(key), f"bad prompt name {name!r}: letters, digits, - and _"))
        elif name in out:
            found.append(Diagnostic(file, _line(key), f"duplicate prompt {name!r} (first at {out[name].line})"))
        elif not isinstance(value, yaml.ScalarNode) or value.tag != _STR_TAG:
            kind = value.tag.rsplit(":", 1)[-1] if isinstance(value, yaml.ScalarNode) else value.id
            found.append(Diagnostic(file, at, f"text of {name!r} must be a string, not {kind}"))
        elif not value.value.strip():
            found.append(Diagnostic(file, at, f"text of {name!r} is empty"))
        else:
            text = " ".join(value.value.split())
            try:
                parse_variables(text)
                out[name] = PromptSource(name, lang, "text", None, text, file, _line(key))
            except ValueError as exc:
                found.append(Diagnostic(file, at, f"{name}: {exc}"))
    return out


def _load_recordings(folder: Path, lang: str, found: list[Diagnostic]) -> dict[str, PromptSource]:
    recordings, problems = audio.find_recordings(folder)
    found.extend(Diagnostic(str(path), 0, problem) for path, problem in problems)
    found.extend(Diagnostic(str(path), 0, f"bad prompt name {name!r}: letters, digits, - and _")
                 for name, path in recordings.items() if not NAME_RE.match(name))
    return {name: PromptSource(name, lang, "recording", path, None, str(path), 0)
            for name, path in recordings.items() if NAME_RE.match(name)}


@dataclass(frozen=True)
class PromptCatalog:
    """A frozen snapshot of every prompt by (language, name); swap a new one in to reload."""

    prompts_dir: Path
    languages: tuple[str, ...]
    default_language: str
    entries: Mapping[tuple[str, str], PromptSource]

    @classmethod
    def load(cls, prompts_dir: Path, languages: Sequence[str], default_language: str
             ) -> tuple[PromptCatalog, list[Diagnostic]]:
        """Read prompts/<lang>/texts.yaml and recordings (blocking: it probes audio files)."""
        langs = tuple(dict.fromkeys([default_language, *languages]))
        found: list[Diagnostic] = []
        entries: dict[tuple[str, str], PromptSource] = {}
        absent = {lang for lang in langs if not (prompts_dir / lang).is_dir()}
        for lang in langs:
            folder = prompts_dir / lang
            if lang in absent:  # one finding for the folder, none per prompt
                severity: Literal["error", "warning"] = "error" if lang == default_language else "warning"
                found.append(Diagnostic(str(folder), 0, f"no prompts for language {lang!r}", severity))
                continue
            texts = _load_texts(folder / "texts.yaml", lang, found)
            merged = dict(texts)
            for name, rec in _load_recordings(folder, lang, found).items():  # a recording wins
                merged[name] = replace(rec, text=texts[name].text) if name in texts else rec
            entries.update({(lang, name): src for name, src in merged.items()})
        catalog = cls(prompts_dir, langs, default_language, entries)
        return catalog, sorted(found + catalog._coverage(absent))

    def _coverage(self, absent: set[str]) -> list[Diagnostic]:
        """Warnings: a prompt missing in a language, or using other variables than in the default one."""
        found, default = [], self.default_language
        for name in sorted(self.names()):
            base = self.entries.get((default, name))
            for lang in (lang for lang in self.languages if lang not in absent):
                src = self.entries.get((lang, name))
                if base is None and src is not None:
                    msg = f"prompt {name!r} is missing in the default language {default!r}: no fallback"
                elif src is None and base is not None:
                    src, msg = base, f"prompt {name!r} has no {lang!r} version; callers hear {default!r}"
                elif src and self.variables(name, lang) != self.variables(name, default):
                    msg = f"prompt {name!r} uses other variables than its {default!r} version"
                else:
                    continue
                found.append(Diagnostic(src.file, src.line, msg, "warning"))
        return found

    def lookup(self, name: str, language: str) -> PromptSource | None:
        return self.entries.get((language, name)) or self.entries.get((self.default_language, name))

    def has(self, name: str, language: str) -> bool:
        return self.lookup(name, language) is not None

    def names(self) -> set[str]:
        return {name for _lang, name in self.entries}

    def variables(self, name: str, language: str) -> set[str]:
        src = self.lookup(name, language)
        return parse_variables(src.text) if src and src.kind == "text" and src.text else set()


class PromptStore:
    """Resolves prompts to cached 8 kHz WAV files, rendering or converting each content only once."""

    def __init__(self, catalog: PromptCatalog, cache_dir: Path, renderer: TtsRenderer,
                 asterisk_dir: str | None = None, remembered: int = 10_000) -> None:
        self.catalog = catalog  # replace (or swap()) to reload; each resolution reads one snapshot
        self.cache_dir = cache_dir
        self.asterisk_dir = PurePosixPath(asterisk_dir or cache_dir.resolve())  # Asterisk needs it absolute
        self.renderer = renderer
        self._inflight: dict[Path, asyncio.Future[None]] = {}
        self._ready: set[Path] = set()
        self._recordings: dict[tuple[PromptSource, int, int], Path] = {}  # cleared on swap
        self._descriptions: OrderedDict[str, str] = OrderedDict()
        self._remembered = remembered

    def swap(self, catalog: PromptCatalog) -> PromptCatalog:
        old, self.catalog = self.catalog, catalog
        self._recordings = {}  # a reload may carry re-recorded files under the same names
        return old

    async def resolve(self, name: str, language: str, variables: Mapping[str, str] | None = None
                      ) -> ResolvedPrompt:
        src = self.catalog.lookup(name, language)
        if src is None:
            raise PromptNotFound(f"no prompt {name!r} for language {language!r}")
        return (await self._materialise(src, variables or {}))[0]

    async def resolve_text(self, text: str, language: str, variables: Mapping[str, str] | None = None
                           ) -> ResolvedPrompt:
        catalog = self.catalog
        lang = language if language in catalog.languages else catalog.default_language
        return (await self._speak(fill(text, variables or {}, "(inline)"), lang))[0]

    def describe(self, asterisk_path: str) -> str | None:
        """The description of a path this store resolved (extension optional)."""
        return self._descriptions.get(asterisk_path.removesuffix(".wav"))

    async def build(self, languages: Sequence[str] | None = None) -> BuildReport:
        """Render and convert every static prompt (texts without variables, recordings)."""
        catalog, report, seen = self.catalog, BuildReport(), set()
        for lang in languages or catalog.languages:
            for name in sorted(catalog.names()):
                src = catalog.lookup(name, lang)
                if src is None or (src.language, name) in seen:
                    continue
                seen.add((src.language, name))
                if src.kind == "text" and catalog.variables(name, src.language):
                    report.dynamic += 1
                    continue
                try:
                    made = (await self._materialise(src, {}))[1]
                except (IvrError, OSError) as exc:
                    report.failed.append(f"{src.file}:{src.line}: {name} ({src.language}): {exc}")
                    continue
                report.rendered += made and src.kind == "text"
                report.converted += made and src.kind == "recording"
                report.cached += not made
        return report

    async def _materialise(self, src: PromptSource, variables: Mapping[str, str]
                           ) -> tuple[ResolvedPrompt, bool]:
        if src.kind == "text":
            text = fill(src.text or "", variables, f"{src.name}/{src.language}")
            return await self._speak(text, src.language)
        path = src.path
        assert path is not None
        try:
            st = path.stat()  # microseconds, no thread hop: a replaced file changes mtime or size
        except OSError as exc:
            raise PromptNotFound(f"recording {path} is gone: {exc}") from exc
        memo = (src, st.st_mtime_ns, st.st_size)
        dst = self._recordings.get(memo)
        if dst is None:
            try:
                digest = await asyncio.to_thread(audio.file_digest, path)
            except OSError as exc:
                raise PromptNotFound(f"recording {path} is gone: {exc}") from exc
            dst = self._recordings[memo] = self._cache_path(src.language, "recording", CONVERTER_ID, digest)
        made = await self._ensure(dst, lambda: self.renderer.convert(path, dst))
        return self._resolved(dst, src.language, src.name, "recording"), made

    async def _speak(self, text: str, language: str) -> tuple[ResolvedPrompt, bool]:
        producer = f"{self.renderer.identity(language)}|{CONVERTER_ID}"  # rendered, then converted
        dst = self._cache_path(language, "text", producer, text)
        made = await self._ensure(dst, lambda: self.renderer.render(text, language, dst))
        return self._resolved(dst, language, text, "text"), made

    def _cache_path(self, language: str, kind: str, producer: str, content: str) -> Path:
        key = json.dumps([kind, producer, language, content], ensure_ascii=False)
        return self.cache_dir / language / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.wav"

    async def _ensure(self, dst: Path, make: Callable[[], Awaitable[None]]) -> bool:
        """Create dst once: concurrent callers share one job; a caller hanging up does not cancel it."""
        if dst in self._ready:
            return False  # hot path: no thread hop for audio already made (content-addressed: never stale)
        job = self._inflight.get(dst)
        if job is None and await asyncio.to_thread(dst.exists):
            self._ready.add(dst)
            return False
        job = self._inflight.get(dst)  # another caller may have started it while we looked
        if job is None:
            job = self._inflight[dst] = asyncio.ensure_future(make())
            job.add_done_callback(lambda j: (self._inflight.pop(dst, None), j.cancelled() or j.exception()))
        await asyncio.shield(job)
        self._ready.add(dst)
        return True

    def _resolved(self, dst: Path, language: str, description: str, kind: Kind) -> ResolvedPrompt:
        path = str(self.asterisk_dir / language / dst.stem)
        self._descriptions[path] = description
        self._descriptions.move_to_end(path)
        while len(self._descriptions) > self._remembered:
            self._descriptions.popitem(last=False)
        return ResolvedPrompt(path, description, kind)

"""The speech service of a running App: recognisers (loaded off the loop, once), the AudioSocket server, the mode.

Nodes reach it as `services.features["speech"]` (see `ivr.nodes.listen`). Modes:
- `stream` (and `auto` when the AudioSocket server runs): Asterisk streams the caller's audio to the
  service over AudioSocket while it listens; the stream is closed as soon as the recogniser decides;
- `record` (and `auto` without AudioSocket): AGI `RECORD FILE`, then recognise the file;
- `typed`: the simulator and scripted callers type what they "say" (`say:"my balance"`);
- `off`: keypad only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ivr.agi.audiosocket import AudioSocketServer
from ivr.errors import ConfigError
from ivr.speech.recognizer import Recognizer
from ivr.speech.registry import SpeechRegistry, SpeechSettings, _host_port, build_registry

log = logging.getLogger("ivr.speech")

FEATURE = "speech"  # the key in Services.features


class SpeechService:
    """Owns the recognisers and the AudioSocket server; `start()` at app start, `close()` at stop."""

    def __init__(self, settings: SpeechSettings, *, prompts_cache: Path | None = None,
                 asterisk_cache: str | None = None, registry: SpeechRegistry | None = None) -> None:
        self.settings = settings
        self.registry = registry
        self.audiosocket: AudioSocketServer | None = None
        cache = prompts_cache or Path("var/prompts")
        self.record_dir = Path(settings.record_dir) if settings.record_dir else cache / "speech"
        base = asterisk_cache.rstrip("/") + "/speech" if asterisk_cache else str(self.record_dir)
        self.record_asterisk_dir = settings.record_asterisk_dir or (
            str(self.record_dir) if settings.record_dir else base)
        self._loading: asyncio.Task[SpeechRegistry] | None = None

    @classmethod
    def from_config(cls, section: Mapping[str, Any], *, prompts_cache: Path | None = None,
                    asterisk_cache: str | None = None) -> SpeechService:
        """From the `[speech]` settings section; ConfigError names a bad key."""
        return cls(SpeechSettings.from_mapping(section), prompts_cache=prompts_cache, asterisk_cache=asterisk_cache)

    @property
    def mode(self) -> str:
        """The effective mode: `auto` resolved to `stream` or `record`."""
        mode = self.settings.mode
        if mode == "auto":
            return "stream" if self.settings.audiosocket else "record"
        return mode

    @property
    def address(self) -> str:
        """host:port that Asterisk's AudioSocket application connects to."""
        if self.settings.audiosocket_address:
            return self.settings.audiosocket_address
        return self.audiosocket.address if self.audiosocket is not None else ""

    async def start(self) -> None:
        """Start the AudioSocket server (stream mode) and load the recognisers in a worker thread."""
        if self.mode == "off":
            return
        if self.mode == "stream":
            where = _host_port(self.settings.audiosocket_listen)
            if where is None:
                raise ConfigError(f"speech.audiosocket_listen: expected host:port, got "
                                  f"{self.settings.audiosocket_listen!r}")
            self.audiosocket = AudioSocketServer()
            await self.audiosocket.start(*where)
        if self.mode == "record":
            self.record_dir.mkdir(parents=True, exist_ok=True)
        await self.recognizers()

    async def recognizers(self) -> SpeechRegistry:
        """The registry, loaded once off the event loop (the first caller waits; ConfigError if it cannot)."""
        if self.registry is not None:
            return self.registry
        if self._loading is None:
            self._loading = asyncio.ensure_future(asyncio.to_thread(build_registry, self.settings))
        self.registry = await asyncio.shield(self._loading)
        log.info("speech recognisers ready: %s (mode %s)",
                 ", ".join(f"{r.name} {sorted(r.languages)}" for r in self.registry.recognizers), self.mode)
        return self.registry

    async def recognizer_for(self, language: str) -> Recognizer | None:
        """The recogniser for a caller's language; None = no model (keypad only)."""
        return (await self.recognizers()).for_language(language)

    async def close(self) -> None:
        if self.audiosocket is not None:
            await self.audiosocket.close()
        if self._loading is not None and not self._loading.done():
            self._loading.cancel()
        if self.registry is not None:
            await asyncio.to_thread(self.registry.close)

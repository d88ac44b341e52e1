"""The real App with every component configured: the order it starts and stops them in, and a failed start.

Stop order, as before the lifecycle existed: live calls drain first; the dialer stops before AMI closes
(calls being placed); CRM records are flushed before the backends close; Redis closes after everything
that uses it; speech and TTS last. A component failing to start stops those already started.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from ivr.agi.server import AgiServer
from ivr.ami import AmiClient
from ivr.app import App
from ivr.backends.http import Backends
from ivr.background import Background
from ivr.errors import ConfigError
from ivr.identity.sms import HttpSmsGateway
from ivr.media.tts import TtsRenderer
from ivr.ops.emergency import EmergencySwitch
from ivr.ops.voicemail import WebhookNotifier
from ivr.queueing.dialer import Dialer
from ivr.speech.service import SpeechService
from ivr.store import Store
from lab.redis_server import free_port
from tests.appkit import settings_for

STARTS = [(SpeechService, "start", "speech"), (AmiClient, "start", "ami"), (WebhookNotifier, "start", "webhook"),
          (Dialer, "start", "dialer"), (EmergencySwitch, "start", "emergency"), (web.TCPSite, "start", "http"),
          (AgiServer, "start", "agi")]
STOPS = [(AgiServer, "drain", "agi"), (web.AppRunner, "cleanup", "http"), (EmergencySwitch, "stop", "emergency"),
         (Dialer, "stop", "dialer"), (WebhookNotifier, "stop", "webhook"), (AmiClient, "close", "ami"),
         (Background, "flush", "background"), (Backends, "close", "backends"), (HttpSmsGateway, "close", "sms"),
         (Store, "close", "redis"), (SpeechService, "close", "speech"), (TtsRenderer, "close", "tts")]


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every start and stop of the App's components, in the order they happen (the real methods still run)."""
    seen: list[str] = []
    for kind, table in (("start", STARTS), ("stop", STOPS)):
        for cls, method, label in table:
            original = getattr(cls, method)

            async def spy(self: Any, *args: Any, _o: Any = original, _e: str = f"{kind} {label}",
                          **kwargs: Any) -> Any:
                seen.append(_e)
                return await _o(self, *args, **kwargs)

            monkeypatch.setattr(cls, method, spy)
    return seen


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port something else already listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def everything(tmp: Path, redis_url: str, **over: Any) -> App:
    """Redis, AMI, backends, SMS and the voicemail webhook configured (the remote ends need not answer)."""
    dead = f"http://127.0.0.1:{free_port()}"
    return App(settings_for(tmp, redis_url=redis_url, ami_enabled=True, ami_port=free_port(), backends_url=dead,
                            sms_url=dead + "/messages", auth_otp_key="k" * 32, voicemail_dir=tmp / "vm",
                            voicemail_webhook=dead + "/hook", **over))


async def test_components_stop_in_the_reverse_of_their_start_with_calls_drained_first(
        tmp_path: Path, redis_url: str, events: list[str]) -> None:
    app = everything(tmp_path, redis_url)
    assert app.lifecycle.names == ["flows", "tts", "speech", "redis", "sms", "backends", "background", "ami",
                                   "voicemail-webhook", "dialer", "emergency", "http", "reloads", "agi"]
    await app.start()
    assert events == ["start speech", "start ami", "start webhook", "start dialer", "start emergency",
                      "start http", "start agi"]
    assert app.dialer is not None and app.http_port and app.agi.port
    events.clear()
    await app.stop()
    assert events == ["stop agi", "stop http", "stop emergency", "stop dialer", "stop webhook", "stop ami",
                      "stop background", "stop backends", "stop sms", "stop redis", "stop speech", "stop tts"]
    assert app.lifecycle.running == []


async def test_a_component_failing_to_start_stops_those_already_started(
        tmp_path: Path, redis_url: str, events: list[str], busy_port: int) -> None:
    app = everything(tmp_path, redis_url, http_port=busy_port)
    with pytest.raises(OSError):
        await app.start()
    assert "start agi" not in events and app.agi.port == 0  # calls are never accepted
    assert events[events.index("start http"):] == [
        "start http", "stop http",  # the HTTP runner cleans up after its own failed bind
        "stop emergency", "stop dialer", "stop webhook", "stop ami", "stop background", "stop backends", "stop sms",
        "stop redis", "stop speech", "stop tts"]
    assert app.lifecycle.running == []
    audiosocket = app.speech.audiosocket  # started before HTTP failed, closed again
    assert audiosocket is not None and audiosocket._server is not None and not audiosocket._server.is_serving()
    count = len(events)
    await app.stop()  # nothing left to stop
    assert len(events) == count


async def test_invalid_flows_start_nothing(tmp_path: Path, events: list[str]) -> None:
    app = App(settings_for(tmp_path))
    (tmp_path / "dialplans" / "main.yaml").write_text("flow: main\nstart: nowhere\nnodes: {}\n")
    with pytest.raises(ConfigError, match="flows or prompts are invalid"):
        await app.start()
    assert events == []

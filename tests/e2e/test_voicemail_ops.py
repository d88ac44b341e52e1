"""Voicemail and the ops line on real Asterisk, with SIPp callers that speak (espeak-ng audio over RTP).

- Ops line (extension 200, dialplans/ops.yaml): the ops person keys PIN and the one-time code texted to the
  number on file, records the announcement by voice, hears it back, publishes it for one hour. The switch is
  on in Redis with that recording, the file is telephone audio with who/when, and the next caller hears it.
- Voicemail on overflow: nobody staffs the queue, the caller leaves a message and hangs up; the message is
  stored with caller, time, language and reason, and the webhook (an aiohttp server here) receives it.

Pauses come from the rendered prompts' real lengths, so a caller keys in while the service listens.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from aiohttp import web

import ivr.identity.auth
from ivr.demo import refbackend, smssink
from ivr.demo.smssink import SINK, SmsSink
from ivr.media.audio import duration_seconds
from ivr.store import EMERGENCY
from lab import AsteriskInstance, Dtmf, Hangup, Pause, Speak, Step, WaitHangup, espeak_wav, run_call
from tests.appkit import project_copy
from tests.e2e.servicekit import Service, running_service, said, visited

OPS_PHONE = "+12025550190"  # account 9001, "Ops Desk", tier ops, PIN 8642 (ivr/demo/refbackend/seed.py)
OPS_PIN = "8642"
CODE = "135790"
LISTENER_FLOW = """
flow: main
start: news
nodes:
  news: {type: announcement, next: bye}
  bye: {type: hangup}
"""
OVERFLOW_FLOW = """
flow: main
start: q
nodes:
  q: {type: queue, queue: billing, next: {voicemail: vm}}
  vm: {type: voicemail, next: bye}
  bye: {type: hangup}
"""


class FixedCodes:
    """Stands in for `secrets` inside ivr.identity.auth so the scripted caller knows the code before dialling (SIPp
    cannot read an SMS mid-call); the code still travels by SMS and is checked as usual."""

    def __init__(self, code: str) -> None:
        self.digits = list(code)
        self.token_hex = secrets.token_hex

    def choice(self, seq: str) -> str:
        digit = self.digits.pop(0)
        self.digits.append(digit)
        return digit


async def prompt_len(svc: Service, asterisk: AsteriskInstance, name: str) -> int:
    """Milliseconds a catalogue prompt plays (English), from the file Asterisk plays."""
    resolved = await svc.app.prompts.resolve(name, "en", {})
    return round(duration_seconds(asterisk.host_path(str(resolved.path) + ".wav")) * 1000)


def dirs(asterisk: AsteriskInstance, name: str) -> tuple[Path, str]:
    """A folder inside Asterisk's chroot: (host path, Asterisk's path)."""
    host = asterisk.workdir / name
    host.mkdir(parents=True, exist_ok=True)
    return host, asterisk.asterisk_path(host)


@asynccontextmanager
async def ops_service(asterisk: AsteriskInstance, tmp: Path, redis_url: str, **over: Any
                      ) -> AsyncIterator[tuple[Service, SmsSink]]:
    sink = await smssink.serve()
    backend = await refbackend.serve(str(tmp / "ref.sqlite"), sms_url=f"{sink.url}/messages")
    ann_host, ann_asterisk = dirs(asterisk, f"announcements-{tmp.name}")
    try:
        async with running_service(
                asterisk, tmp, redis_url=redis_url, backends_url=backend.url, sms_url=f"{sink.url}/messages",
                auth_otp_key="e2e-otp-key-0123456789abcdef", announcements_dir=ann_host,
                announcements_asterisk_dir=ann_asterisk, **over) as svc:
            yield svc, sink.app[SINK]
    finally:
        await backend.close()
        await sink.close()


def telephone_wav(path: Path) -> tuple[int, int, int]:
    with wave.open(str(path), "rb") as w:
        return w.getframerate(), w.getnchannels(), w.getsampwidth()


async def test_ops_line_records_and_publishes_then_callers_hear_it(
        asterisk: AsteriskInstance, tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    flows, _ = project_copy(tmp_path)
    (flows / "main.yaml").write_text(LISTENER_FLOW)
    monkeypatch.setattr(ivr.identity.auth, "secrets", FixedCodes(CODE))
    voice = espeak_wav("Our offices are closed today because of a storm. Please call back tomorrow.",
                       tmp_path / "ops-voice.wav")
    async with ops_service(asterisk, tmp_path, redis_url) as (svc, sink):
        ms = {n: await prompt_len(svc, asterisk, n)
              for n in ("enter-pin", "otp-sent", "enter-otp", "ops-record", "ops-review")}
        steps: list[Step] = [
            Pause(ms["enter-pin"] // 2), Dtmf(OPS_PIN + "#"),                    # PIN, during its prompt
            Pause(ms["otp-sent"] + ms["enter-otp"] // 2 + 500), Dtmf(CODE + "#"),  # the code from the SMS
            Pause(ms["ops-record"] + 2000), Speak(voice), Dtmf("#"),              # the announcement, by voice
            Pause(ms["ops-review"] + 2000), Dtmf("1"),                            # while it plays back: publish
            Pause(1500), Dtmf("1"),                                               # for one hour
            WaitHangup(40_000),
        ]
        result = await run_call(asterisk.sip_port, steps, extension="200", caller_id=OPS_PHONE, time_limit=150)
        assert result.ok, result.describe()
        [journey] = await svc.journey_count(1)
        assert journey["flow"] == "ops", json.dumps(journey)
        assert visited(journey) == ["identify", "auth", "role", "record", "bye"], json.dumps(journey)
        results = [e["result"] for e in journey["journey"] if e["kind"] == "announcement"]
        assert results == ["recorded", "published"], json.dumps(journey)
        assert said(journey)[-2:] == ["ops-published", "goodbye"]
        [sms] = sink.received(OPS_PHONE)
        assert CODE in sms["text"]
        assert OPS_PIN not in json.dumps(journey) and CODE not in json.dumps(journey)
        assert not re.search(rf"\b({OPS_PIN}|{CODE})\b", caplog.text), "a secret reached the log"

        # the switch is on, in Redis, with the recording, for one hour, set by the ops account
        raw = redis.Redis.from_url(redis_url).get(EMERGENCY)
        assert raw is not None
        ann = json.loads(raw)
        assert ann["set_by"] == "ops:9001" and ann["recorded_by"] == "ops:9001"
        assert ann["expires_at"] - ann["set_at"] == 3600
        # the published file: telephone audio, with who recorded it and when
        folder = svc.app.settings.announcements_dir
        [meta_file] = folder.glob("*.json")
        meta = json.loads(meta_file.read_text())
        assert meta["state"] == "published" and meta["recorded_by_name"] == "Ops Desk"
        assert ann["prompt"] == meta["asterisk"] == asterisk.asterisk_path(folder / meta["id"])
        assert telephone_wav(Path(meta["file"])) == (8000, 1, 2)
        assert duration_seconds(Path(meta["file"])) > 2.0  # the speech, not just silence

        # the next caller on the main line hears it, played by Asterisk from that file
        mark = asterisk.log_mark()
        listener = await run_call(asterisk.sip_port, [Pause(1000), WaitHangup(60_000)], time_limit=90)
        assert listener.ok, listener.describe()
        second = (await svc.journey_count(2))[-1]
        [event] = [e for e in second["journey"] if e["kind"] == "emergency"]
        assert event["prompt"] == meta["asterisk"] and event["set_by"] == "ops:9001"
        await svc.wait_for("Asterisk's log", lambda: f"Playing '{meta['asterisk']}." in asterisk.log_text(
            since=mark, tail=5000))


async def test_a_customer_cannot_use_the_ops_line(
        asterisk: AsteriskInstance, tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ivr.identity.auth, "secrets", FixedCodes(CODE))
    async with ops_service(asterisk, tmp_path, redis_url) as (svc, _):
        ms = {n: await prompt_len(svc, asterisk, n) for n in ("enter-pin", "otp-sent", "enter-otp")}
        steps: list[Step] = [Pause(ms["enter-pin"] // 2), Dtmf("9753#"),
                             Pause(ms["otp-sent"] + ms["enter-otp"] // 2 + 500), Dtmf(CODE + "#"),
                             WaitHangup(40_000)]
        result = await run_call(asterisk.sip_port, steps, extension="200", caller_id="+12025550103",
                                time_limit=90)
        assert result.ok, result.describe()
        [journey] = await svc.journey_count(1)
    assert visited(journey) == ["identify", "auth", "role", "denied"], json.dumps(journey)
    assert said(journey)[-1] == "ops-denied"
    assert redis.Redis.from_url(redis_url).get(EMERGENCY) is None
    assert not list(svc.app.settings.announcements_dir.glob("*.json"))


@asynccontextmanager
async def webhook() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    got: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        got.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/voicemail", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/voicemail", got
    finally:
        await runner.cleanup()


async def test_overflow_voicemail_is_stored_and_the_webhook_told(asterisk: AsteriskInstance, tmp_path: Path) -> None:
    flows, _ = project_copy(tmp_path)
    (flows / "main.yaml").write_text(OVERFLOW_FLOW)
    (flows / "queues.yaml").write_text("queues:\n  billing: {when_no_agents: voicemail}\n")
    vm_host, vm_asterisk = dirs(asterisk, f"voicemail-{tmp_path.name}")
    voice = espeak_wav("Hello, this is Alice. Please call me back about my order.", tmp_path / "message.wav")
    async with (webhook() as (url, got),
                running_service(asterisk, tmp_path, voicemail_dir=vm_host, voicemail_asterisk_dir=vm_asterisk,
                                voicemail_webhook=url) as svc):
        await svc.wait_for("queue state", lambda: "billing" in svc.app.services.queues.queues)  # type: ignore[union-attr]
        intro = await prompt_len(svc, asterisk, "voicemail-intro")
        steps: list[Step] = [Pause(intro + 1500), Speak(voice), Hangup()]  # speaks, then hangs up
        result = await run_call(asterisk.sip_port, steps, caller_id="+12025550101", time_limit=60)
        assert result.ok, result.describe()
        [journey] = await svc.journey_count(1)
        await svc.wait_for("the webhook", lambda: len(got) == 1, limit=30)
        store = svc.app.services.voicemail
        assert store is not None
        await svc.wait_for("the outbox emptied", lambda: store.pending() == [])
    assert visited(journey) == ["q", "vm"] and journey["outcome"] == "voicemail:overflow", json.dumps(journey)
    [event] = [e for e in journey["journey"] if e["kind"] == "voicemail"]
    assert event["saved"] is True
    [message] = got
    assert message["id"] == event["id"] and message["caller"] == "+12025550101"
    assert (message["reason"], message["language"], message["queue"], message["flow"]) == (
        "overflow", "en", "billing", "main")
    assert message["time"].endswith("+00:00") and message["seconds"] > 2.0
    audio = Path(message["file"])
    assert audio.parent == vm_host / "messages" and telephone_wav(audio) == (8000, 1, 2)
    meta = store.get(message["id"])
    assert meta["notified_at"] and {k: meta[k] for k in message} == message

"""Menus and gathers that listen: scripted callers type what they say (`say:"..."`), keys still win."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ivr.config import Settings
from ivr.journeys import JourneyLog
from ivr.services import Services
from ivr.speech.registry import SpeechSettings
from ivr.speech.service import FEATURE, SpeechService
from ivr.testing import FakePrompts
from tests.flowkit import prompts, run, visited

MENU = """
flow: m
start: menu
nodes:
  menu:
    type: menu
    prompt: main-menu
    options: {"1": balance, "2": orders, "0": agent}
    say:
      "1": [balance, "how much do I owe", "account balance"]
      "2": ["order status", "where is my order", orders]
      "0": [agent, "a person", representative]
    next: {invalid: agent, timeout: agent}
  balance: {type: hangup}
  orders:
    type: gather
    prompt: enter-order
    var: order_number
    min_digits: 4
    max_digits: 4
    speech: true
    next: {next: done, invalid: agent, timeout: agent}
  done: {type: hangup}
  agent: {type: queue, queue: support}
"""


@pytest.fixture
async def svc() -> AsyncIterator[Services]:
    services = Services(Settings(), FakePrompts(), JourneyLog(None))
    speech = SpeechService(SpeechSettings(mode="typed"))
    await speech.start()
    services.features[FEATURE] = speech
    try:
        yield services
    finally:
        await speech.close()


def inputs(call: object, node: str) -> list[dict[str, object]]:
    return [{"via": e.detail["via"], **e.detail} for e in call.journey  # type: ignore[attr-defined]
            if e.kind == "input" and e.node == node]


async def test_each_option_is_reached_by_a_phrase(svc: Services) -> None:
    for said, node in [("balance", "balance"), ("where is my order", "orders"), ("representative", "agent")]:
        call, _ = await run(MENU, f'say:"{said}" t t t t t t', svc=svc)
        assert visited(call)[:2] == ["menu", node], said
        assert inputs(call, "menu")[0]["text"] == said


async def test_a_looser_phrasing_is_confirmed_first(svc: Services) -> None:
    call, ch = await run(MENU, 'say:"I want to talk to a person please" say:yes', svc=svc)
    assert visited(call)[:2] == ["menu", "agent"]
    assert "speech-heard" in prompts(ch) and "speech-is-that-right" in prompts(ch)
    assert [e.detail["accepted"] for e in call.journey if e.kind == "confirm"] == [True]


async def test_unknown_phrase_reprompts_with_examples_then_keypad(svc: Services) -> None:
    call, ch = await run(MENU, 'say:"pizza" say:"weather" 1', svc=svc)
    assert visited(call)[:2] == ["menu", "balance"]
    heard = prompts(ch)
    assert heard[:4] == ["main-menu", "speech-examples", "speech-use-keypad", "goodbye"]  # "1" during the hint
    assert [i["via"] for i in inputs(call, "menu")] == ["speech", "speech", "dtmf"]


async def test_a_key_wins_over_listening(svc: Services) -> None:
    call, _ = await run(MENU, "0", svc=svc)
    assert visited(call)[:2] == ["menu", "agent"]
    assert inputs(call, "menu")[0]["via"] == "dtmf"


async def test_spoken_order_number_is_read_back_and_confirmed(svc: Services) -> None:
    call, ch = await run(MENU, 'say:"order status" say:"four five one two" say:yes', svc=svc)
    assert visited(call) == ["menu", "orders", "done"]
    assert call.vars["order_number"] == "4512"
    assert ("digits", "4512") in ch.said
    assert "speech-heard" in prompts(ch)


async def test_spoken_order_number_rejected_then_keyed(svc: Services) -> None:
    call, _ = await run(MENU, 'say:orders say:"four five one two" say:no 4 5 1 2', svc=svc)
    assert visited(call) == ["menu", "orders", "done"]
    assert call.vars["order_number"] == "4512"


async def test_language_without_a_model_hears_the_keypad_hint_once(svc: Services) -> None:
    doc = MENU.replace("start: menu", "start: it").replace(
        "nodes:\n", "nodes:\n  it: {type: language, language: it, next: menu}\n")
    call, ch = await run(doc, "t 2 5 6 7 8 #", svc=svc)
    assert visited(call) == ["it", "menu", "orders", "done"]
    assert prompts(ch).count("speech-use-keypad") == 1
    assert [e.detail for e in call.journey if e.kind == "speech"] == [{"unavailable": "it"}]


async def test_without_speech_service_menus_are_keypad_only() -> None:
    call, _ = await run(MENU, 'say:balance 1', svc=Services(Settings(), FakePrompts(), JourneyLog(None)))
    assert visited(call)[:2] == ["menu", "balance"]
    assert [i["via"] for i in inputs(call, "menu")] == ["timeout", "dtmf"]


async def test_simulator_callers_type_what_they_say(tmp_path: Path) -> None:
    from ivr.simulate import simulate
    from tests.appkit import project_copy, settings_for

    flows, _ = project_copy(tmp_path)
    (flows / "main.yaml").write_text(MENU.replace("flow: m", "flow: main"))
    lines: list[str] = []
    transcript, journey = await simulate(settings_for(tmp_path), "main", 'say:"how much do I owe"',
                                         echo=lines.append)
    assert '  🗣 "how much do I owe"' in lines
    assert [e["node"] for e in journey["journey"] if e["kind"] == "enter"] == ["menu", "balance"]
    assert transcript.hung_up_by == "service"


async def test_audiosocket_that_never_connects_falls_back_to_the_keypad(monkeypatch: pytest.MonkeyPatch) -> None:
    import ivr.nodes.listen as listen_mod

    monkeypatch.setattr(listen_mod, "CONNECT_SECONDS", 0.2)
    services = Services(Settings(), FakePrompts(), JourneyLog(None))
    speech = SpeechService(SpeechSettings(mode="stream"))
    await speech.start()
    services.features[FEATURE] = speech
    try:
        # silence while it waits for a key instead of listening; then a key during the prompt
        call, ch = await run(MENU, "t 1", svc=services)
    finally:
        await speech.close()
    assert [app for app, _ in ch.apps] == ["AudioSocket"]
    assert visited(call)[:2] == ["menu", "balance"]
    assert [i["via"] for i in inputs(call, "menu")] == ["timeout", "dtmf"]


async def test_record_then_recognise(tmp_path: Path) -> None:
    """Without AudioSocket: RECORD FILE, then the recording is recognised (here "Asterisk" writes espeak-ng audio)."""
    from ivr.testing import FakeChannel
    from lab.audio import espeak_wav

    services = Services(Settings(), FakePrompts(), JourneyLog(None))
    speech = SpeechService(SpeechSettings(audiosocket=False, record_dir=str(tmp_path / "rec")))
    await speech.start()
    services.features[FEATURE] = speech
    takes = iter(["where is my order", "four five one two", "yes"])

    def record(path: str) -> None:
        espeak_wav(next(takes), Path(path + ".wav"), pad_seconds=1.0, pcm16=True)

    channel = FakeChannel.scripted("t t t")  # the prompts play in full; the caller speaks at each recording
    channel.on_record = record
    try:
        call, _ = await run(MENU, svc=services, channel=channel)
    finally:
        await speech.close()
    assert speech.mode == "record"
    assert [p.rsplit("/", 1)[0] for p in channel.recorded] == [str(tmp_path / "rec")] * 3
    assert visited(call) == ["menu", "orders", "done"]
    assert call.vars["order_number"] == "4512"
    assert list((tmp_path / "rec").iterdir()) == []  # recordings are removed once recognised


class SocketCaller:
    """Plays Asterisk's side of AudioSocket for a FakeChannel: each `EXEC AudioSocket` connects back to the
    service and sends the next turn: speech (espeak-ng audio in 20 ms frames, then silence) or a key frame."""

    def __init__(self, channel: object, turns: list[tuple[str, str]], tmp: Path) -> None:
        self.turns = iter(turns)
        self.tmp = tmp
        self.closed_by_service = 0
        self.channel = channel
        self._exec = channel.exec_app  # type: ignore[attr-defined]
        channel.exec_app = self.exec_app  # type: ignore[attr-defined]

    async def exec_app(self, app: str, *args: str) -> int:
        import asyncio
        import uuid

        from ivr.agi.audiosocket_codec import Kind, encode, encode_audio, encode_uuid, read_frame
        from lab.audio import espeak_wav, ulaw_to_linear, wav_data

        await self._exec(app, *args)
        if app != "AudioSocket":
            return 0
        uid, _, address = args[0].partition(",")
        host, _, port = address.rpartition(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(encode_uuid(uuid.UUID(uid)))
        kind, value = next(self.turns)
        if kind == "say":
            pcm = ulaw_to_linear(wav_data(espeak_wav(value, self.tmp / f"{len(value)}.wav", pad_seconds=1.5))[3])
            writer.write(encode_audio(pcm))
        else:  # the first key as a frame; the caller keys the rest after it (WAIT FOR DIGIT)
            writer.write(encode(Kind.DTMF, value[:1].encode()))
            self.channel.script.todo.extend(value[1:])  # type: ignore[attr-defined]
        await writer.drain()
        while (frame := await read_frame(reader)) is not None:
            if frame.kind == Kind.HANGUP:
                self.closed_by_service += 1
                break
        writer.close()
        return 0


async def test_streaming_over_audiosocket_speech_and_a_key_frame(tmp_path: Path) -> None:
    from ivr.testing import FakeChannel

    services = Services(Settings(), FakePrompts(), JourneyLog(None))
    speech = SpeechService(SpeechSettings(mode="stream"))
    await speech.start()
    services.features[FEATURE] = speech
    channel = FakeChannel.scripted("")  # prompts play in full; the caller answers over the socket
    caller = SocketCaller(channel, [("say", "order status"), ("key", "4512")], tmp_path)
    try:
        call, _ = await run(MENU, svc=services, channel=channel)
    finally:
        await speech.close()
    assert visited(call) == ["menu", "orders", "done"]
    assert inputs(call, "menu")[0]["text"] == "order status"
    assert [(i["via"], i.get("value")) for i in inputs(call, "orders")] == [("dtmf", "4512")]
    assert caller.closed_by_service == 2  # the service ended each stream once it had its answer


async def test_a_key_pressed_during_the_keypad_hint_is_kept_for_the_menu(svc: Services) -> None:
    doc = MENU.replace("start: menu", "start: it").replace(
        "nodes:\n", "nodes:\n  it: {type: language, language: it, next: menu}\n")
    call, ch = await run(doc, "0", svc=svc)
    assert visited(call)[:3] == ["it", "menu", "agent"]
    assert prompts(ch)[:1] == ["speech-use-keypad"] and "main-menu" not in prompts(ch)

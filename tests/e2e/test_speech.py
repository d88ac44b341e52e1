"""Speech on real Asterisk: SIPp callers play phrases synthesised by espeak-ng (8 kHz mu-law, padded with
silence) with rtp_stream; Asterisk streams the call's audio to the service over AudioSocket; pocketsphinx
(or vosk, when IVR_VOSK_MODEL names a model directory) decides. What each call did is read from its journey.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from lab import AsteriskInstance, Dtmf, Hangup, Pause, Speak, Step, WaitHangup, run_call
from lab.audio import espeak_wav
from tests.appkit import project_copy
from tests.e2e.servicekit import running_service, said, visited

FLOW = """
flow: main
start: menu
nodes:
  menu:
    type: menu
    prompt: {text: "Welcome. Say balance, order status, or agent."}
    options: {"1": balance, "2": orders, "0": agent}
    say:
      "1": [balance, "account balance", "how much do i owe"]
      "2": ["order status", "where is my order", "track my order"]
      "0": [agent, "a person", representative, operator]
    timeout: 6
    next: {invalid: agent, timeout: agent}
  balance: {type: hangup, prompt: {text: "Balance."}}
  agent: {type: hangup, prompt: {text: "Agent."}}
  orders:
    type: gather
    prompt: {text: "Say or key your order number."}
    var: order_number
    min_digits: 4
    max_digits: 4
    speech: true
    timeout: 6
    next: {next: done, invalid: agent, timeout: agent}
  done: {type: hangup, prompt: {text: "Thank you."}}
"""

MENU_PROMPT_MS = 4500  # answer + AGI + the menu prompt, then the service listens


def speech_flow(tmp: Path) -> None:
    flows, _ = project_copy(tmp)
    (flows / "main.yaml").write_text(FLOW)


def wav(tmp: Path, text: str) -> Path:
    return espeak_wav(text, tmp / "say" / (text.replace(" ", "_") + ".wav"), pad_seconds=2.5)


def menu_inputs(journey: dict[str, Any], node: str = "menu") -> list[dict[str, Any]]:
    return [e for e in journey["journey"] if e["kind"] == "input" and e["node"] == node]


async def one_call(asterisk: AsteriskInstance, tmp: Path, steps: list[Step], **speech: Any) -> dict[str, Any]:
    speech_flow(tmp)
    async with running_service(asterisk, tmp, extra={"speech": speech}) as svc:
        result = await run_call(asterisk.sip_port, [*steps, WaitHangup(40_000)], time_limit=90)
        assert result.ok, result.describe()
        [journey] = await svc.journey_count(1, limit=30)
    return journey


@pytest.mark.parametrize(("phrase", "node", "key"), [
    ("balance", "balance", "1"),
    ("where is my order", "orders", "2"),      # a synonym of "order status"
    ("representative", "agent", "0"),        # a synonym of "agent"
])
async def test_each_intent_is_reached_by_voice(asterisk: AsteriskInstance, tmp_path: Path, phrase: str,
                                               node: str, key: str) -> None:
    steps: list[Step] = [Pause(MENU_PROMPT_MS), Speak(wav(tmp_path, phrase), via="rtp_stream")]
    if node == "orders":
        steps.append(Pause(8000))  # into the gather; it times out twice without an answer: agent
    journey = await one_call(asterisk, tmp_path, steps)
    first = menu_inputs(journey)[0]
    assert first["via"] == "speech" and first["key"] == key, journey
    assert visited(journey)[:2] == ["menu", node]


async def test_speech_barges_in_on_the_prompt(asterisk: AsteriskInstance, tmp_path: Path) -> None:
    # the menu prompt lasts ~3 s; the caller talks over it from ~1.5 s
    journey = await one_call(asterisk, tmp_path, [Pause(1500), Speak(wav(tmp_path, "agent"), via="rtp_stream")])
    assert menu_inputs(journey)[0]["via"] == "speech", journey
    assert [e["node"] for e in journey["journey"] if e["kind"] == "barge-in"] == ["menu"]
    assert visited(journey)[:2] == ["menu", "agent"]


async def test_unknown_phrase_reprompts_then_keypad(asterisk: AsteriskInstance, tmp_path: Path) -> None:
    pizza = wav(tmp_path, "I would like a large pizza with extra cheese")
    steps: list[Step] = [Pause(MENU_PROMPT_MS), Speak(pizza, via="rtp_stream"),
                         Pause(9000), Speak(pizza, via="rtp_stream"),  # after the examples
                         Pause(6000), Dtmf("1")]  # "please use your keypad", the menu again: a key
    journey = await one_call(asterisk, tmp_path, steps)
    vias = [(e["via"], e.get("understood")) for e in menu_inputs(journey)]
    assert vias == [("speech", False), ("speech", False), ("dtmf", None)], journey
    heard = said(journey)
    assert "speech-examples" in heard and "speech-use-keypad" in heard
    assert heard.index("speech-examples") < heard.index("speech-use-keypad")
    assert visited(journey)[:2] == ["menu", "balance"]


async def test_a_key_pressed_while_listening_wins(asterisk: AsteriskInstance, tmp_path: Path) -> None:
    journey = await one_call(asterisk, tmp_path, [Pause(MENU_PROMPT_MS + 1000), Dtmf("0")])
    assert [e["via"] for e in menu_inputs(journey)] == ["dtmf"], journey
    assert visited(journey)[:2] == ["menu", "agent"]


async def test_caller_hangs_up_while_being_listened_to(asterisk: AsteriskInstance, tmp_path: Path) -> None:
    speech_flow(tmp_path)
    async with running_service(asterisk, tmp_path) as svc:
        result = await run_call(asterisk.sip_port, [Pause(MENU_PROMPT_MS + 1000), Hangup()], time_limit=40)
        assert result.ok, result.describe()
        [journey] = await svc.journey_count(1, limit=30)
        await svc.wait_for("no live AGI session", lambda: not svc.app.agi.calls, 10)
        channels = await asterisk.acli("core show channels count")
    assert journey["outcome"] == "caller-hangup", journey
    assert "0 active channels" in channels, channels


async def test_spoken_order_number_is_read_back_and_confirmed(asterisk: AsteriskInstance, tmp_path: Path) -> None:
    steps: list[Step] = [Pause(MENU_PROMPT_MS), Speak(wav(tmp_path, "order status"), via="rtp_stream"),
                         Pause(3500), Speak(wav(tmp_path, "four five one two"), via="rtp_stream"),
                         Pause(7000), Speak(wav(tmp_path, "yes"), via="rtp_stream")]
    journey = await one_call(asterisk, tmp_path, steps)
    spoken = menu_inputs(journey, "orders")
    assert spoken and spoken[0]["via"] == "speech" and spoken[0]["value"] == "4512", journey
    assert [e["accepted"] for e in journey["journey"] if e["kind"] == "confirm"] == [True]
    assert "speech-heard" in said(journey)
    assert visited(journey) == ["menu", "orders", "done"]


async def test_record_then_recognise_where_audiosocket_is_off(asterisk: AsteriskInstance, tmp_path: Path) -> None:
    steps: list[Step] = [Pause(MENU_PROMPT_MS), Speak(wav(tmp_path, "representative"), via="rtp_stream"),
                         WaitHangup(40_000)]
    speech_flow(tmp_path)
    async with running_service(asterisk, tmp_path, extra={"speech": {"audiosocket": False}}) as svc:
        assert svc.app.speech.mode == "record" and svc.app.speech.audiosocket is None
        result = await run_call(asterisk.sip_port, steps, time_limit=90)
        assert result.ok, result.describe()
        [journey] = await svc.journey_count(1, limit=30)
        left = list(svc.app.speech.record_dir.glob("*.wav"))
    first = menu_inputs(journey)[0]
    assert first["via"] == "speech" and first["key"] == "0", journey
    assert visited(journey)[:2] == ["menu", "agent"]
    assert left == []  # the recording was removed once recognised


async def test_order_number_keyed_while_the_gather_listens(asterisk: AsteriskInstance, tmp_path: Path) -> None:
    steps: list[Step] = [Pause(MENU_PROMPT_MS), Dtmf("2"), Pause(3500), Dtmf("4512", gap_ms=150)]
    journey = await one_call(asterisk, tmp_path, steps)
    keyed = menu_inputs(journey, "orders")
    assert [(e["via"], e.get("value")) for e in keyed] == [("dtmf", "4512")], journey
    assert visited(journey) == ["menu", "orders", "done"]


async def test_simultaneous_callers_are_each_understood(asterisk: AsteriskInstance, tmp_path: Path) -> None:
    speech_flow(tmp_path)
    steps: list[Step] = [Pause(MENU_PROMPT_MS), Speak(wav(tmp_path, "balance"), via="rtp_stream"), WaitHangup(40_000)]
    async with running_service(asterisk, tmp_path) as svc:
        result = await run_call(asterisk.sip_port, steps, calls=6, time_limit=120)
        assert result.ok, result.describe()
        journeys = await svc.journey_count(6, limit=60)
    for journey in journeys:
        assert visited(journey)[:2] == ["menu", "balance"], journey
        assert menu_inputs(journey)[0]["via"] == "speech"


VOSK = os.environ.get("IVR_VOSK_MODEL", "")


@pytest.mark.skipif(not VOSK or not Path(VOSK).is_dir(),
                    reason="no vosk model: set IVR_VOSK_MODEL to an English vosk model directory")
async def test_the_same_menu_with_vosk(asterisk: AsteriskInstance, tmp_path: Path) -> None:
    steps: list[Step] = [Pause(MENU_PROMPT_MS), Speak(wav(tmp_path, "representative"), via="rtp_stream")]
    journey = await one_call(asterisk, tmp_path, steps, engine="vosk", vosk_model_dir=VOSK, vosk_languages=["en"])
    assert menu_inputs(journey)[0]["via"] == "speech", journey
    assert visited(journey)[:2] == ["menu", "agent"]

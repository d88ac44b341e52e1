"""Proves the e2e harness against real Asterisk with a throwaway FastAGI responder (not the ivr package).

Also pins down facts the IVR relies on: how DTMF reaches AGI, that a digit pressed while no AGI
command runs is lost, the fallback to a queue when the service is down, and the AMI user's rights.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lab import (
    AgentPhone,
    AsteriskInstance,
    Dtmf,
    Hangup,
    Pause,
    Speak,
    Step,
    WaitHangup,
    espeak_wav,
    run_call,
    wav_duration,
)
from lab.asterisk import CONF_DIR, Settings, render_config
from lab.audio import wav_data


# ------------------------------------------------------------------------ a tiny FastAGI responder
@dataclass
class AgiCall:
    env: dict[str, str]
    digits: str = ""
    log: list[tuple[float, str, str]] = field(default_factory=list)


class Responder:
    """ANSWER; STREAM FILE ``sound`` (any digit interrupts it); up to ``waits`` x WAIT FOR DIGIT
    (stopping at ``want`` digits); HANGUP, or with ``hangup=False`` wait for the caller to hang up.
    ``idle`` seconds of "work" before the first wait. With ``record`` (a path without extension, as
    Asterisk sees it): ANSWER, RECORD FILE until 2 s of silence, HANGUP."""

    def __init__(self, port: int, *, want: int = 3, waits: int = 4, sound: str = "beep", idle: float = 0.0,
                 hangup: bool = True, record: str | None = None):
        self.port, self.want, self.waits, self.sound, self.idle = port, want, waits, sound, idle
        self.hangup, self.record = hangup, record
        self.calls: list[AgiCall] = []

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        start, env = time.monotonic(), {}
        while line := (await reader.readline()).decode().strip():
            key, _, value = line.partition(": ")
            env[key] = value
        call = AgiCall(env)
        self.calls.append(call)

        async def cmd(command: str) -> int | None:
            writer.write(command.encode() + b"\n")
            await writer.drain()
            reply = (await reader.readline()).decode().strip()
            call.log.append((round(time.monotonic() - start, 3), command, reply))
            if not reply.startswith("200 result="):
                return None
            result = int(reply.split("=", 1)[1].split()[0])
            if result > 0 and command.startswith(("STREAM", "WAIT")):
                call.digits += chr(result)
            return result

        with contextlib.suppress(ConnectionError):
            await cmd("ANSWER")
            if self.record:
                await cmd(f'RECORD FILE {self.record} wav "#" 15000 0 s=2')
                self.waits = 0
            else:
                await cmd(f'STREAM FILE {self.sound} "0123456789*#"')
            await asyncio.sleep(self.idle)
            for _ in range(self.waits):
                if len(call.digits) >= self.want or await cmd("WAIT FOR DIGIT 5000") is None:
                    break
            if self.hangup:
                await cmd("HANGUP")
            else:  # Asterisk sends "HANGUP" when the caller hangs up
                call.log.append((round(time.monotonic() - start, 3), "", (await reader.readline()).decode()))
        writer.close()

    async def __aenter__(self) -> Responder:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        await self.server.wait_closed()


# ------------------------------------------------------------------------ a tiny AMI client
class Ami:
    """Raw AMI over TCP: login, actions, and every event it is sent (to check a user's rights)."""

    def __init__(self, port: int, user: str, secret: str) -> None:
        self.port, self.user, self.secret = port, user, secret
        self.events: list[dict[str, str]] = []
        self.responses: dict[str, asyncio.Future[dict[str, str]]] = {}
        self.seq = 0

    async def __aenter__(self) -> Ami:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        await self.reader.readline()  # "Asterisk Call Manager/x.y.z"
        self.task = asyncio.create_task(self._read())
        reply = await self.action("Login", Username=self.user, Secret=self.secret)
        assert reply["Response"] == "Success", reply
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.task.cancel()
        self.writer.close()

    async def _read(self) -> None:
        while block := (await self.reader.readuntil(b"\r\n\r\n")).decode():
            msg = dict(line.split(": ", 1) for line in block.strip().split("\r\n") if ": " in line)
            if "Response" in msg and msg.get("ActionID") in self.responses:
                self.responses.pop(msg["ActionID"]).set_result(msg)
            elif "Event" in msg:
                self.events.append(msg)

    async def action(self, name: str, **headers: str) -> dict[str, str]:
        self.seq += 1
        action_id = f"smoke-{self.seq}"
        self.responses[action_id] = asyncio.get_running_loop().create_future()
        lines = [f"Action: {name}", f"ActionID: {action_id}"] + [f"{k}: {v}" for k, v in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        return await asyncio.wait_for(self.responses[action_id], 10)

    def named(self, *names: str) -> list[dict[str, str]]:
        return [e for e in self.events if e["Event"] in names]


async def wait_until(predicate: Callable[[], Awaitable[bool]], what: str, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not await predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


# ------------------------------------------------------------------------ tests
async def test_dtmf_and_caller_id_reach_agi_and_ami_hides_digits(asterisk: AsteriskInstance) -> None:
    a = asterisk
    async with (Responder(a.agi_port) as agi, Ami(a.ami_port, a.ami_user, a.ami_secret) as ivr_ami,
                Ami(a.ami_port, a.ami_admin_user, a.ami_admin_secret) as admin_ami):
        result = await run_call(a.sip_port, [Pause(1200), Dtmf("123"), WaitHangup(10_000)],
                                caller_id="+390212345678", caller_name="Mario Rossi", time_limit=30)
        await asyncio.sleep(0.5)  # let the last events arrive
    assert result.ok, result.describe()
    assert len(agi.calls) == 1
    call = agi.calls[0]
    assert call.digits == "123", call.log
    assert call.env["agi_network_script"] == "main"
    assert call.env["agi_extension"] == "100"
    assert call.env["agi_callerid"] == "+390212345678"
    assert call.env["agi_calleridname"] == "Mario Rossi"
    assert call.env["agi_language"] == "en"
    # The observer proves the digit and AGI events were raised; the service's user must not get them.
    assert admin_ami.named("DTMFEnd") and admin_ami.named("AGIExecStart")
    assert ivr_ami.named("Newchannel") and ivr_ami.named("Hangup")
    assert not ivr_ami.named("DTMFBegin", "DTMFEnd", "AGIExecStart", "AGIExecEnd", "VarSet", "Newexten")


async def test_repeated_digits_arrive(asterisk: AsteriskInstance) -> None:
    """Each press has its own RTP timestamp (harness/rtp.py); "1212" and "11" survive, at a pace of
    one digit every 180 ms (160 ms tone, 20 ms gap) against a WAIT FOR DIGIT loop."""
    async with Responder(asterisk.agi_port, want=6, waits=7, hangup=False) as agi:
        steps: list[Step] = [Pause(1200), Dtmf("121211", gap_ms=0), Pause(300), Hangup()]
        result = await run_call(asterisk.sip_port, steps, time_limit=30)
    assert result.ok, result.describe()
    assert agi.calls[0].digits == "121211", agi.calls[0].log
    assert agi.calls[0].log[-1][2].startswith("HANGUP"), agi.calls[0].log


async def test_digit_pressed_while_agi_is_idle_is_lost(asterisk: AsteriskInstance) -> None:
    """Between AGI commands Asterisk reads and drops the caller's frames: a key pressed then is gone."""
    async with Responder(asterisk.agi_port, want=2, waits=1, idle=2.5) as agi:
        # beep ends ~0.8 s into the call; "1" at ~1.2 s falls in the 2.5 s idle; "2" at ~4 s is waited for.
        steps: list[Step] = [Pause(1200), Dtmf("1"), Pause(2500), Dtmf("2"), WaitHangup(15_000)]
        result = await run_call(asterisk.sip_port, steps, time_limit=30)
    assert result.ok, result.describe()
    assert agi.calls[0].digits == "2", agi.calls[0].log


@pytest.mark.parametrize("via", ["pcap", "rtp_stream"])
async def test_speech_reaches_asterisk(asterisk: AsteriskInstance, tmp_path: Path, via: str) -> None:
    """Speak() sends an espeak-ng WAV as PCMU; Asterisk records it (RECORD FILE stops on 2 s silence)."""
    wav = espeak_wav("I want to check my order", tmp_path / "speech.wav")
    spoken = wav_duration(wav) - 3.0  # espeak_wav pads 3 s of silence
    target = asterisk.sounds_dir()
    async with Responder(asterisk.agi_port, record=target.prompt(f"heard-{via}")) as agi:
        result = await run_call(asterisk.sip_port, [Pause(700), Speak(wav, via=via), WaitHangup(10_000)],
                                time_limit=30)
    assert result.ok, result.describe()
    heard = target.host / f"heard-{via}.wav"
    assert heard.exists(), agi.calls[0].log
    # the recording holds the speech (plus up to the 2 s of silence that ended it), not silence alone
    assert spoken - 0.3 < wav_duration(heard) < spoken + 2.8, (wav_duration(heard), spoken, agi.calls[0].log)
    _, _, _, pcm = wav_data(heard)
    assert max(abs(int.from_bytes(pcm[i:i + 2], "little", signed=True)) for i in range(0, len(pcm), 2)) > 3000


async def test_asterisk_plays_a_prompt_from_sounds_dir(asterisk: AsteriskInstance) -> None:
    """A prompt the service writes (8 kHz 16-bit WAV) into sounds_dir() plays by its Asterisk path."""
    target = asterisk.sounds_dir()
    prompt = espeak_wav("Welcome", target.host / "welcome.wav", pad_seconds=0.2, pcm16=True)
    async with Responder(asterisk.agi_port, sound=target.prompt("welcome"), want=0, waits=0) as agi:
        result = await run_call(asterisk.sip_port, [WaitHangup(10_000)], time_limit=20)
    assert result.ok, result.describe()
    stream = [reply for _, command, reply in agi.calls[0].log if command.startswith("STREAM FILE")][0]
    endpos = int(stream.split("endpos=")[1])
    assert abs(endpos - wav_duration(prompt) * 8000) < 1600, stream  # played to the end (within 0.2 s)


def _refused(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


async def test_service_down_falls_back_to_support_queue(asterisk: AsteriskInstance) -> None:
    a = asterisk
    assert _refused(a.agi_port), "something listens on the AGI port"
    async with Ami(a.ami_port, a.ami_user, a.ami_secret) as ami:
        call = asyncio.create_task(run_call(a.sip_port, [WaitHangup(20_000)], caller_id="5550100",
                                            time_limit=30))

        async def queued() -> bool:
            return bool(ami.named("QueueCallerJoin"))

        await wait_until(queued, "QueueCallerJoin on the ivr AMI user")
        join = ami.named("QueueCallerJoin")[0]
        assert join["Queue"] == "support" and join["CallerIDNum"] == "5550100"
        shown = await a.acli("queue show support")
        assert join["Channel"] in shown, shown
        assert "IVR_FALLBACK=1" in await a.acli(f"core show channel {join['Channel']}")

        summary = await ami.action("QueueSummary", Queue="support")  # needs no write class
        assert summary["Response"] == "Success", summary
        channels = await ami.action("CoreShowChannels")  # write=reporting
        assert channels["Response"] == "Success", channels
        denied = await ami.action("Command", Command="core show version")  # no write=command
        assert denied["Response"] == "Error" and "ermission" in denied.get("Message", ""), denied
        await a.acli(f"channel request hangup {join['Channel']}")
        result = await call
        await asyncio.sleep(0.3)
        summaries = ami.named("QueueSummary")
        assert summaries and summaries[0]["Queue"] == "support" and summaries[0]["Callers"] == "1", summaries
    assert result.ok, result.describe()
    assert ami.named("QueueCallerAbandon") or ami.named("QueueCallerLeave")


async def test_ivr_user_can_originate_a_callback(asterisk: AsteriskInstance) -> None:
    """write=originate is enough for an async Originate; its result arrives as OriginateResponse (call)."""
    a = asterisk
    async with Ami(a.ami_port, a.ami_user, a.ami_secret) as ami:
        reply = await ami.action("Originate", Channel="PJSIP/customer", Context="ivr-callbacks", Exten="s",
                                 Priority="1", Async="true", Timeout="5000", ChannelId="cb-smoke-1")
        assert reply["Response"] == "Success", reply

        async def answered() -> bool:
            return bool(ami.named("OriginateResponse"))

        await wait_until(answered, "OriginateResponse")
    # nobody is registered as "customer": the callback fails cleanly
    assert ami.named("OriginateResponse")[0]["Response"] == "Failure"


async def test_twenty_simultaneous_calls(asterisk: AsteriskInstance) -> None:
    numbers = [f"+1555000{i:04d}" for i in range(20)]
    async with Responder(asterisk.agi_port, want=1, waits=2) as agi:
        result = await run_call(asterisk.sip_port, [Pause(1500), Dtmf("5"), WaitHangup(15_000)],
                                caller_id=numbers, calls=20, time_limit=45)
    assert result.ok, result.describe()
    assert len(agi.calls) == 20
    assert sorted(c.env["agi_callerid"] for c in agi.calls) == numbers
    assert [c.digits for c in agi.calls] == ["5"] * 20, [c.log for c in agi.calls if c.digits != "5"]


@pytest.mark.parametrize("who_hangs_up", ["agent", "caller"])
async def test_agent_phone_answers_queue_call(asterisk: AsteriskInstance, who_hangs_up: str) -> None:
    """Service down -> support queue -> the registered agent2 phone answers; either side ends the call."""
    a = asterisk
    assert _refused(a.agi_port)
    steps: list[Step] = [WaitHangup(30_000)] if who_hangs_up == "agent" else [Pause(5000), Hangup()]
    hold_ms = 1000 if who_hangs_up == "agent" else 30_000
    async with AgentPhone(a.sip_port, "agent2", hold_ms=hold_ms) as phone:
        member = (await a.acli("queue show billing")).split("(PJSIP/agent2)")[1].splitlines()[0]
        assert "Not in use" in member, member
        caller = await run_call(a.sip_port, steps, time_limit=40)
        agent = await phone.result()
    assert caller.ok, caller.describe()
    assert agent.ok, agent.describe()


def test_render_config_changes_only_ports_paths_secrets_and_agi_target() -> None:
    settings = Settings(dirs={"astetcdir": "/tmp/x/etc", "astlogdir": "/tmp/x/log"}, sip_port=15060,
                        rtp_start=20000, rtp_end=20199, ami_port=15038, ami_secret="s3cret",
                        ami_admin_secret="adm1n", agi_host="127.0.0.1", agi_port=14573)
    changed = {}
    for src in sorted(CONF_DIR.glob("*.conf")):
        before = src.read_text().splitlines()
        after = render_config(src.name, src.read_text(), settings).splitlines()
        changed[src.name] = [line for line in after if line not in before]
    assert changed["pjsip.conf"] == ["bind = 127.0.0.1:15060"]
    assert changed["rtp.conf"] == ["rtpstart = 20000", "rtpend = 20199"]
    assert changed["extensions.conf"] == ["IVR_AGI = 127.0.0.1:14573"]
    assert changed["asterisk.conf"] == ["astetcdir => /tmp/x/etc", "astlogdir => /tmp/x/log"]
    assert changed["manager.conf"][:2] == ["port = 15038", "secret = s3cret"]
    assert all(not lines for name, lines in changed.items()
               if name not in {"pjsip.conf", "rtp.conf", "extensions.conf", "asterisk.conf", "manager.conf"})
    with pytest.raises(ValueError, match="IVR_AGI"):
        render_config("extensions.conf", "[globals]\n", settings)


@pytest.mark.parametrize("port_attr", ["sip_port", "ami_port", "agi_port"])
def test_instance_paths_and_ports(asterisk: AsteriskInstance, port_attr: str) -> None:
    a = asterisk
    assert a.workdir.is_relative_to(a.root / "tmp")
    assert a.host_path(a.asterisk_path(a.workdir)) == a.workdir
    sounds = a.sounds_dir()
    assert sounds.host.is_dir() and a.host_path(sounds.asterisk) == sounds.host
    assert 1024 < getattr(a, port_attr) < 65536

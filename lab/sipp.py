"""SIPp callers and agent phones for the e2e tests.

A caller is a list of steps (:class:`Pause`, :class:`Dtmf`, :class:`Speak`, :class:`WaitHangup`,
:class:`Hangup`) turned into a UAC scenario (:func:`uac_scenario`) and run by :func:`run_call`.
Agents are :func:`register` (REGISTER as agentN with a Contact at a local port) plus :func:`run_uas`
(answer INVITEs on that port, keep each call, then BYE), or both at once with :class:`AgentPhone`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import quoteattr

from lab.audio import wav_duration
from lab.ports import free_udp_port, free_udp_range
from lab.procs import die_with_parent
from lab.rtp import RtpTimeline

HOST = "127.0.0.1"


# ------------------------------------------------------------------------------------------ steps
@dataclass(frozen=True)
class Pause:
    """Do nothing for ``ms`` milliseconds (media keeps flowing in from Asterisk)."""

    ms: int


@dataclass(frozen=True)
class Dtmf:
    """Press ``digits`` (0-9, *, #, A-D) as RFC 4733 events of ``duration_ms``, ``gap_ms`` apart.

    Every press has its own RTP timestamp, so repeats ("11", "1212") arrive. Asterisk delivers them
    even at one digit per 60 ms (40 ms tone, 20 ms gap) to a WAIT FOR DIGIT loop; what loses digits is
    the AGI side: a digit whose end arrives while no AGI command is running is dropped."""

    digits: str
    gap_ms: int = 400
    duration_ms: int = 160


@dataclass(frozen=True)
class Speak:
    """Play an 8 kHz mu-law WAV as PCMU (see :func:`lab.audio.espeak_wav`) and wait
    for it to finish. ``via="pcap"`` (default) sends it in the same RTP stream as the digits;
    ``via="rtp_stream"`` uses SIPp's own player (another source port and SSRC)."""

    wav: Path
    via: str = "pcap"


@dataclass(frozen=True)
class WaitHangup:
    """Wait up to ``timeout_ms`` for Asterisk to hang up (BYE) and answer it with 200."""

    timeout_ms: int = 30_000


@dataclass(frozen=True)
class Hangup:
    """Hang up: send BYE, expect 200."""


Step = Pause | Dtmf | Speak | WaitHangup | Hangup


# -------------------------------------------------------------------------------------- scenarios
_SDP = """v=0
o=- 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=sendrecv
"""

_FROM = "From: \"caller\" <sip:caller@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]"
_TO = "To: <sip:[service]@[remote_ip]:[remote_port]>"
_VIA = "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]"


def _cdata(text: str) -> str:
    return "<![CDATA[\n" + text.strip("\n") + "\n\n]]>"


def _send(text: str, retrans: bool = False) -> str:
    attr = ' retrans="500"' if retrans else ""
    return f"  <send{attr}>\n{_cdata(text)}\n  </send>\n"


def _ok_to_bye() -> str:
    return _send("SIP/2.0 200 OK\n[last_Via:]\n[last_From:]\n[last_To:]\n[last_Call-ID:]\n[last_CSeq:]\n"
                 "Contact: <sip:[local_ip]:[local_port];transport=[transport]>\nContent-Length: 0\n")


def _exec(attr: str, value: str) -> str:
    return f"  <nop><action><exec {attr}={quoteattr(value)}/></action></nop>\n"


def _pause(ms: int) -> str:
    return f'  <pause milliseconds="{max(0, int(ms))}"/>\n'


def uac_scenario(steps: Sequence[Step], rtp: RtpTimeline, pai: str | None = None) -> str:
    """A SIPp UAC scenario: INVITE (PCMU + telephone-event/8000) as user "caller", then ``steps``.
    ``pai`` is the P-Asserted-Identity value (e.g. ``<sip:+3902123@127.0.0.1>``), or None.

    When the steps end in :class:`WaitHangup`, Asterisk may hang up during any earlier step: the
    waits listen for its BYE and jump to the end (the call succeeds; check the AGI side for what it
    got). When they end in :class:`Hangup` (added if missing), a BYE from Asterisk fails the call.
    """
    steps = list(steps)
    if not steps or not isinstance(steps[-1], Hangup | WaitHangup):
        steps.append(Hangup())
    interruptible = isinstance(steps[-1], WaitHangup)
    labels = iter(range(1, 1_000_000))

    def wait(ms: int) -> str:
        if not interruptible:
            return _pause(ms)
        label = f"w{next(labels)}"
        return (f'  <recv request="BYE" timeout="{max(1, int(ms))}" ontimeout="{label}" next="hungup"/>\n'
                f'  <label id="{label}"/>\n')

    pai_line = f"P-Asserted-Identity: {pai}\n" if pai else ""
    invite = (f"INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0\n{_VIA}\n{_FROM}\n{_TO}\n"
              "Call-ID: [call_id]\nCSeq: 1 INVITE\nContact: <sip:caller@[local_ip]:[local_port]>\n"
              f"{pai_line}Max-Forwards: 70\nContent-Type: application/sdp\nContent-Length: [len]\n\n{_SDP}")
    out = ['<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="ivr-e2e-uac">\n',
           _send(invite, retrans=True),
           '  <recv response="100" optional="true"/>\n  <recv response="180" optional="true"/>\n'
           '  <recv response="183" optional="true"/>\n  <recv response="200" rtd="true"/>\n',
           _send(f"ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0\n{_VIA}\n{_FROM}\n"
                 f"{_TO}[peer_tag_param]\nCall-ID: [call_id]\nCSeq: 1 ACK\nMax-Forwards: 70\n"
                 "Content-Length: 0\n")]
    for step in steps:
        if isinstance(step, Pause):
            out.append(wait(step.ms))
            rtp.advance(step.ms)
        elif isinstance(step, Dtmf):
            for digit in step.digits:
                cap = rtp.digit(digit, step.duration_ms)
                out.append(_exec("play_pcap_audio", str(cap.path)))
                out.append(wait(cap.duration_ms + step.gap_ms))
                rtp.advance(step.gap_ms)
        elif isinstance(step, Speak) and step.via == "rtp_stream":
            out.append(_exec("rtp_stream", f"{Path(step.wav).resolve()},1,0"))
            ms = round(wav_duration(step.wav) * 1000) + 100
            out.append(wait(ms))
            rtp.advance(ms)
        elif isinstance(step, Speak):
            cap = rtp.speech(step.wav)
            out.append(_exec("play_pcap_audio", str(cap.path)))
            out.append(wait(cap.duration_ms + 100))
            rtp.advance(100)
        elif isinstance(step, WaitHangup):
            out.append(f'  <recv request="BYE" timeout="{step.timeout_ms}"/>\n  <label id="hungup"/>\n')
            out.append(_ok_to_bye())
            break
        elif isinstance(step, Hangup):
            out.append(_send(f"BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0\n{_VIA}\n{_FROM}\n"
                             f"{_TO}[peer_tag_param]\nCall-ID: [call_id]\nCSeq: 2 BYE\nMax-Forwards: 70\n"
                             "Content-Length: 0\n", retrans=True))
            out.append('  <recv response="200"/>\n')
            break
    out.append("</scenario>\n")
    return "".join(out)


def uas_scenario(hold_ms: int, agent: str) -> str:
    """A SIPp UAS: answer an INVITE (PCMU), keep the call up to ``hold_ms``, then send BYE; if the
    other side hangs up first, answer its BYE. Either way the call counts as successful."""
    contact = f"Contact: <sip:{agent}@[local_ip]:[local_port];transport=[transport]>"
    answer = (f"SIP/2.0 200 OK\n[last_Via:]\n[last_From:]\n[last_To:];tag=[pid]SIPpTag01[call_number]\n"
              f"[last_Call-ID:]\n[last_CSeq:]\n{contact}\nContent-Type: application/sdp\n"
              f"Content-Length: [len]\n\n{_SDP}")
    ringing = ("SIP/2.0 180 Ringing\n[last_Via:]\n[last_From:]\n[last_To:];tag=[pid]SIPpTag01[call_number]\n"
               f"[last_Call-ID:]\n[last_CSeq:]\n{contact}\nContent-Length: 0\n")
    bye = ("BYE [next_url] SIP/2.0\n" + _VIA + "\nFrom: [$to_hdr];tag=[pid]SIPpTag01[call_number]\n"
           "To: [$from_hdr]\nCall-ID: [call_id]\nCSeq: 1 BYE\nMax-Forwards: 70\n"
           f"{contact}\nContent-Length: 0\n")
    return (
        '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="ivr-e2e-uas">\n'
        '  <recv request="INVITE" rrs="true">\n    <action>\n'
        '      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="from_hdr"/>\n'
        '      <ereg regexp="^[^;]*" search_in="hdr" header="To:" assign_to="to_hdr"/>\n'
        "    </action>\n  </recv>\n"
        + _send(ringing) + _pause(200) + _send(answer, retrans=True)
        + '  <recv request="ACK" crlf="true"/>\n'
        + f'  <recv request="BYE" timeout="{max(1, hold_ms)}" ontimeout="agent_hangs_up"/>\n'
        + _ok_to_bye().replace("  <send>", '  <send next="done">', 1)
        + '  <label id="agent_hangs_up"/>\n'
        + _send(bye, retrans=True) + '  <recv response="200"/>\n'
        + '  <label id="done"/>\n  <pause milliseconds="0"/>\n</scenario>\n'
    )


def register_scenario(agent: str, contact_port: int, expires: int) -> str:
    """REGISTER ``agent`` with a Contact at 127.0.0.1:``contact_port`` (where its UAS listens)."""
    uri = "sip:[remote_ip]:[remote_port]"
    msg = (f"REGISTER {uri} SIP/2.0\n{_VIA}\n"
           f"From: <sip:{agent}@[remote_ip]:[remote_port]>;tag=[pid]SIPpTag00[call_number]\n"
           f"To: <sip:{agent}@[remote_ip]:[remote_port]>\nCall-ID: [call_id]\nCSeq: 1 REGISTER\n"
           f"Contact: <sip:{agent}@{HOST}:{contact_port}>\nExpires: {expires}\nMax-Forwards: 70\n"
           "Content-Length: 0\n")
    return ('<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="ivr-e2e-register">\n'
            + _send(msg, retrans=True) + '  <recv response="200"/>\n</scenario>\n')


# ------------------------------------------------------------------------------------------ running
@dataclass
class CallResult:
    """What one SIPp run left behind. ``returncode``: 0 all calls succeeded, 1 some failed,
    -9/-15 killed at the hard timeout (``timed_out``)."""

    returncode: int
    workdir: Path
    scenario: Path
    error_log: Path
    message_log: Path
    screen_log: Path
    timed_out: bool = False
    argv: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def describe(self, tail: int = 60) -> str:
        """The run's command and the tails of its logs, for an assertion message."""
        parts = [f"sipp exit {self.returncode}{' (hard timeout)' if self.timed_out else ''}: "
                 + " ".join(self.argv)]
        for p in (self.error_log, self.screen_log, self.message_log):
            if p.exists():
                lines = p.read_text(errors="replace").splitlines()[-tail:]
                parts.append(f"----- {p.name} -----\n" + "\n".join(lines))
        return "\n".join(parts)


def _sipp() -> str:
    exe = shutil.which("sipp")
    if exe is None:
        raise RuntimeError("sipp is not installed (Debian package sip-tester): run scripts/install-system")
    return exe


def _keep() -> bool:
    return os.environ.get("IVR_E2E_KEEP") == "1"


async def _run(argv: list[str], workdir: Path, scenario: Path, time_limit: float) -> CallResult:
    """Run SIPp; its work dir (scenario, pcaps, logs) is removed when all calls succeeded, and kept
    for :meth:`CallResult.describe` when not (or with IVR_E2E_KEEP=1)."""
    screen = workdir / "screen.log"
    result = CallResult(0, workdir, scenario, workdir / "errors.log", workdir / "messages.log", screen,
                        argv=argv)
    proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT, cwd=workdir,
                                                preexec_fn=die_with_parent)
    output = b""
    try:
        output, _ = await asyncio.wait_for(proc.communicate(), time_limit)
    except TimeoutError:
        result.timed_out = True
        proc.kill()
        output, _ = await proc.communicate()
    except asyncio.CancelledError:
        proc.kill()
        await proc.wait()
        raise
    finally:
        screen.write_bytes(output)
    result.returncode = proc.returncode if proc.returncode is not None else -1
    if result.ok and not _keep():
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def _common_args(sip_port: int, scenario: Path, workdir: Path, time_limit: int) -> list[str]:
    return [_sipp(), f"{HOST}:{sip_port}", "-sf", str(scenario), "-i", HOST, "-mi", HOST, "-bind_local",
            "-nostdin", "-cp", str(free_udp_port()),
            "-timeout", f"{time_limit}s", "-timeout_error",
            "-trace_err", "-error_file", str(workdir / "errors.log"),
            "-trace_msg", "-message_file", str(workdir / "messages.log")]


def _workdir(prefix: str, base: Path | None) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"sipp-{prefix}-", dir=base))


async def run_call(sip_port: int, steps: Sequence[Step], *, extension: str = "100",
                   caller_id: str | Sequence[str] | None = None, caller_name: str | None = None,
                   calls: int = 1, concurrent: int | None = None, rate: float | None = None,
                   time_limit: float = 60.0, workdir: Path | None = None) -> CallResult:
    """Place ``calls`` calls (``concurrent`` at once, ``rate`` new calls per second; by default all at
    once) to ``extension`` on 127.0.0.1:``sip_port`` and run ``steps`` in each.

    ``caller_id``: the number put in P-Asserted-Identity (the endpoint trusts it); a sequence gives
    each call the next number. SIPp gets ``time_limit`` seconds (then it fails) and is killed 10 s later.
    """
    wd = _workdir("uac", workdir)
    rtp = RtpTimeline(wd / "rtp")
    pai = None
    inject: list[str] = []
    if caller_id is not None:
        name = f'"{caller_name}" ' if caller_name else ""
        if isinstance(caller_id, str):
            pai = f"{name}<sip:{caller_id}@{HOST}>"
        else:
            pai = f"{name}<sip:[field0]@{HOST}>"
            ids = list(caller_id)
            (wd / "callers.csv").write_text("SEQUENTIAL\n" + "".join(f"{n};\n" for n in ids))
            inject = ["-inf", str(wd / "callers.csv")]
    scenario = wd / "uac.xml"
    scenario.write_text(uac_scenario(steps, rtp, pai))
    n = concurrent or calls
    argv = _common_args(sip_port, scenario, wd, int(time_limit)) + inject + [
        "-s", extension, "-p", str(free_udp_port()), "-mp", str(free_udp_range(4)),
        "-m", str(calls), "-l", str(n), "-r", str(rate or n), "-rp", "1000",
        "-recv_timeout", str(int(time_limit * 1000)),
    ]
    return await _run(argv, wd, scenario, time_limit + 10)


async def register(sip_port: int, agent: str, contact_port: int, expires: int = 3600,
                   time_limit: float = 10.0, workdir: Path | None = None) -> CallResult:
    """REGISTER ``agent`` (agent1..agent4, customer) at 127.0.0.1:``contact_port``; ``expires=0``
    removes the binding."""
    wd = _workdir(f"reg-{agent}", workdir)
    scenario = wd / "register.xml"
    scenario.write_text(register_scenario(agent, contact_port, expires))
    argv = _common_args(sip_port, scenario, wd, int(time_limit)) + ["-p", str(free_udp_port()), "-m", "1"]
    return await _run(argv, wd, scenario, time_limit + 10)


async def run_uas(sip_port: int, listen_port: int, *, agent: str = "agent1", hold_ms: int = 5000,
                  calls: int = 1, time_limit: float = 60.0, workdir: Path | None = None) -> CallResult:
    """Answer ``calls`` INVITEs on 127.0.0.1:``listen_port``, hold each ``hold_ms``, then BYE."""
    wd = _workdir(f"uas-{agent}", workdir)
    scenario = wd / "uas.xml"
    scenario.write_text(uas_scenario(hold_ms, agent))
    argv = _common_args(sip_port, scenario, wd, int(time_limit)) + [
        "-p", str(listen_port), "-mp", str(free_udp_range(4)), "-m", str(calls)]
    return await _run(argv, wd, scenario, time_limit + 10)


async def _bound(port: int, limit: float = 5.0) -> None:
    """Wait until something has bound UDP ``port`` on 127.0.0.1."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while loop.time() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind((HOST, port))
            except OSError:
                return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"nothing bound UDP port {port}")


class AgentPhone:
    """An agent's phone: registers ``agent`` and answers up to ``calls`` queue calls, holding each
    ``hold_ms``. Use ``async with AgentPhone(...) as phone:``; ``await phone.result()`` waits for
    the UAS to finish; leaving the block unregisters and stops it."""

    def __init__(self, sip_port: int, agent: str, *, hold_ms: int = 5000, calls: int = 1,
                 time_limit: float = 120.0, workdir: Path | None = None) -> None:
        self.sip_port, self.agent, self.hold_ms, self.calls = sip_port, agent, hold_ms, calls
        self.time_limit, self.workdir = time_limit, workdir
        self.listen_port = free_udp_port()
        self._task: asyncio.Task[CallResult] | None = None

    async def __aenter__(self) -> AgentPhone:
        self._task = asyncio.create_task(run_uas(self.sip_port, self.listen_port, agent=self.agent,
                                                 hold_ms=self.hold_ms, calls=self.calls,
                                                 time_limit=self.time_limit, workdir=self.workdir))
        await _bound(self.listen_port)  # before Asterisk can send the UAS an INVITE
        reg = await register(self.sip_port, self.agent, self.listen_port, workdir=self.workdir)
        if not reg.ok:
            await self._stop()
            raise RuntimeError(f"{self.agent} could not register:\n{reg.describe()}")
        return self

    async def result(self) -> CallResult:
        assert self._task is not None, "use AgentPhone in 'async with'"
        return await self._task

    async def _stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            await register(self.sip_port, self.agent, self.listen_port, expires=0, workdir=self.workdir)
        await self._stop()


__all__ = ["AgentPhone", "CallResult", "Dtmf", "Hangup", "Pause", "Speak", "Step", "WaitHangup",
           "register", "run_call", "run_uas", "uac_scenario", "uas_scenario"]

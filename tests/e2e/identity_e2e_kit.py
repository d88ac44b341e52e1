"""Kit for the identity e2e tests: a phone the test drives key by key, the identity stack on real Asterisk,
and a collector of everything the calls logged (for the secret audit).

**Phone.** The harness's callers (:func:`lab.run_call`) play a fixed list of steps. A caller
who reads a one-time code off an SMS has to learn the digits during the call, so :class:`Phone` is a SIPp
UAC that, before each key, waits for a SIP ``INFO`` that the test sends straight to SIPp's port (the call's
Call-ID, chosen with ``-cid_str``; Asterisk never sees it). The INFO names the scenario message to jump to:
the one playing the chosen key's RFC 4733 capture for this key slot. Every slot has one capture per key,
all cut at the slot's place in the one RTP stream, so timestamps and sequence numbers move forward
whatever was pressed. The test presses keys once the service's live journey shows the prompt asking for
them (:meth:`Caller.hears`), so no step depends on guessed prompt lengths.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import socket
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from ivr.demo import refbackend, smssink
from ivr.demo.refbackend.app import Running
from ivr.demo.smssink import SINK, SmsSink
from lab import AsteriskInstance, CallResult, WaitHangup
from lab.ports import free_udp_port, free_udp_range
from lab.rtp import RtpTimeline
from lab.sipp import HOST, _common_args, _run, _send, _workdir, uac_scenario
from tests.e2e.servicekit import Service, running_service

OTP_KEY = "e2e-otp-key-0123456789abcdef"
KEYS = "0123456789*#"


# ------------------------------------------------------------------------------------------- phone
_MESSAGE = re.compile(r"^  <(send|recv|pause|nop)[ >/]", re.MULTILINE)


@dataclass
class PhoneScenario:
    """A :class:`Phone`'s scenario and where its INFOs jump: ``targets[slot][key]`` is the index of the
    message that plays ``key`` in ``slot``; ``bye`` hangs up, ``wait`` waits for Asterisk's BYE."""

    xml: str
    targets: list[dict[str, int]]
    bye: int
    wait: int


def phone_scenario(rtp: RtpTimeline, slots: int, pai: str | None, wait_ms: int) -> PhoneScenario:
    """INVITE/ACK as the harness writes them, then ``slots`` key slots. Each slot waits for an INFO with
    ``j=<message index>`` and jumps there (SIPp's ``jump`` action): to the message playing the chosen key's
    capture for that slot, to the caller's BYE, or to the wait for Asterisk's BYE. A BYE from Asterisk at
    any point ends the call successfully. SIPp reads at most 64 KiB of scenario (a bigger file is
    "Unable to load or parse"): keep messages short."""
    base = uac_scenario([WaitHangup(wait_ms)], rtp, pai)
    marker = f'  <recv request="BYE" timeout="{wait_ms}"/>\n'
    head, tail = base.split(marker)
    tail = tail.replace("</scenario>\n", "")
    out = [head]
    index = len(_MESSAGE.findall(head))
    targets: list[dict[str, int]] = []
    for s in range(slots):
        # the jump is a nop of its own: a jump in the recv's actions is overwritten when the recv completes
        out.append(f'  <label id="s{s}"/>\n  <recv request="BYE" optional="true" next="hungup"/>\n'
                   f'  <recv request="INFO" timeout="{wait_ms}" ontimeout="w"><action>'
                   '<ereg regexp="[0-9]+" search_in="body" check_it="true" assign_to="k"/></action></recv>\n'
                   '  <nop><action><todouble assign_to="j" variable="k"/><jump variable="j"/></action></nop>\n')
        index += 3
        seq, ts = rtp.seq, rtp.ts
        slot: dict[str, int] = {}
        for key in KEYS:
            rtp.seq, rtp.ts = seq, ts
            cap = rtp.digit(key, 160)
            name = cap.path.with_name(f"{s}-{KEYS.index(key)}.pcap")
            cap.path.rename(name)
            rel = name.relative_to(rtp.directory.parent)
            # SIPp continues a jump to N from message N - 1's `next`: each target follows a plain nop
            out.append(f'  <nop/>\n  <nop next="s{s + 1}"><action><exec play_pcap_audio="{rel}"/></action></nop>\n')
            slot[key] = index + 1
            index += 2
        targets.append(slot)
        rtp.advance(1000)  # the next slot's events start later in the stream, whatever was pressed here
    out.append(f'  <label id="s{slots}"/>\n  <label id="w"/>\n  <nop/>\n{marker}')
    wait = index + 1
    index += 1 + 1 + len(_MESSAGE.findall(tail)) + 2  # the nop, the wait, what follows it, "done" and a nop
    bye_text = ("BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0\n"
                "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n"
                "From: \"caller\" <sip:caller@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]\n"
                "To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]\nCall-ID: [call_id]\n"
                "CSeq: 2 BYE\nMax-Forwards: 70\nContent-Length: 0\n")
    out.append(f'{tail}  <nop next="done"/>\n  <nop/>\n' + _send(bye_text, retrans=True)
               + '  <recv response="200"/>\n  <label id="done"/>\n  <pause milliseconds="0"/>\n</scenario>\n')
    xml = "".join(out)
    if len(xml.encode()) >= 65536:
        raise ValueError(f"{slots} key slots make the scenario too big for SIPp ({len(xml)} bytes)")
    return PhoneScenario(xml, targets, bye=index, wait=wait)


class Phone:
    """One caller with ``caller_id`` (P-Asserted-Identity) on extension 100, driven key by key.

    ``async with Phone(...) as phone``: dials; ``await phone.press("2468#")``; ``await phone.hang_up()``
    (the caller sends BYE) or ``await phone.wait()`` (until Asterisk hangs up); ``await phone.result()``.
    """

    def __init__(self, sip_port: int, caller_id: str, *, slots: int = 40, time_limit: float = 120.0) -> None:
        self.sip_port, self.caller_id, self.slots, self.time_limit = sip_port, caller_id, slots, time_limit
        self.port = free_udp_port()
        self.call_id = ""
        self.pressed = 0
        self._task: asyncio.Task[CallResult] | None = None
        self._sock: socket.socket | None = None
        self._cseq = 0

    async def __aenter__(self) -> Phone:
        wd = _workdir("phone", None)
        scenario = wd / "uac.xml"
        pai = f"<sip:{self.caller_id}@{HOST}>"
        self.scenario = phone_scenario(RtpTimeline(wd / "rtp"), self.slots, pai, int(self.time_limit * 1000))
        scenario.write_text(self.scenario.xml)
        token = secrets.token_hex(6)
        self.call_id = f"phone-{token}-1@{HOST}"
        argv = _common_args(self.sip_port, scenario, wd, int(self.time_limit)) + [
            "-s", "100", "-p", str(self.port), "-mp", str(free_udp_range(4)), "-m", "1", "-l", "1",
            "-cid_str", f"phone-{token}-%u@%s", "-recv_timeout", str(int(self.time_limit * 1000))]
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((HOST, 0))
        self._task = asyncio.create_task(_run(argv, wd, scenario, self.time_limit + 10))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._sock is not None:
            self._sock.close()

    def _info(self, target: int) -> None:
        assert self._sock is not None, "use Phone in 'async with'"
        self._cseq += 1
        me = self._sock.getsockname()
        body = f"j={target}\r\n"
        msg = (f"INFO sip:caller@{HOST}:{self.port} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP {HOST}:{me[1]};branch=z9hG4bK{secrets.token_hex(8)}\r\n"
               f"From: <sip:test@{HOST}:{me[1]}>;tag={secrets.token_hex(4)}\r\n"
               f"To: <sip:caller@{HOST}:{self.port}>\r\nCall-ID: {self.call_id}\r\n"
               f"CSeq: {self._cseq} INFO\r\nMax-Forwards: 70\r\nContent-Type: text/plain\r\n"
               f"Content-Length: {len(body)}\r\n\r\n{body}")
        self._sock.sendto(msg.encode(), (HOST, self.port))

    async def press(self, keys: str, gap: float = 0.45) -> None:
        """Press each key (RFC 4733, 160 ms), ``gap`` s apart."""
        for key in keys:
            if key not in KEYS:
                raise ValueError(f"no such key: {key!r}")
            if self.pressed >= self.slots:
                raise RuntimeError(f"the phone has only {self.slots} key slots")
            self._info(self.scenario.targets[self.pressed][key])
            self.pressed += 1
            await asyncio.sleep(gap)

    async def hang_up(self) -> CallResult:
        self._info(self.scenario.bye)
        return await self.result()

    async def wait(self) -> CallResult:
        """Wait for Asterisk to end the call."""
        self._info(self.scenario.wait)
        return await self.result()

    async def result(self, limit: float | None = None) -> CallResult:
        assert self._task is not None, "use Phone in 'async with'"
        return await asyncio.wait_for(asyncio.shield(self._task), limit or self.time_limit + 15)


# ------------------------------------------------------------------------------------------- audit
@dataclass
class Audit:
    """Everything the identity calls left behind that a person could read, and the secrets keyed in them.

    ``records``: every log record of the test process (service, reference backend, SMS sink) at DEBUG,
    as raw as it was emitted (this handler runs before any redacting filter could rewrite it);
    ``texts``: journeys, HTTP views and metrics, by source name.
    """

    secrets: set[str] = field(default_factory=set)
    records: list[str] = field(default_factory=list)
    texts: list[tuple[str, str]] = field(default_factory=list)

    def secret(self, *values: str) -> None:
        self.secrets.update(v for v in values if v)

    def add(self, source: str, text: str) -> None:
        self.texts.append((source, text))


class RawHandler(logging.Handler):
    """Keeps each record's message and traceback exactly as emitted."""

    def __init__(self, sink: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = f"{record.name} {record.levelname} {record.getMessage()}"
        except Exception:  # a broken format string: keep what there is
            text = f"{record.name} {record.levelname} {record.msg!r} {record.args!r}"
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        if record.stack_info:
            text += "\n" + record.stack_info
        self.sink.append(text)


@contextlib.contextmanager
def capture_logs(audit: Audit) -> Iterator[None]:
    """Root logger at DEBUG with a raw handler first in line, for the duration."""
    root = logging.getLogger()
    handler = RawHandler(audit.records)
    old_level = root.level
    root.handlers.insert(0, handler)
    root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def leaks(text: str, values: Iterable[str]) -> list[str]:
    """Where a secret digit sequence appears as a token of its own in `text`: the value itself, or its
    digits separated by one space or dash each ("2 4 6 8", as TTS text would spell them). A digit run that
    merely contains it ("12468", a hash "a2468f") is not a leak; neither is "24.68" (a journey's times)."""
    found = []
    for value in values:
        spread = r"[ -]?".join(re.escape(c) for c in value)
        for m in re.finditer(rf"(?<![0-9A-Za-z])(?:{spread})(?![0-9A-Za-z])", text):
            start = text.rfind("\n", 0, m.start()) + 1
            end = text.find("\n", m.end())
            found.append(f"{value!r} in: {text[start:end if end >= 0 else None][:300]}")
    return found


# ------------------------------------------------------------------------------------------- stack
@dataclass
class IdentityStack:
    """The service on real Asterisk with Redis, the reference backend (fault switch) and the SMS sink."""

    svc: Service
    asterisk: AsteriskInstance
    backend: Running
    sink: SmsSink
    audit: Audit | None
    backend_stopped: bool = False

    @property
    def app(self) -> Any:
        return self.svc.app

    # --- backend -----------------------------------------------------------------------------------
    async def faults(self, **faults: Any) -> None:
        async with aiohttp.ClientSession() as s, s.put(f"{self.backend.url}/_faults", json=faults) as r:
            assert r.status == 200, await r.text()

    async def stop_backend(self) -> None:
        """The backend goes away (its port refuses connections from now on)."""
        await self.backend.close()
        self.backend_stopped = True

    # --- calls -------------------------------------------------------------------------------------
    @asynccontextmanager
    async def dial(self, caller_id: str, time_limit: float = 120.0) -> AsyncIterator[Caller]:
        """A :class:`Phone` calls the demo line from `caller_id`; yields once the service has the call."""
        claimed = {c.uniqueid for c in self.app.journeys.live.values()} | {j["uniqueid"] for j in self.svc.journeys()}
        async with Phone(self.asterisk.sip_port, caller_id, time_limit=time_limit) as phone:
            fresh: list[Any] = []

            def answered() -> bool:
                fresh[:] = [c for c in self.app.journeys.live.values()
                            if c.caller_id == caller_id and c.uniqueid not in claimed]
                return bool(fresh)

            await self.svc.wait_for(f"the service answering {caller_id}", answered, 20)
            yield Caller(self, phone, fresh[0])

    def played(self, channel: str, since: int = 0) -> list[str]:
        """What Asterisk played to `channel` (its full.log, from byte `since`): service prompts by their text
        (the service's description of the file), Asterisk's own sounds by name (``digits/12``)."""
        with open(self.asterisk.log_path(), "rb") as f:
            f.seek(since)
            text = f.read().decode(errors="replace")
        out = []
        for m in re.finditer(rf"<{re.escape(channel)}> Playing '([^']+)'", text):
            path = re.sub(r"\.(slin|wav|gsm|ulaw|alaw|g722)$", "", m.group(1))
            out.append(self.app.prompts.describe(path) or path)
        return out

    async def http(self, path: str) -> str:
        token = self.app.settings.http_read_token or self.app.settings.http_token  # what a reader holds
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with aiohttp.ClientSession(headers=headers) as s, \
                s.get(f"http://127.0.0.1:{self.app.http_port}{path}") as r:
            return await r.text()

    async def collect(self) -> None:
        """Hand what a person could read over HTTP to the audit (journeys, live calls, KPIs, metrics)."""
        if self.audit is None:
            return
        for path in ("/metrics", "/calls/recent?limit=500", "/calls/live", "/kpis"):
            with contextlib.suppress(aiohttp.ClientError):
                self.audit.add(f"GET {path}", await self.http(path))


@dataclass
class Caller:
    """One call in progress: the phone that placed it and the service's live record of it."""

    stack: IdentityStack
    phone: Phone
    call: Any  # ivr.call.Call, live

    @property
    def uniqueid(self) -> str:
        return str(self.call.uniqueid)

    async def press(self, keys: str) -> None:
        await self.phone.press(keys)

    def heard(self, name: str, after: float = 0.0) -> int:
        """How many times the service has started prompt `name` in this call (at or after `after`)."""
        return sum(1 for e in self.call.journey if e.kind == "prompt" and name in e.detail.get("prompts", [])
                   and self.call.started + e.t >= after)

    async def hears(self, name: str, nth: int = 1, after: float = 0.0, limit: float = 30.0) -> None:
        """Wait until the service has started prompt `name` for the `nth` time in this call (counting
        prompts started at or after `after`, a time.time()), then a moment more: the STREAM FILE is under
        way, so a key pressed now barges in."""
        await self.stack.svc.wait_for(f"{self.call.caller_id} hearing {name!r} (#{nth})",
                                      lambda: self.heard(name, after) >= nth, limit)
        await asyncio.sleep(0.3)

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [{"node": e.node, **e.detail} for e in self.call.journey if e.kind == kind]

    async def until(self, what: str, predicate: Callable[[], bool], limit: float = 30.0) -> None:
        await self.stack.svc.wait_for(f"{self.call.caller_id}: {what}", predicate, limit)

    async def journey(self, limit: float = 30.0) -> dict[str, Any]:
        """The finished journey of this call."""
        def mine() -> list[dict[str, Any]]:
            return [j for j in self.stack.svc.journeys() if j["uniqueid"] == self.uniqueid]

        await self.stack.svc.wait_for(f"the journey of {self.uniqueid}", lambda: bool(mine()), limit)
        return mine()[0]

    def joins(self) -> list[dict[str, str]]:
        return [e for e in self.stack.svc.named("QueueCallerJoin") if e.get("Uniqueid") == self.uniqueid]

    @property
    def channel(self) -> str:
        named = [e["Channel"] for e in self.stack.svc.named("Newchannel") if e.get("Uniqueid") == self.uniqueid]
        assert named, f"no Newchannel event for {self.uniqueid}"
        return named[0]

    async def queued(self, limit: float = 30.0) -> dict[str, str]:
        """The QueueCallerJoin of this call: Asterisk put the caller in a queue."""
        await self.stack.svc.wait_for(f"{self.call.caller_id} in a queue", lambda: bool(self.joins()), limit)
        return self.joins()[0]

    async def channel_vars(self) -> dict[str, str]:
        """The channel's variables as Asterisk shows them (`core show channel`), inherited ones without
        their `__` prefix."""
        shown = await self.stack.asterisk.acli(f"core show channel {self.channel}")
        out = {}
        for line in shown.split("Variables:", 1)[-1].splitlines():
            name, eq, value = line.strip().partition("=")
            if eq:
                out[name.lstrip("_")] = value
        return out

    async def agent_sees(self) -> dict[str, str]:
        """Once the caller waits in a queue: the channel variables an agent inherits; then Asterisk hangs
        the caller up (no agent is logged in) and the phone's call ends."""
        await self.queued()
        variables = await self.channel_vars()
        await self.stack.asterisk.acli(f"channel request hangup {self.channel}")
        result = await self.phone.result()
        assert result.ok, result.describe()
        return variables

    async def hangs_up_on_us(self) -> None:
        """The service ends the call (goodbye): the phone answers Asterisk's BYE."""
        result = await self.phone.wait()
        assert result.ok, result.describe()

    async def hang_up(self) -> None:
        result = await self.phone.hang_up()
        assert result.ok, result.describe()


def said(journey: dict[str, Any]) -> list[str]:
    return [p for e in journey["journey"] if e["kind"] == "prompt" for p in e["prompts"]]


def events(journey: dict[str, Any], kind: str, node: str | None = None) -> list[dict[str, Any]]:
    return [e for e in journey["journey"] if e["kind"] == kind and (node is None or e["node"] == node)]


@asynccontextmanager
async def identity_service(asterisk: AsteriskInstance, tmp: Path, redis_url: str, audit: Audit | None = None,
                           *, auth: dict[str, Any] | None = None, **over: Any) -> AsyncIterator[IdentityStack]:
    """`running_service` (real Asterisk, AMI events recorded) plus the identity wiring of
    `tests.identitykit.identity_stack`: Redis, the reference backend with its fault switch, the SMS sink.
    `auth`: the `[auth]` settings section (otp_ttl, max_failures ...)."""
    sink = await smssink.serve()
    backend = await refbackend.serve(str(tmp / "ref.sqlite"), sms_url=f"{sink.url}/messages", faults=True)
    journeys = tmp / "journeys.jsonl"
    wiring: dict[str, Any] = dict(redis_url=redis_url, backends_url=backend.url, sms_url=f"{sink.url}/messages",
                                  auth_otp_key=OTP_KEY, backends_filler_after=0.5, journeys_file=journeys,
                                  extra={"auth": dict(auth or {})})
    stack: IdentityStack | None = None
    try:
        async with running_service(asterisk, tmp, **{**wiring, **over}) as svc:
            stack = IdentityStack(svc, asterisk, backend, sink.app[SINK], audit)
            try:
                yield stack
            finally:
                await stack.collect()
        if audit is not None and journeys.exists():
            audit.add(str(journeys), journeys.read_text())
    finally:
        if stack is None or not stack.backend_stopped:
            await backend.close()
        await sink.close()

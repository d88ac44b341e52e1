"""The callback dialer as operators run it: `ivr serve` processes on one Redis, placing callbacks through real
Asterisk to a SIPp customer who presses 1. `kill -9` with callbacks pending (one mid-lease, its customer's
phone still ringing) → restart → each callback placed exactly once; two instances → each placed once.

"Placed" is counted by Asterisk, not by the service: a test-only AMI user that reads every event sees one
Newchannel per Originate (its ChannelId is `cb-<id>-<attempt>`), and the customer's SIPp counts its calls.

The customer is reached through `Local/<digits>@e2e-customers` (added to the test's Asterisk from the CLI):
it waits at a gate (the global E2E_GATE) and then dials PJSIP/customer, so a test can keep an attempt
ringing while it kills and restarts the service, without relying on how fast anything is.

Also here, with the service in-process: a busy customer is retried with backoff until the callback's
maximum attempts, then recorded as failed; a customer who declines (presses 2) is recorded and not retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import redis

from ivr.ami import AmiClient
from ivr.queueing.callbacks import Callback, CallbackStore, keep_place
from ivr.store import Store, callback_number, connect
from lab import AsteriskInstance, CallResult
from lab.ports import free_tcp_port, free_udp_port, free_udp_range
from lab.procs import die_with_parent
from lab.rtp import RtpTimeline
from lab.sipp import _bound, _common_args, _exec, _pause, _run, _send, _workdir, register, uas_scenario
from tests.appkit import project_copy
from tests.e2e.servicekit import running_service, said

ROOT = Path(__file__).resolve().parents[2]
GATE_CONTEXT = "e2e-customers"


# ------------------------------------------------------------------------------------------ helpers
class Observer:
    """Every AMI event Asterisk sends to the test-only user that reads everything."""

    def __init__(self) -> None:
        self.events: list[dict[str, str]] = []

    def named(self, *names: str) -> list[dict[str, str]]:
        return [e for e in self.events if e.get("Event") in names]

    def originated(self, cb_id: str) -> list[str]:
        """ChannelIds of every channel Asterisk created for this callback's Originates (first halves)."""
        own = re.compile(rf"^cb-{cb_id}-\d+$")
        return [e["Uniqueid"] for e in self.named("Newchannel") if own.match(e.get("Uniqueid", ""))]

    def customer_channels(self) -> list[dict[str, str]]:
        return [e for e in self.named("Newchannel") if e.get("Channel", "").startswith("PJSIP/customer-")]


@asynccontextmanager
async def observing(asterisk: AsteriskInstance) -> AsyncIterator[Observer]:
    obs = Observer()
    ami = AmiClient("127.0.0.1", asterisk.ami_port, asterisk.ami_admin_user, asterisk.ami_admin_secret)
    ami.on("*", obs.events.append)
    await ami.start()
    try:
        assert await ami.wait_connected(10), "the observer's AMI client did not log in"
        yield obs
    finally:
        await ami.close()


class Customers:
    """SIPp registered as `customer`: answers `calls` calls, presses `key` `key_ms` after answering (none when
    empty), then holds up to `hold_ms` (whoever hangs up first)."""

    def __init__(self, sip_port: int, calls: int, key: str = "1", key_ms: int = 4000, hold_ms: int = 6000) -> None:
        self.sip_port, self.calls, self.key, self.key_ms, self.hold_ms = sip_port, calls, key, key_ms, hold_ms
        self.port = free_udp_port()
        self.task: asyncio.Task[CallResult] | None = None

    async def __aenter__(self) -> Customers:
        wd = _workdir("customers", None)
        scenario = wd / "uas.xml"
        text = uas_scenario(self.hold_ms, "customer")
        if self.key:
            cap = RtpTimeline(wd / "rtp").digit(self.key, 200)
            press = _pause(self.key_ms) + _exec("play_pcap_audio", str(cap.path)) + _pause(cap.duration_ms + 100)
            ack = '  <recv request="ACK" crlf="true"/>\n'
            text = text.replace(ack, ack + press, 1)
        scenario.write_text(text)
        argv = _common_args(self.sip_port, scenario, wd, 240) + [
            "-p", str(self.port), "-mp", str(free_udp_range(4 * self.calls)), "-m", str(self.calls)]
        self.task = asyncio.create_task(_run(argv, wd, scenario, 250))
        await _bound(self.port)
        reg = await register(self.sip_port, "customer", self.port)
        assert reg.ok, reg.describe()
        return self

    async def result(self, limit: float = 120.0) -> CallResult:
        assert self.task is not None
        return await asyncio.wait_for(asyncio.shield(self.task), limit)

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            await register(self.sip_port, "customer", self.port, expires=0)
        if self.task is not None and not self.task.done():
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


class BusyCustomer(Customers):
    """SIPp registered as `customer` that answers each of `calls` INVITEs with 486 Busy Here."""

    async def __aenter__(self) -> Customers:
        wd = _workdir("busy", None)
        scenario = wd / "busy.xml"
        busy = ("SIP/2.0 486 Busy Here\n[last_Via:]\n[last_From:]\n[last_To:];tag=[pid]SIPpTag01[call_number]\n"
                "[last_Call-ID:]\n[last_CSeq:]\nContent-Length: 0\n")
        scenario.write_text('<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="busy">\n'
                            '  <recv request="INVITE"/>\n' + _send(busy) + '  <recv request="ACK"/>\n</scenario>\n')
        argv = _common_args(self.sip_port, scenario, wd, 240) + ["-p", str(self.port), "-m", str(self.calls)]
        self.task = asyncio.create_task(_run(argv, wd, scenario, 250))
        await _bound(self.port)
        reg = await register(self.sip_port, "customer", self.port)
        assert reg.ok, reg.describe()
        return self


class SilentCustomer(Customers):
    """SIPp registered as `customer` whose phone rings and is never picked up (until Asterisk cancels)."""

    async def __aenter__(self) -> Customers:
        wd = _workdir("silent", None)
        scenario = wd / "silent.xml"
        tag = ";tag=[pid]SIPpTag01[call_number]"
        ringing = f"SIP/2.0 180 Ringing\n[last_Via:]\n[last_From:]\n[last_To:]{tag}\n[last_Call-ID:]\n[last_CSeq:]\n" \
                  "Content-Length: 0\n"
        cancelled = "SIP/2.0 200 OK\n[last_Via:]\n[last_From:]\n[last_To:]\n[last_Call-ID:]\n[last_CSeq:]\n" \
                    "Content-Length: 0\n"
        terminated = f"SIP/2.0 487 Request Terminated\n[last_Via:]\n[last_From:]\n[last_To:]{tag}\n" \
                     "[last_Call-ID:]\nCSeq: [$cseq] INVITE\nContent-Length: 0\n"
        scenario.write_text(
            '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="silent">\n'
            '  <recv request="INVITE">\n    <action>\n'
            '      <ereg regexp="[0-9]+" search_in="hdr" header="CSeq:" assign_to="cseq"/>\n'
            '    </action>\n  </recv>\n' + _send(ringing) + '  <recv request="CANCEL"/>\n' + _send(cancelled)
            + _send(terminated) + '  <recv request="ACK"/>\n</scenario>\n')
        argv = _common_args(self.sip_port, scenario, wd, 240) + ["-p", str(self.port), "-m", str(self.calls)]
        self.task = asyncio.create_task(_run(argv, wd, scenario, 250))
        await _bound(self.port)
        reg = await register(self.sip_port, "customer", self.port)
        assert reg.ok, reg.describe()
        return self


async def gate(asterisk: AsteriskInstance, is_open: bool) -> None:
    """Local/<digits>@e2e-customers waits until the gate is open, then rings the SIPp customer."""
    if GATE_CONTEXT not in await asterisk.acli("dialplan show contexts"):  # once per Asterisk
        for line in ("_X.,1,WaitForCondition(#,#[#{GLOBAL(E2E_GATE)}=1],170,0.2)",
                     "_X.,2,Dial(PJSIP/customer,60)", "_X.,3,Hangup()"):
            await asterisk.acli(f"dialplan add extension {line} into {GATE_CONTEXT}")
    await asterisk.acli(f"dialplan set global E2E_GATE {1 if is_open else 0}")


class Serve:
    """`ivr serve` in its own process, configured by a TOML file, logging to `<name>.log`."""

    def __init__(self, asterisk: AsteriskInstance, tmp: Path, name: str, redis_url: str, **over: Any) -> None:
        sounds = asterisk.sounds_dir()
        self.http_port = free_tcp_port()
        self.log = tmp / f"{name}.log"
        self.config = tmp / f"{name}.toml"
        values: dict[str, Any] = dict(
            agi_port=asterisk.agi_port, http_port=self.http_port, ami_port=asterisk.ami_port,
            ami_user=asterisk.ami_user, ami_secret=asterisk.ami_secret, prompts_cache=str(sounds.host),
            prompts_asterisk_dir=sounds.asterisk, flows_dir=str(tmp / "dialplans"), prompts_dir=str(tmp / "prompts"),
            journeys_file=str(tmp / f"{name}-journeys.jsonl"), reload_watch=False, drain_seconds=2.0,
            redis_url=redis_url, callbacks_channel=f"Local/{{number_digits}}@{GATE_CONTEXT}", callbacks_lease=3.0,
            callbacks_poll=0.2, callbacks_ring_seconds=150.0, callbacks_answer_wait=60.0, log_level="INFO")
        values.update(over)
        self.config.write_text("".join(f"{k} = {_toml(v)}\n" for k, v in values.items()))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Serve:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ivr.cli", "--config", str(self.config), "serve"], cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)}, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
        return self

    async def up(self, limit: float = 90.0) -> None:
        """Until its HTTP health answers (the dialer and FastAGI start before HTTP)."""
        deadline = time.monotonic() + limit
        url = f"http://127.0.0.1:{self.http_port}/health"
        while True:
            assert self.proc is not None and self.proc.poll() is None, f"ivr serve exited:\n{self.text()}"
            with contextlib.suppress(OSError):
                await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=1).close())
                return
            assert time.monotonic() < deadline, f"ivr serve did not come up:\n{self.text()}"
            await asyncio.sleep(0.2)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(10) == -9

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def placed(self) -> list[str]:
        """Callback ids this process started an attempt for (its log), in order."""
        return re.findall(r"callback ([0-9a-f]{32}) attempt \d+ to", self.text())


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


@asynccontextmanager
async def callback_store(redis_url: str) -> AsyncIterator[CallbackStore]:
    store: Store = connect(redis_url)
    try:
        yield CallbackStore(store)
    finally:
        await store.close()


async def add_due(cbs: CallbackStore, n: int, queue: str = "billing") -> list[Callback]:
    """`n` callbacks due now (keep-place, nobody waiting ahead), to distinct numbers."""
    out = []
    for i in range(n):
        cb, created = await cbs.add(keep_place(f"+3902123450{i:02d}", queue, now=time.time(), ewt=0.0, position=1))
        assert created
        out.append(cb)
    return out


def fields(redis_url: str, cb_id: str) -> dict[str, str]:
    raw = redis.Redis.from_url(redis_url).hgetall(f"ivr:cb:{cb_id}")
    return {k.decode(): v.decode() for k, v in raw.items()}


async def until(what: str, predicate: Callable[[], bool], limit: float, *why: Serve) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n" + "\n".join(s.text()[-6000:] for s in why))
        await asyncio.sleep(0.1)


def dialplans(tmp: Path) -> None:
    project_copy(tmp)
    (tmp / "dialplans" / "queues.yaml").write_text("queues:\n  billing: {when_no_agents: join}\n")


# ------------------------------------------------------------------------------------------ tests
async def test_kill_minus_9_with_callbacks_pending_then_restart_places_each_once(
        asterisk: AsteriskInstance, tmp_path: Path, redis_url: str) -> None:
    dialplans(tmp_path)
    await gate(asterisk, is_open=False)
    first = Serve(asterisk, tmp_path, "first", redis_url, callbacks_concurrency=1)
    second = Serve(asterisk, tmp_path, "second", redis_url, callbacks_concurrency=4)
    async with observing(asterisk) as obs, Customers(asterisk.sip_port, 3) as customers, \
            callback_store(redis_url) as cbs:
        cbs_due = await add_due(cbs, 3)
        ids = [cb.id for cb in cbs_due]
        try:
            first.start()
            # the first process takes one callback (concurrency 1) and its Originate reaches Asterisk:
            # the customer's line is "ringing" (held at the gate) when the process dies
            await until("an Originate from the first process", lambda: any(obs.originated(i) for i in ids), 120, first)
            [mid] = [i for i in ids if obs.originated(i)]
            assert fields(redis_url, mid)["state"] == "dialing"
            first.kill9()
            pending = [fields(redis_url, i) for i in ids if i != mid]
            assert [(f["state"], f["attempts"]) for f in pending] == [("pending", "0")] * 2
            assert fields(redis_url, mid)["state"] == "dialing"  # its lease now runs out unrenewed
            second.start()
            await second.up()
            await gate(asterisk, is_open=True)  # the customer answers every call from now on
            await until("every callback settled", lambda: all(fields(redis_url, i)["state"] == "done" for i in ids),
                        150, first, second)
            answered = await customers.result()
            assert answered.ok, answered.describe()
        finally:
            first.stop()
            second.stop()
    for i in ids:
        cb = fields(redis_url, i)
        assert (cb["state"], cb["outcome"], cb["attempts"], cb["answer"]) == ("done", "accepted", "1", "accepted"), cb
        assert obs.originated(i) == [f"cb-{i}-1"], obs.originated(i)  # one Originate per callback, ever
    assert len(obs.customer_channels()) == 3  # the customer's phone rang three times in all
    assert first.placed() == [mid]
    assert sorted(second.placed()) == sorted(ids)  # the second took the dead one's over, and the others
    assert f"callback {mid} attempt 1 to" in second.text() and "resumed after a lost lease" in second.text()
    successes = [e for e in obs.named("OriginateResponse") if e.get("Response") == "Success"]
    assert sorted(e["Uniqueid"] for e in successes) == sorted(f"cb-{i}-1" for i in ids)


async def test_two_instances_on_one_redis_place_each_callback_once(
        asterisk: AsteriskInstance, tmp_path: Path, redis_url: str) -> None:
    dialplans(tmp_path)
    await gate(asterisk, is_open=True)
    # Asterisk sends every answered callback's AGI to the first instance (IVR_AGI); both dial
    one = Serve(asterisk, tmp_path, "one", redis_url, callbacks_concurrency=2)
    two = Serve(asterisk, tmp_path, "two", redis_url, callbacks_concurrency=2, agi_port=free_tcp_port())
    async with observing(asterisk) as obs, Customers(asterisk.sip_port, 4) as customers, \
            callback_store(redis_url) as cbs:
        try:
            one.start()
            two.start()
            await one.up()
            await two.up()
            ids = [cb.id for cb in await add_due(cbs, 4)]
            await until("every callback settled", lambda: all(fields(redis_url, i)["state"] == "done" for i in ids),
                        150, one, two)
            answered = await customers.result()
            assert answered.ok, answered.describe()
        finally:
            one.stop()
            two.stop()
    for i in ids:
        cb = fields(redis_url, i)
        assert (cb["state"], cb["outcome"], cb["attempts"]) == ("done", "accepted", "1"), cb
        assert obs.originated(i) == [f"cb-{i}-1"], obs.originated(i)
    assert len(obs.customer_channels()) == 4
    assert sorted(one.placed() + two.placed()) == sorted(ids)  # no dialer even started a second attempt
    # each holds at most 2 attempts and none settles before its customer presses 1: both had to dial
    assert sorted([len(one.placed()), len(two.placed())]) == [2, 2], (one.placed(), two.placed())


async def test_busy_customer_is_retried_with_backoff_then_failed_after_max_attempts(
        asterisk: AsteriskInstance, tmp_path: Path, redis_url: str) -> None:
    dialplans(tmp_path)
    async with (observing(asterisk) as obs, BusyCustomer(asterisk.sip_port, 2) as customer,
                running_service(asterisk, tmp_path, redis_url=redis_url, callbacks_lease=3.0, callbacks_poll=0.2,
                                callbacks_retry_base=2.0, callbacks_channel="PJSIP/customer") as svc):
        store = svc.app.services.callbacks
        assert isinstance(store, CallbackStore)
        cb, _ = await store.add(keep_place("+390212345099", "billing", now=time.time(), ewt=0.0, position=1,
                                           max_attempts=2))
        await svc.wait_for("the callback failed", lambda: fields(redis_url, cb.id).get("state") == "failed", 60)
        rang = await customer.result(30)
        assert rang.ok, rang.describe()
    got = fields(redis_url, cb.id)
    assert (got["outcome"], got["attempts"]) == ("busy", "2") and got["detail"].startswith("max attempts"), got
    assert obs.originated(cb.id) == [f"cb-{cb.id}-1", f"cb-{cb.id}-2"]  # one Originate per attempt
    first, second = (float(e["Timestamp"]) for e in obs.named("Newchannel")
                     if e.get("Uniqueid", "").startswith(f"cb-{cb.id}-"))
    assert second - first >= 2.0  # the backoff (callbacks_retry_base) between the two attempts
    assert not redis.Redis.from_url(redis_url).exists(callback_number(cb.number))  # the number may ask again


async def test_declining_customer_is_recorded_and_not_retried(
        asterisk: AsteriskInstance, tmp_path: Path, redis_url: str) -> None:
    dialplans(tmp_path)
    await gate(asterisk, is_open=True)
    async with (observing(asterisk) as obs,
                Customers(asterisk.sip_port, 1, key="2", key_ms=3000, hold_ms=60_000) as customer,
                running_service(asterisk, tmp_path, redis_url=redis_url, callbacks_lease=3.0, callbacks_poll=0.2,
                                callbacks_retry_base=1.0, callbacks_channel=f"Local/{{number_digits}}@{GATE_CONTEXT}"
                                ) as svc):
        store = svc.app.services.callbacks
        assert isinstance(store, CallbackStore)
        [cb] = await add_due(store, 1)
        await svc.wait_for("the callback settled", lambda: fields(redis_url, cb.id).get("state") == "failed", 90)
        answered = await customer.result(60)
        assert answered.ok, answered.describe()
        journeys = await svc.journey_count(1)
    got = fields(redis_url, cb.id)
    assert (got["outcome"], got["attempts"], got["answer"]) == ("declined", "1", "declined"), got
    assert got["detail"].startswith("no retry")
    assert obs.originated(cb.id) == [f"cb-{cb.id}-1"]
    [journey] = [j for j in journeys if j["flow"] == "callback"]
    assert journey["outcome"] == "callback-declined" and "callback-declined" in said(journey)
    assert not obs.named("QueueCallerJoin")


async def test_customer_who_never_answers_is_retried_then_failed(
        asterisk: AsteriskInstance, tmp_path: Path, redis_url: str) -> None:
    dialplans(tmp_path)
    async with (observing(asterisk) as obs, SilentCustomer(asterisk.sip_port, 2) as customer,
                running_service(asterisk, tmp_path, redis_url=redis_url, callbacks_lease=3.0, callbacks_poll=0.2,
                                callbacks_retry_base=1.0, callbacks_ring_seconds=3.0,
                                callbacks_channel="PJSIP/customer") as svc):
        store = svc.app.services.callbacks
        assert isinstance(store, CallbackStore)
        cb, _ = await store.add(keep_place("+390212345098", "billing", now=time.time(), ewt=0.0, position=1,
                                           max_attempts=2))
        await svc.wait_for("the callback failed", lambda: fields(redis_url, cb.id).get("state") == "failed", 60)
        rang = await customer.result(30)
        assert rang.ok, rang.describe()
    got = fields(redis_url, cb.id)
    assert (got["outcome"], got["attempts"]) == ("no_answer", "2") and got["detail"].startswith("max attempts"), got
    assert obs.originated(cb.id) == [f"cb-{cb.id}-1", f"cb-{cb.id}-2"]

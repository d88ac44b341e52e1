"""Queues, callbacks and the survey on real Asterisk: routing by live queue state, a callback placed by the
dialer to a SIPp "customer" who presses 1 and reaches an agent, a refused number, and the survey."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import redis

from ivr.queueing.callbacks import CallbackStore
from ivr.store import callback as callback_key
from lab import (
    AgentPhone,
    AsteriskInstance,
    CallResult,
    Dtmf,
    Hangup,
    Pause,
    Step,
    WaitHangup,
    run_call,
)
from lab.ports import free_udp_port, free_udp_range
from lab.rtp import RtpTimeline
from lab.sipp import _bound, _common_args, _exec, _pause, _run, _workdir, register, uas_scenario
from tests.appkit import project_copy
from tests.e2e.servicekit import running_service, said

FLOW = """
flow: main
start: q
nodes:
  q:
    type: queue
    queue: billing
    next: {callback: cb, voicemail: vm, continue: survey}
  cb:
    type: callback
    next: {next: bye, refused: bye, exists: bye, failed: bye, declined: bye}
  vm: {type: hangup, prompt: voicemail-intro}
  survey: {type: survey, next: bye}
  bye: {type: hangup}
"""


def dialplans(tmp: Path, rules: str) -> None:
    flows, _ = project_copy(tmp)
    (flows / "main.yaml").write_text(FLOW)
    (flows / "queues.yaml").write_text(rules)


class Customer:
    """The called-back customer: registers as `customer`, answers, presses `key` after `key_ms`, then holds
    up to `hold_ms` (whoever hangs up first)."""

    def __init__(self, sip_port: int, key: str = "1", key_ms: int = 4000, hold_ms: int = 60_000) -> None:
        self.sip_port, self.key, self.key_ms, self.hold_ms = sip_port, key, key_ms, hold_ms
        self.port = free_udp_port()
        self.task: asyncio.Task[CallResult] | None = None

    async def __aenter__(self) -> Customer:
        wd = _workdir("customer", None)
        cap = RtpTimeline(wd / "rtp").digit(self.key, 200)
        press = _pause(self.key_ms) + _exec("play_pcap_audio", str(cap.path)) + _pause(cap.duration_ms + 100)
        ack = '  <recv request="ACK" crlf="true"/>\n'
        scenario = wd / "uas.xml"
        scenario.write_text(uas_scenario(self.hold_ms, "customer").replace(ack, ack + press, 1))
        argv = _common_args(self.sip_port, scenario, wd, 120) + [
            "-p", str(self.port), "-mp", str(free_udp_range(4)), "-m", "1"]
        self.task = asyncio.create_task(_run(argv, wd, scenario, 130))
        await _bound(self.port)
        reg = await register(self.sip_port, "customer", self.port)
        assert reg.ok, reg.describe()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await register(self.sip_port, "customer", self.port, expires=0)
        if self.task is not None and not self.task.done():
            self.task.cancel()


async def test_no_agent_overflows_to_the_target_queue(asterisk: AsteriskInstance, tmp_path: Path) -> None:
    dialplans(tmp_path, "queues:\n  billing: {when_no_agents: overflow, overflow: {target: queue, queue: orders}}\n"
                        "  orders: {when_no_agents: join}\n")
    async with running_service(asterisk, tmp_path) as svc:
        await svc.wait_for("queue state", lambda: "billing" in svc.app.services.queues.queues)  # type: ignore[union-attr]
        result = await run_call(asterisk.sip_port, [Pause(7000), Hangup()], time_limit=30)
        assert result.ok, result.describe()
        [journey] = await svc.journey_count(1)
    assert [j["Queue"] for j in svc.named("QueueCallerJoin")] == ["orders"]
    [route] = [e for e in journey["journey"] if e["kind"] == "route"]
    assert route["action"] == "overflow_queue" and route["queue"] == "orders" and "no agents" in route["reason"]
    assert journey["outcome"] == "queue:orders"


async def test_refused_premium_number(asterisk: AsteriskInstance, tmp_path: Path, redis_url: str) -> None:
    dialplans(tmp_path, "queues:\n  billing: {when_no_agents: callback}\n")
    async with running_service(asterisk, tmp_path, redis_url=redis_url) as svc:
        await svc.wait_for("queue state", lambda: "billing" in svc.app.services.queues.queues)  # type: ignore[union-attr]
        result = await run_call(asterisk.sip_port, [Pause(2500), Dtmf("1"), WaitHangup(20_000)],
                                caller_id="+19005550123", time_limit=40)
        assert result.ok, result.describe()
        [journey] = await svc.journey_count(1)
    [event] = [e for e in journey["journey"] if e["kind"] == "callback"]
    assert event["result"] == "refused" and event["reason"] == "premium_rate"
    assert "callback-refused" in said(journey)
    assert not redis.Redis.from_url(redis_url).keys("*cb*")
    assert not svc.named("QueueCallerJoin")


async def test_callback_offered_stored_placed_and_answered(asterisk: AsteriskInstance, tmp_path: Path,
                                                           redis_url: str) -> None:
    dialplans(tmp_path, "queues:\n  billing: {when_no_agents: callback}\n")
    async with (Customer(asterisk.sip_port) as customer,
                running_service(asterisk, tmp_path, redis_url=redis_url, callbacks_channel="PJSIP/customer") as svc):
        await svc.wait_for("queue state", lambda: "billing" in svc.app.services.queues.queues)  # type: ignore[union-attr]
        # no agent: the caller is offered a callback, keeps "this number" (1) and hangs up
        result = await run_call(asterisk.sip_port, [Pause(2500), Dtmf("1"), WaitHangup(20_000)],
                                caller_id="+390212345678", time_limit=40)
        assert result.ok, result.describe()
        await svc.wait_for("the caller's journey", lambda: any(j["flow"] == "main" for j in svc.journeys()))
        [journey] = [j for j in svc.journeys() if j["flow"] == "main"]
        [stored] = [e for e in journey["journey"] if e["kind"] == "callback"]
        assert stored.get("result") == "stored" and journey["outcome"] == "callback:billing", json.dumps(journey)
        assert "callback-confirmed" in said(journey)
        store = svc.app.services.callbacks
        assert isinstance(store, CallbackStore)
        # the dialer calls the customer back at once (no agents: no EWT); an agent appears meanwhile
        async with AgentPhone(asterisk.sip_port, "agent1", hold_ms=2000) as agent:
            await svc.wait_for("the callback settled", lambda: _state(redis_url, stored["id"]) == "done", 60)
            agent_result = await asyncio.wait_for(agent.result(), 60)
        assert agent_result.ok, agent_result.describe()
        journeys = await svc.journey_count(2, limit=30)
        assert customer.task is not None
        customer_result = await asyncio.wait_for(customer.task, 30)
        assert customer_result.ok, customer_result.describe()
        await svc.wait_for("the served outcome", lambda: _field(redis_url, stored["id"], "flow_outcome") == "served",
                           15)
    cb = await _get(redis_url, stored["id"])
    assert (cb["state"], cb["outcome"], cb["attempts"], cb["answer"]) == ("done", "accepted", "1", "accepted")
    assert cb["number"] == "+390212345678" and cb["queue"] == "billing"
    back = [j for j in journeys if j["flow"] == "callback"]
    assert len(back) == 1 and "callback-intro" in said(back[0])
    joins = [e for e in svc.named("QueueCallerJoin") if e["Queue"] == "billing"]
    assert len(joins) == 1  # the customer, once
    [originated] = svc.named("OriginateResponse")  # placed exactly once
    assert originated["Response"] == "Success" and originated["Uniqueid"] == f"cb-{stored['id']}-1"


def _state(url: str, cb_id: str) -> str:
    return _field(url, cb_id, "state")


def _field(url: str, cb_id: str, name: str) -> str:
    value = redis.Redis.from_url(url).hget(callback_key(cb_id), name)
    return value.decode() if isinstance(value, bytes) else str(value or "")


async def _get(url: str, cb_id: str) -> dict[str, str]:
    raw = redis.Redis.from_url(url).hgetall(callback_key(cb_id))
    return {_s(k): _s(v) for k, v in raw.items()}


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def test_survey_after_the_agent_hangs_up(asterisk: AsteriskInstance, tmp_path: Path) -> None:
    dialplans(tmp_path, "queues:\n  billing: {when_no_agents: join}\n")
    surveys = tmp_path / "surveys.jsonl"
    async with (AgentPhone(asterisk.sip_port, "agent2", hold_ms=2000) as agent,
                running_service(asterisk, tmp_path, survey_store=surveys) as svc):
        steps: list[Step] = [Pause(9000), Dtmf("4"), Pause(3500), Dtmf("4"), WaitHangup(30_000)]
        result = await run_call(asterisk.sip_port, steps, caller_id="+390212345678", time_limit=50)
        assert result.ok, result.describe()
        assert (await agent.result()).ok
        [journey] = await svc.journey_count(1)
    [entry] = [json.loads(line) for line in surveys.read_text().splitlines()]
    assert entry["score"] == 4 and entry["queue"] == "billing"
    assert entry["agent_interface"] == "PJSIP/agent2" and entry["agent"] == "Agent 2"
    assert entry["call_id"] == journey["uniqueid"]
    assert "survey-intro" in said(journey)


async def test_announcements_rejoin_and_a_key_leaves_the_queue(asterisk: AsteriskInstance, tmp_path: Path) -> None:
    """Queue(...,timeout=10) → TIMEOUT → position/EWT announcement (STREAM FILE, escape 1/2) → rejoin with
    the position argument; a key during the hold music does nothing, one during an announcement leaves."""
    dialplans(tmp_path, "queues:\n  billing: {when_no_agents: join}\n")
    flow = tmp_path / "dialplans" / "main.yaml"
    flow.write_text(FLOW.replace("    queue: billing\n", "    queue: billing\n    announce_every: 10\n"))
    async with running_service(asterisk, tmp_path) as svc:
        steps: list[Step] = [Pause(24_000)]
        for _ in range(12):
            steps += [Dtmf("2"), Pause(1800)]
        steps.append(WaitHangup(20_000))
        result = await run_call(asterisk.sip_port, steps, caller_id="+390212345678", time_limit=80)
        assert result.ok, result.describe()
        [journey] = await svc.journey_count(1)
    announced = [e for e in journey["journey"] if e["kind"] == "queue-announce"]
    assert len(announced) >= 2 and announced[-1]["key"] == "2" and announced[0]["key"] == "", announced
    assert all(e["position"] == 1 for e in announced), announced  # QUEUEPOSITION read back after TIMEOUT
    joins = [e for e in svc.named("QueueCallerJoin") if e["Queue"] == "billing"]
    assert len(joins) == len(announced) and {j["Position"] for j in joins} == {"1"}
    assert journey["outcome"] == "voicemail:billing"
    assert "queue-place" in said(journey) and "queue-press-voicemail" in said(journey)


async def test_dialer_never_places_a_number_tampered_with_in_redis(asterisk: AsteriskInstance, tmp_path: Path,
                                                                 redis_url: str) -> None:
    """Two due callbacks in Redis; one's number was changed there to a premium-rate one. The dialer checks
    each number again before dialing: the good one rings the customer, the tampered one is never placed."""
    from ivr.queueing.callbacks import keep_place
    from ivr.store import connect

    dialplans(tmp_path, "queues:\n  billing: {when_no_agents: join}\n")
    mark = asterisk.log_mark()
    store = connect(redis_url)
    try:
        cbs = CallbackStore(store)
        now = time.time()
        bad, _ = await cbs.add(keep_place("+393123456789", "billing", now=now, ewt=0, position=1))
        await store.run(lambda r: r.hset(callback_key(bad.id), "number", "+19005550123"))
        async with (Customer(asterisk.sip_port, hold_ms=6000),
                    running_service(asterisk, tmp_path, redis_url=redis_url,
                                    callbacks_channel="PJSIP/customer") as svc):
            await svc.wait_for("the tampered callback refused", lambda: _state(redis_url, bad.id) == "failed", 30)
            # added once AMI is up (an attempt made before would wait out the retry backoff)
            good, _ = await cbs.add(keep_place("+390212345678", "billing", now=time.time(), ewt=0, position=1))
            try:
                await svc.wait_for("the good callback placed", lambda: any(
                    e.get("Uniqueid") == f"cb-{good.id}-1" for e in svc.named("OriginateResponse")), 60)
            except AssertionError as exc:
                raise AssertionError(f"{exc}: {await _get(redis_url, good.id)}") from None
            await asyncio.sleep(2)  # time for a second Originate, were one coming
            placed = [e.get("Uniqueid") for e in svc.named("OriginateResponse", "Newchannel")
                      if str(e.get("Uniqueid", "")).startswith("cb-")]
    finally:
        await store.close()
    refused = await _get(redis_url, bad.id)
    assert (refused["state"], refused["outcome"]) == ("failed", "invalid_number") and "premium" in refused["detail"]
    assert not any(str(u).startswith(f"cb-{bad.id}") for u in placed), placed
    assert any(str(u).startswith(f"cb-{good.id}") for u in placed), placed
    assert "9005550123" not in asterisk.log_text(since=mark, tail=100_000)

"""Agent-first callbacks on real Asterisk (`callbacks_mode = "agent_first"`): the dialer's Originate waits in the
callback's queue; the agent who answers hears a whisper with the customer's number; only then is the SIPp
customer dialled and bridged to the agent. The dial result comes back through AstDB and settles the callback.
Killed (-9) while the callback waits for an agent, a restarted service resumes the attempt without a new Originate."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ivr.queueing.callbacks import CallbackStore
from lab import AgentPhone, AsteriskInstance
from tests.e2e.servicekit import running_service
from tests.e2e.test_dialer_crash import Customers, Serve, add_due, callback_store, dialplans, fields, observing, until


async def test_agent_first_rings_the_agent_whispers_then_dials_the_customer(
        asterisk: AsteriskInstance, tmp_path: Path, redis_url: str) -> None:
    dialplans(tmp_path)
    async with (observing(asterisk) as obs,
                AgentPhone(asterisk.sip_port, "agent1", hold_ms=60_000) as agent,
                Customers(asterisk.sip_port, 1, key="", hold_ms=3000) as customer,
                running_service(asterisk, tmp_path, redis_url=redis_url, callbacks_mode="agent_first",
                                callbacks_channel="PJSIP/customer", callbacks_poll=0.2) as svc):
        store = svc.app.services.callbacks
        assert isinstance(store, CallbackStore)
        [cb] = await add_due(store, 1, queue="billing")
        await svc.wait_for("the callback settled", lambda: fields(redis_url, cb.id).get("state") == "done", 90)
        customer_result = await customer.result(60)
        assert customer_result.ok, customer_result.describe()
        agent_result = await asyncio.wait_for(agent.result(), 60)
        assert agent_result.ok, agent_result.describe()
        stored = await asterisk.acli(f"database get ivr-callbacks {cb.id}")
    got = fields(redis_url, cb.id)
    assert (got["state"], got["outcome"], got["attempts"]) == ("done", "accepted", "1"), got
    assert obs.originated(cb.id) == [f"cb-{cb.id}-1"]
    assert "Value: 1:ANSWER" in stored, stored
    [joined] = [e for e in obs.named("QueueCallerJoin") if e["Queue"] == "billing"]
    assert joined["Uniqueid"] == f"cb-{cb.id}-1-2"  # the Local channel's queue half waited for the agent
    names = [e.get("Event") for e in obs.events]
    connected = names.index("AgentConnect")
    [customer_leg] = obs.customer_channels()
    assert connected < obs.events.index(customer_leg)  # the agent first, then the customer's phone rang
    whisper = [e for e in obs.named("Newexten") if e.get("Context") == "ivr-callbacks-agent-whisper"]
    assert [e["Application"] for e in whisper] == ["Playback", "SayDigits", "Return"], whisper
    assert whisper[1]["AppData"] == cb.number.lstrip("+") and whisper[1]["Channel"].startswith("PJSIP/agent1-")
    assert not [e for e in obs.named("Newexten") if e.get("Context") == "ivr-callbacks"]  # no press-1 flow


async def test_agent_first_killed_while_waiting_for_an_agent_is_resumed_not_redialled(
        asterisk: AsteriskInstance, tmp_path: Path, redis_url: str) -> None:
    dialplans(tmp_path)
    over = dict(callbacks_mode="agent_first", callbacks_channel="PJSIP/customer", callbacks_concurrency=1)
    first, second = (Serve(asterisk, tmp_path, name, redis_url, **over) for name in ("first", "second"))
    async with (observing(asterisk) as obs, Customers(asterisk.sip_port, 1, key="", hold_ms=3000) as customer,
                callback_store(redis_url) as cbs):
        [cb] = await add_due(cbs, 1, queue="billing")
        try:
            first.start()
            waiting = f"cb-{cb.id}-1-2"
            await until("the callback waiting in the queue",
                        lambda: any(e["Uniqueid"] == waiting for e in obs.named("QueueCallerJoin")), 60, first)
            first.kill9()  # no agent yet: the attempt lives on in Asterisk, the lease runs out
            second.start()
            await second.up()
            await until("the attempt resumed", lambda: "still live after a restart" in second.text(), 60, second)
            async with AgentPhone(asterisk.sip_port, "agent2", hold_ms=60_000) as agent:
                await until("the callback settled", lambda: fields(redis_url, cb.id).get("state") == "done", 90,
                            second)
                customer_result = await customer.result(60)
                assert customer_result.ok, customer_result.describe()
                agent_result = await asyncio.wait_for(agent.result(), 60)
                assert agent_result.ok, agent_result.describe()
        finally:
            first.stop()
            second.stop()
    got = fields(redis_url, cb.id)
    assert (got["state"], got["outcome"], got["attempts"]) == ("done", "accepted", "1"), got
    assert obs.originated(cb.id) == [f"cb-{cb.id}-1"]  # one Originate, across the crash
    assert len(obs.customer_channels()) == 1
    assert first.placed() == second.placed() == [cb.id]
    assert [e["Uniqueid"] for e in obs.named("QueueCallerJoin")] == [waiting]

"""The queue node's routing decisions and in-queue announcements, on a FakeChannel and a real QueueBoard."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

from ivr.call import Call
from ivr.config import Settings
from ivr.flows.engine import Engine
from ivr.flows.node import Node, node_type
from ivr.journeys import JourneyLog
from ivr.nodes.queue import ewt_prompt
from ivr.queueing.queuestate import QueueBoard
from ivr.queueing.routing import Overflow, QueueRule, RoutingRules
from ivr.services import Services
from ivr.testing import FakeChannel, FakePrompts
from tests.flowkit import flowset, prompts, visited

RULES = RoutingRules({
    "billing": QueueRule("billing", when_no_agents="overflow", overflow=Overflow("queue", "support")),
    "support": QueueRule("support", max_ewt=300, when_no_agents="callback", overflow=Overflow("callback"),
                         priority_by_tier={"vip": 10}, language_queues={"it": "support-it"}),
    "support-it": QueueRule("support-it", when_no_agents="join", priority_by_tier={"vip": 10}),
    "accounts": QueueRule("accounts", when_no_agents="voicemail"),
})


@node_type("test_tier")
@dataclass(frozen=True)
class SetTier(Node):
    """Sets the caller's tier and language (identify would, from the customer directory)."""

    tier: str = "standard"
    language: str = "en"

    async def run(self, ctx):  # type: ignore[no-untyped-def]
        ctx.call.tier, ctx.call.language = self.tier, self.language
        return "next"


def board(agents: dict[str, int], busy_callers: dict[str, int] | None = None) -> QueueBoard:
    """`agents`: queue → agents logged in (0 = all unavailable). `busy_callers`: queue → callers waiting
    while every agent is on a 10-minute call (a long EWT)."""
    b = QueueBoard(clock=lambda: 1000.0)
    for queue, n in agents.items():
        events = [{"Event": "QueueParams", "Queue": queue}]
        busy = (busy_callers or {}).get(queue)
        for i in range(max(1, n)):
            status = "5" if n == 0 else "2" if busy else "1"
            events.append({"Event": "QueueMember", "Queue": queue, "Location": f"PJSIP/a{i}", "Status": status,
                           "InCall": "1" if busy else "0", "Paused": "0"})
        for i in range(busy or 0):
            events.append({"Event": "QueueEntry", "Queue": queue, "Uniqueid": f"c{i}", "Position": str(i + 1)})
        b.resync(events)
        if busy:
            for _ in range(5):
                b.apply({"Event": "AgentComplete", "Queue": queue, "Interface": "PJSIP/a0", "TalkTime": "600"})
    return b


@dataclass
class QueueChannel(FakeChannel):
    """FakeChannel whose successive Queue() runs end with the given QUEUESTATUS values."""

    statuses: list[str] = field(default_factory=list)
    position: str = ""

    async def exec_app(self, app: str, *args: str) -> int:
        await super().exec_app(app, *args)
        if app == "Queue":
            self.vars["QUEUESTATUS"] = self.statuses.pop(0) if self.statuses else ""
            if self.position:
                self.vars["QUEUEPOSITION"] = self.position
        return 0


async def run(doc: str, script: str = "", *, queues: QueueBoard | None = None, rules: RoutingRules = RULES,
              statuses: Sequence[str] = (), position: str = "") -> tuple[Call, QueueChannel]:
    fs = dataclasses.replace(flowset(doc), routing=rules)
    svc = Services(Settings(), FakePrompts(), JourneyLog(None), queues=queues)
    ch = QueueChannel.scripted(script)
    channel = QueueChannel(ch.script, env=ch.env, statuses=list(statuses), position=position)
    call = await Engine(svc, lambda: fs).handle(channel, next(iter(fs.flows)))
    return call, channel


def flow(queue: str, params: str = "", edges: str = "", tier: str = "standard", language: str = "en") -> str:
    wired = f", next: {{{edges}}}" if edges else ""
    extra = "".join(line for name, line in (
        ("cb", "  cb: {type: say, prompt: callback-offer, next: bye}\n"),
        ("vm", "  vm: {type: say, prompt: voicemail-intro, next: bye}\n")) if f": {name}" in edges)
    return f"""
flow: q
start: who
nodes:
  who: {{type: test_tier, tier: {tier}, language: {language}, next: q}}
  q: {{type: queue, queue: {queue}{params}{wired}}}
{extra}{"  bye: {type: hangup}" if extra else ""}
"""


def queued(ch: FakeChannel) -> list[tuple[str, ...]]:
    return [args for app, args in ch.apps if app == "Queue"]


async def test_no_agents_overflows_to_the_target_queue() -> None:
    call, ch = await run(flow("billing"), queues=board({"billing": 0, "support": 2}))
    assert queued(ch) == [("support", "", "", "", "")]
    assert call.outcome == "queue:support"
    [route] = [e.detail for e in call.journey if e.kind == "route"]
    assert route["action"] == "overflow_queue" and "no agents" in route["reason"]


async def test_long_wait_takes_the_callback_edge() -> None:
    call, ch = await run(flow("support", edges="callback: cb, voicemail: vm"),
                         queues=board({"support": 1}, busy_callers={"support": 3}))
    assert visited(call) == ["who", "q", "cb", "bye"]
    assert queued(ch) == [] and call.vars["queue"] == "support"
    assert int(call.vars["queue_ewt"]) > 300 and call.vars["queue_position"] == "4"


async def test_no_agents_offers_a_callback_else_voicemail_else_joins() -> None:
    no_agents = board({"support": 0, "accounts": 0})
    call, _ = await run(flow("support", edges="callback: cb"), queues=no_agents)
    assert visited(call)[-2] == "cb"
    call, _ = await run(flow("support", edges="voicemail: vm"), queues=no_agents)  # no callback wired
    assert visited(call)[-2] == "vm"
    call, _ = await run(flow("accounts", edges="voicemail: vm"), queues=no_agents)
    assert visited(call)[-2] == "vm" and call.outcome == "voicemail:accounts"
    call, ch = await run(flow("support"), queues=no_agents)  # nothing wired: wait for an agent anyway
    assert queued(ch) == [("support", "", "", "", "")] and call.outcome == "queue:support"


async def test_vip_priority_and_language_variant() -> None:
    call, ch = await run(flow("support", tier="vip", language="it"), queues=board({"support": 1, "support-it": 1}))
    assert queued(ch) == [("support-it", "", "", "", "")]
    assert ch.vars["QUEUE_PRIO"] == "10" and ch.vars["__IVR_TIER"] == "vip"
    call, ch = await run(flow("support"), queues=board({"support": 1}))
    assert "QUEUE_PRIO" not in ch.vars and queued(ch) == [("support", "", "", "", "")]


async def test_unknown_queue_state_joins_as_asked() -> None:
    call, ch = await run(flow("billing"), queues=QueueBoard())  # AMI has told nothing yet
    assert queued(ch) == [("billing", "", "", "", "")]
    call, ch = await run(flow("billing", params=", route: false"), queues=board({"billing": 0}))
    assert queued(ch) == [("billing", "", "", "", "")]


async def test_fixed_priority_wins() -> None:
    _, ch = await run(flow("support", params=", priority: 20", tier="vip"), queues=board({"support": 1}))
    assert ch.vars["QUEUE_PRIO"] == "20"


async def test_announcements_then_rejoin_at_the_same_position() -> None:
    call, ch = await run(flow("support", params=", announce_every: 20", edges="callback: cb, voicemail: vm"),
                         queues=board({"support": 1}), statuses=["TIMEOUT", "TIMEOUT", ""], position="2")
    assert queued(ch) == [("support", "", "", "", "20"), ("support", "", "", "", "20", "", "", "", "2"),
                          ("support", "", "", "", "20", "", "", "", "2")]
    heard = prompts(ch)
    assert heard.count("queue-place") == 2 and "queue-press-callback" in heard and "queue-press-voicemail" in heard
    assert call.outcome == "queue:support"


async def test_periodic_messages_take_turns_between_place_and_keys() -> None:
    params = ", announce_every: 20, messages: [queue-msg-web, {text: 'Orders ship within two days.'}]"
    call, ch = await run(flow("support", params=params, edges="callback: cb"),
                         queues=board({"support": 1}), statuses=["TIMEOUT", "TIMEOUT", "TIMEOUT", ""], position="2")
    heard = prompts(ch)
    assert heard.count("queue-place") == 3 and heard.count("queue-press-callback") == 3
    first = heard.index("queue-place")
    assert heard.index("queue-msg-web") < heard.index("queue-press-callback", first)  # message before the keys
    assert heard.count("queue-msg-web") == 2  # turns: web, text, web
    assert call.outcome == "queue:support"


async def test_a_key_during_the_announcement_leaves_the_queue() -> None:
    call, ch = await run(flow("support", params=", announce_every: 20", edges="callback: cb, voicemail: vm"),
                         "1", queues=board({"support": 1}), statuses=["TIMEOUT"], position="3")
    assert visited(call)[-2:] == ["cb", "bye"]
    assert len(queued(ch)) == 1 and call.vars["queue_position"] == "3"
    [announce] = [e.detail for e in call.journey if e.kind == "queue-announce"]
    assert announce == {"position": 3, "key": "1"}
    call, ch = await run(flow("support", params=", announce_every: 20", edges="voicemail: vm"),
                         "2", queues=board({"support": 1}), statuses=["TIMEOUT"], position="1")
    assert visited(call)[-2] == "vm"
    assert "queue-press-callback" not in prompts(ch)  # only the keys that lead somewhere are offered


async def test_queue_timeout_still_ends_the_wait() -> None:
    call, ch = await run(flow("support", params=", announce_every: 20, timeout: 1", edges="timeout: vm"),
                         queues=board({"support": 1}), statuses=["TIMEOUT"])
    assert queued(ch) == [("support", "", "", "", "1")] and visited(call)[-2] == "vm"


def test_ewt_ranges() -> None:
    assert [ewt_prompt(s) for s in (None, 10, 90, 299, 300, 900, 5000)] == [
        None, "queue-ewt-1", "queue-ewt-5", "queue-ewt-5", "queue-ewt-10", "queue-ewt-20", "queue-ewt-more"]


async def test_queue_name_from_a_variable() -> None:
    doc = """
flow: q
start: s
nodes:
  s: {type: set, vars: {queue: billing}, next: q}
  q: {type: queue, queue: "{queue}"}
"""
    _, ch = await run(doc)
    assert queued(ch) == [("billing", "", "", "", "")]

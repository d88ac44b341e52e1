"""Overflow decisions and queue choice from `queues:` rules."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ivr.queueing.queuestate import QueueSnapshot
from ivr.queueing.routing import RoutingRules, choose_queue, decide, load_routing, route

RULES = """\
menu:
  "1": sales
  "2": support
queues:
  support:
    max_ewt: 300
    max_callers_per_agent: 3
    when_no_agents: overflow
    overflow: {target: queue, queue: support-backup}
    priority_by_tier: {vip: 10, gold: 5}
    language_queues: {it: support-it}
  support-it:
    max_ewt: 240
    overflow: {target: callback}
  support-backup:
    max_ewt: 600
    when_no_agents: voicemail
    overflow: {target: callback}
  sales:
    when_no_agents: callback
    overflow: {target: voicemail}
  loop-a:
    max_ewt: 10
    overflow: {target: queue, queue: loop-b}
  loop-b:
    max_ewt: 10
    overflow: {target: queue, queue: loop-a}
"""


@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory) -> RoutingRules:
    path = tmp_path_factory.mktemp("routing") / "queues.yaml"
    path.write_text(RULES)
    loaded, diags = load_routing(path)
    assert diags == []
    return loaded


def snap(queue: str = "support", serving: int = 2, callers: int = 0, ewt: float | None = 60.0) -> QueueSnapshot:
    return QueueSnapshot(queue, serving, serving, 0, callers, 0.0, 180.0, 0.1, 0, ewt, "model")


def test_joins_within_limits_with_tier_priority(rules: RoutingRules) -> None:
    d = decide(rules, "support", snap(), tier="vip")
    assert (d.action, d.queue, d.priority) == ("join", "support", 10)
    assert decide(rules, "support", snap(), tier="standard").priority == 0


def test_overflow_on_ewt_and_on_callers_per_agent(rules: RoutingRules) -> None:
    d = decide(rules, "support", snap(ewt=301), tier="gold")
    assert (d.action, d.queue, d.priority) == ("overflow_queue", "support-backup", 5)  # tiers of the origin
    assert "EWT 301s over 300s" in d.reason
    assert decide(rules, "support", snap(callers=5)).action == "join"  # 6th caller for 2 agents: at the limit
    d = decide(rules, "support", snap(callers=6))
    assert d.action == "overflow_queue" and "6 waiting for 2 agents" in d.reason
    assert decide(rules, "support", snap(ewt=900), ewt=100).action == "join"  # e.g. a VIP's own position


def test_no_agents_policies(rules: RoutingRules) -> None:
    assert decide(rules, "support", snap(serving=0, ewt=None)).action == "overflow_queue"
    assert decide(rules, "support-backup", snap(serving=0, ewt=None)).action == "voicemail"
    assert decide(rules, "sales", snap(serving=0, ewt=None)).action == "offer_callback"
    unknown = decide(rules, "billing", snap(serving=0, ewt=None))  # no rules: joins, priority 0
    assert (unknown.action, unknown.priority) == ("join", 0)
    assert decide(rules, "support-it", snap(ewt=241)).action == "offer_callback"


def test_route_follows_overflow_chain(rules: RoutingRules) -> None:
    busy = {"support": snap(ewt=400), "support-backup": snap(ewt=100)}
    d = route(rules, "support", lambda q: busy[q], tier="vip")
    assert (d.action, d.queue, d.priority) == ("overflow_queue", "support-backup", 10)
    busy["support-backup"] = snap(ewt=700)
    d = route(rules, "support", lambda q: busy[q])
    assert (d.action, d.queue) == ("offer_callback", "support-backup")
    assert "support: EWT 400s" in d.reason and "support-backup: EWT 700s" in d.reason
    d = route(rules, "loop-a", lambda q: snap(q, ewt=50))
    assert d.action == "voicemail" and "overflow loop" in d.reason
    assert route(rules, "support", lambda q: snap(q)).action == "join"


def test_choose_queue(rules: RoutingRules) -> None:
    assert choose_queue(rules, "2", "it", "vip") == ("support-it", 10)  # tiers inherited from the base queue
    assert choose_queue(rules, "2", "it-IT", "gold") == ("support-it", 5)
    assert choose_queue(rules, "2", "en", "vip") == ("support", 10)
    assert choose_queue(rules, "1", "it") == ("sales", 0)
    assert choose_queue(rules, "support", "de") == ("support", 0)  # a queue name works as a choice


def test_diagnostics(tmp_path: Path) -> None:
    path = tmp_path / "q.yaml"
    path.write_text(textwrap.dedent("""\
        menu:
          "9": nowhere
        queues:
          a:
            max_ewt: -5
            when_no_agents: panic
            overflow: {target: queue}
            priority_by_tier: {vip: high}
            colour: red
          b:
            overflow: {target: queue, queue: b}
          c:
            max_callers_per_agent: 2.5
            overflow: {target: queue, queue: elsewhere}
            language_queues: {it: c-it}
          d: 7
        """))
    rules, diags = load_routing(path)
    errors = {(d.line, d.message.split(":")[1].strip()) for d in diags if d.severity == "error"}
    assert {(5, "max_ewt"), (6, "when_no_agents"), (7, "overflow"), (8, "priority_by_tier"),
            (9, "unknown key 'colour'"), (11, "overflow"), (16, "expected a mapping")} <= errors
    warnings = {d.line for d in diags if d.severity == "warning"}
    assert warnings == {2, 12}
    assert list(rules.queues) == ["c"] and rules.queues["c"].max_callers_per_agent == 2.5
    assert load_routing(tmp_path / "none.yaml")[1][0].message.startswith("cannot read")

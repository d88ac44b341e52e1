"""Queue choice (menu choice + language + tier) and overflow decisions from `queues:` rules; pure."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from ivr.diagnostics import Diagnostic
from ivr.errors import FlowError
from ivr.queueing.queuestate import QueueSnapshot
from ivr.validation import Checked, Positive, at_key, describe, line_of, validate
from ivr.yamlsrc import LineDict, load_yaml

Action = Literal["join", "overflow_queue", "voicemail", "offer_callback"]
NoAgents = Literal["join", "overflow", "voicemail", "callback"]
Target = Literal["queue", "voicemail", "callback"]
_TARGET_ACTION: dict[str, Action] = {"voicemail": "voicemail", "callback": "offer_callback"}
MAX_HOPS = 3


@dataclass(frozen=True)
class Overflow(Checked):
    """Where callers go when the queue is over its limits."""

    target: Target = "voicemail"
    queue: str | None = None  # when target is "queue"

    def problems(self) -> list[str]:
        if (self.target == "queue") != bool(self.queue):
            return ["{target: queue, queue: NAME} or {target: voicemail|callback}"]
        return []


@dataclass(frozen=True)
class QueueRule(Checked):
    """Limits of one queue (an entry of `queues.yaml`); a queue without rules always joins with priority 0."""

    __implied_keys__: ClassVar[tuple[str, ...]] = ("name",)  # the key of its entry in `queues:`

    name: str
    max_ewt: Positive | None = None  # s
    max_callers_per_agent: Positive | None = None
    when_no_agents: NoAgents = "overflow"
    overflow: Overflow = Overflow()
    priority_by_tier: dict[str, Annotated[int, Field(ge=0)]] = field(default_factory=dict)
    language_queues: dict[str, str] = field(default_factory=dict)

    def problems(self) -> list[str]:
        return ["overflow: a queue cannot overflow to itself"] if self.overflow.queue == self.name else []


@dataclass(frozen=True)
class RoutingRules:
    queues: dict[str, QueueRule] = field(default_factory=dict)
    menu: dict[str, str] = field(default_factory=dict)  # menu choice → queue

    def rule(self, queue: str) -> QueueRule:
        return self.queues.get(queue) or QueueRule(queue, when_no_agents="join")


@dataclass(frozen=True)
class Decision:
    action: Action
    queue: str  # the queue to join (join / overflow_queue), else the queue the caller asked for
    priority: int
    reason: str


def choose_queue(rules: RoutingRules, choice: str, language: str = "", tier: str = "") -> tuple[str, int]:
    """(queue, priority): menu choice (or a queue name) → language variant → the tier's priority."""
    base = rules.menu.get(choice, choice)
    variants = rules.rule(base).language_queues
    queue = variants.get(language) or variants.get(language.split("-")[0].split("_")[0]) or base
    return queue, priority(rules, queue, tier, base)


def priority(rules: RoutingRules, queue: str, tier: str, fallback: str | None = None) -> int:
    tiers = rules.rule(queue).priority_by_tier or rules.rule(fallback or queue).priority_by_tier
    return tiers.get(tier, 0)


def decide(rules: RoutingRules, queue: str, snap: QueueSnapshot, tier: str = "",
           ewt: float | None = None) -> Decision:
    """Join or overflow, for one queue. `ewt` overrides `snap.ewt` (e.g. the estimate at a VIP's position)."""
    rule, prio = rules.rule(queue), priority(rules, queue, tier)
    ewt = snap.ewt if ewt is None else ewt
    if snap.serving == 0:
        if rule.when_no_agents == "join":
            return Decision("join", queue, prio, "no agents: joining anyway")
        if rule.when_no_agents != "overflow":
            return Decision(_TARGET_ACTION[rule.when_no_agents], queue, prio, "no agents")
        return _overflow(rules, rule, tier, "no agents")
    limit = rule.max_callers_per_agent
    if limit is not None and snap.callers + 1 > limit * snap.serving:
        return _overflow(rules, rule, tier, f"{snap.callers} waiting for {snap.serving} agents (max {limit:g} each)")
    if rule.max_ewt is not None and ewt is not None and ewt > rule.max_ewt:
        return _overflow(rules, rule, tier, f"EWT {ewt:.0f}s over {rule.max_ewt:g}s")
    return Decision("join", queue, prio, "within limits" if ewt is None else f"EWT {ewt:.0f}s")


def _overflow(rules: RoutingRules, rule: QueueRule, tier: str, why: str) -> Decision:
    target = rule.overflow
    if target.target == "queue" and target.queue:
        return Decision("overflow_queue", target.queue, priority(rules, target.queue, tier, rule.name), why)
    return Decision(_TARGET_ACTION[target.target], rule.name, priority(rules, rule.name, tier), why)


def route(rules: RoutingRules, queue: str, snapshot: Callable[[str], QueueSnapshot], tier: str = "",
          ewt: float | None = None) -> Decision:
    """`decide`, then follow overflow queues (up to MAX_HOPS, no loops) to a queue that takes the caller."""
    decision, seen, reasons = decide(rules, queue, snapshot(queue), tier, ewt), [queue], []
    while decision.action == "overflow_queue":
        reasons.append(f"{seen[-1]}: {decision.reason}")
        if decision.queue in seen or len(seen) > MAX_HOPS:
            return Decision("voicemail", queue, decision.priority, "; ".join([*reasons, "overflow loop"]))
        nxt = decide(rules, decision.queue, snapshot(decision.queue), tier)
        seen.append(decision.queue)
        if nxt.action == "join":
            return Decision("overflow_queue", nxt.queue, decision.priority, "; ".join(reasons))
        decision = nxt
    if not reasons:
        return decision
    return Decision(decision.action, decision.queue, decision.priority,
                    "; ".join([*reasons, f"{decision.queue}: {decision.reason}"]))


# --- loading ---------------------------------------------------------------------------------------


def load_routing(path: str | Path) -> tuple[RoutingRules, list[Diagnostic]]:
    """Read `queues:` (and optional `menu:`); problems are `file:line` Diagnostics (an error drops its queue)."""
    file, found = str(path), list[Diagnostic]()
    try:
        doc = load_yaml(Path(path).read_text(encoding="utf-8"), file)
    except FlowError as exc:
        return RoutingRules(), [Diagnostic(exc.file, exc.line, exc.reason)]
    except (OSError, ValueError) as exc:
        return RoutingRules(), [Diagnostic(file, 1, f"cannot read: {exc}")]
    raw = doc.get("queues") if isinstance(doc, LineDict) else None
    if not isinstance(raw, LineDict):
        return RoutingRules(), [Diagnostic(file, getattr(doc, "line", 1), "expected a `queues:` mapping")]
    rules: dict[str, QueueRule] = {}
    for name, body in raw.items():
        if not isinstance(body, LineDict):
            found.append(Diagnostic(file, raw.line_of(name), f"queue {name!r}: expected a mapping"))
            continue
        rule, problems = validate(QueueRule, {**body, "name": str(name)})
        found += [Diagnostic(file, line_of(body, p.loc, body.line), f"queue {name!r}: {describe(p)}")
                  for p in map(at_key, problems)]
        if rule is not None:
            rules[str(name)] = rule
    menu = doc.get("menu", LineDict())
    if not isinstance(menu, LineDict):
        found.append(Diagnostic(file, doc.line_of("menu"), "menu: expected a mapping of choice → queue"))
        menu = LineDict()
    refs = [(menu.line_of(c), f"menu {c!r}", str(q)) for c, q in menu.items()] + [
        (raw.line_of(r.name), f"queue {r.name!r}", q)
        for r in rules.values() for q in [r.overflow.queue, *r.language_queues.values()] if q]
    found += [Diagnostic(file, line, f"{where}: queue {q!r} has no rules (joins without limits)", "warning")
              for line, where, q in refs if q not in rules]
    return RoutingRules(rules, {str(k): str(v) for k, v in menu.items()}), found

"""`queue`: route the caller by the live queue state, bridge them to an Asterisk queue, keep them informed.

What the IVR collected reaches the agent as inherited channel variables (`__IVR_*`): language,
customer id and name, tier, verification level, the menu path, and any `vars` of the node.
Secure input (`call.secure`) is never among them.

Routing (before joining). With rules for the queue in `dialplans/queues.yaml` and live state on the
`QueueBoard` (AMI events), `ivr.queueing.routing` picks the language variant and the tier's priority
(`QUEUE_PRIO`), then joins, overflows to another queue, or takes the `voicemail` / `callback` edge
(a callback *offer*: wire it to a `callback` node). An edge that is not wired joins the queue anyway
(no dead end). A queue the board knows nothing about yet (AMI down, just started) is joined as asked.
The routed queue and the EWT are left in the call variables `queue`, `queue_position`, `queue_ewt`.

In-queue announcements and the key to leave (`announce_every` > 0). Asterisk's own periodic
announcements cannot hand a key back to the service, so the node waits in slices:

1. `EXEC Queue(name,options,,,<announce_every>[,,,,<position>])` - the Queue timeout argument ends
   the wait after one slice with `QUEUESTATUS=TIMEOUT` (an agent that answers first bridges as usual).
2. On TIMEOUT the service reads `QUEUEPOSITION` (set by app_queue when a caller leaves), estimates the
   wait at that position (`QueueBoard.estimate`), and plays "you are number N ... less than 5 minutes
   ... press 1 for a call back, 2 to leave a message" with STREAM FILE and escape digits: a key pressed
   during the announcement interrupts it and wins (`callback` / `voicemail` edge).
3. Otherwise the caller rejoins at the same place: Queue's 9th argument `position` puts them back where
   they were (callers who joined meanwhile stay behind), so the announcement costs no place in line.

Trade-off: for the few seconds of an announcement the caller is not in the queue (an agent who frees
up then takes the next caller; at most one announcement's length of delay), and a ring in progress when
the slice ends is cut short (Asterisk's default `timeoutpriority=app`). Keys pressed during the hold
music itself are not seen by the service (AGI reads no DTMF while Queue runs; queues.conf `context=`
would let a digit leave the queue, but it would also apply to callers queued by the plain dialplan
fallback, so it is not used): the key works during every announcement, every `announce_every` seconds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ivr.flows.node import STOP, Node, node_type
from ivr.flows.prompt_ref import PromptRef
from ivr.queueing.routing import Decision, RoutingRules, choose_queue, route

if TYPE_CHECKING:
    from ivr.flows.context import NodeContext
    from ivr.queueing.queuestate import QueueBoard

QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
QUEUE_TEMPLATE = re.compile(r"^\{[A-Za-z_][A-Za-z0-9_]*\}$")  # e.g. "{queue}": the queue a call variable names
TRANSFER = PromptRef.parse("transfer-agent")
# Asterisk's QUEUESTATUS after Queue() returns → edge
STATUS_EDGES = {"TIMEOUT": "timeout", "FULL": "full", "JOINEMPTY": "empty", "LEAVEEMPTY": "empty",
                "JOINUNAVAIL": "empty", "LEAVEUNAVAIL": "empty", "CONTINUE": "continue"}
EXIT_KEYS = {"1": "callback", "2": "voicemail"}
# EWT ranges: (upper bound in s, prompt); above the last: "more than 20 minutes"
EWT_RANGES = ((60.0, "queue-ewt-1"), (300.0, "queue-ewt-5"), (600.0, "queue-ewt-10"), (1200.0, "queue-ewt-20"))
EWT_MORE = "queue-ewt-more"


def agent_vars(ctx: NodeContext, extra: Mapping[str, str]) -> dict[str, str]:
    """The channel variables an agent sees (names without the __IVR_ prefix)."""
    call = ctx.call
    out = {
        "LANGUAGE": call.language, "CUSTOMER_ID": call.customer_id, "CUSTOMER_NAME": call.customer_name,
        "TIER": call.tier, "AUTH": call.auth_level, "PATH": " ".join(call.path), "FLOW": call.flow,
    }
    for name, template in extra.items():
        out[name.upper()] = ctx.render(template)
    return {k: " ".join(v.split())[:200] for k, v in out.items()}


def ewt_prompt(seconds: float | None) -> str | None:
    """The catalogue prompt for an estimated wait, in ranges; None when there is no estimate."""
    if seconds is None:
        return None
    for limit, name in EWT_RANGES:
        if seconds < limit:
            return name
    return EWT_MORE


def known(board: QueueBoard, queue: str) -> bool:
    """Whether the board has heard anything about the queue's agents (else routing would guess)."""
    q = board.queues.get(queue)
    return q is not None and (q.members_known or "loggedin" in q.summary)


def decide(ctx: NodeContext, asked: str) -> tuple[str, Decision]:
    """(the queue asked for in the caller's language, the decision): language variant + tier priority,
    then the overflow rules against the live board."""
    rules = ctx.flows.routing
    board = ctx.services.queues
    if not isinstance(rules, RoutingRules):
        return asked, Decision("join", asked, 0, "no routing rules")
    queue, prio = choose_queue(rules, asked, ctx.call.language, ctx.call.tier)
    if board is None or not known(board, queue):
        return queue, Decision("join", queue, prio, "queue state unknown")
    return queue, route(rules, queue, board.snapshot, ctx.call.tier)


@node_type("queue")
@dataclass(frozen=True)
class Queue(Node):
    """Edges (all optional): timeout, full, empty (no agents), continue (after the agent hung up),
    voicemail and callback (routing decisions, or the caller's key while waiting)."""

    queue: str
    """a queue name, or "{var}" from a call variable"""
    prompt: PromptRef | None = TRANSFER
    """played before the caller joins"""
    timeout: int = 0  # seconds the caller may wait; 0 = the queue's own setting
    """s the caller may wait; 0 = the queue's own setting"""
    priority: int | None = None  # fixed QUEUE_PRIO; else the tier's priority from the routing rules
    """a fixed QUEUE_PRIO; else the tier's priority from queues.yaml"""
    vars: Mapping[str, str] = field(default_factory=dict)
    """channel variables for the agent: IVR_<NAME> = template"""
    route: bool = True  # apply dialplans/queues.yaml to the live queue state before joining
    """apply queues.yaml to the live queue state before joining"""
    announce_every: int = 0  # seconds between position/EWT announcements; 0 = hold music only
    """s between position/EWT announcements (0 = hold music only, else at least 10)"""
    messages: tuple[PromptRef, ...] = ()  # periodic messages: one per announcement, in turn
    """prompts played in turn, one per announcement"""

    edges = ()
    optional_edges = ("timeout", "full", "empty", "continue", "voicemail", "callback")
    terminal = True

    def problems(self) -> list[str]:
        found = []
        if not QUEUE_NAME.match(self.queue) and not QUEUE_TEMPLATE.match(self.queue):
            found.append(f"queue name {self.queue!r} must be letters, digits, '-' or '_' (or a {{variable}})")
        if self.timeout < 0:
            found.append("timeout cannot be negative")
        if self.announce_every and self.announce_every < 10:
            found.append("announce_every: 0 (off) or at least 10 seconds")
        found += [f"variable name {k!r} must be a name" for k in self.vars if not k.isidentifier()]
        return found

    def prompts(self) -> list[PromptRef]:
        found = super().prompts()
        found += list(self.messages)
        if self.announce_every:
            names = ["queue-place", "queue-press-callback", "queue-press-voicemail", EWT_MORE]
            found += [PromptRef.parse(n) for n in names + [n for _, n in EWT_RANGES]]
        return found

    def _asked(self, ctx: NodeContext) -> str:
        if not QUEUE_TEMPLATE.match(self.queue):
            return self.queue
        name = ctx.render(self.queue).strip()
        return name if QUEUE_NAME.match(name) else ctx.services.settings.default_queue

    async def run(self, ctx: NodeContext) -> str:
        wired = ctx.flow.nodes[ctx.node_id].edges if ctx.node_id in ctx.flow.nodes else {}
        asked = self._asked(ctx)
        chosen, decision = decide(ctx, asked) if self.route else (asked, Decision("join", asked, 0, "routing off"))
        queue = decision.queue
        board = ctx.services.queues
        snap = board.snapshot(queue) if board is not None and known(board, queue) else None
        ctx.call.vars["queue"] = queue
        if snap is not None:
            ctx.call.vars["queue_position"] = str(snap.callers + 1)
            ctx.call.vars["queue_ewt"] = "" if snap.ewt is None else str(round(snap.ewt))
        if decision.action != "join" or decision.reason not in ("no routing rules", "routing off"):
            ctx.call.record(ctx.node_id, "route", action=decision.action, queue=queue, reason=decision.reason)
        if decision.action in ("voicemail", "offer_callback"):
            edge = "voicemail" if decision.action == "voicemail" else "callback"
            if edge not in wired and edge == "callback" and "voicemail" in wired:
                edge = "voicemail"
            if edge in wired:
                ctx.call.outcome = f"{edge}:{queue}"
                return edge
            queue = chosen  # no such way out here: wait in the queue asked for
            ctx.call.vars["queue"] = queue
            ctx.call.record(ctx.node_id, "route", action="join", queue=queue, reason=f"{edge} edge not wired")

        for name, value in agent_vars(ctx, self.vars).items():
            await ctx.channel.set_var(f"__IVR_{name}", value)
        prio = self.priority if self.priority is not None else decision.priority
        if self.priority is not None or prio:
            await ctx.channel.set_var("QUEUE_PRIO", str(prio))
        await ctx.play(self.prompt)
        options = "c" if "continue" in wired else ""
        ctx.call.outcome = f"queue:{queue}"
        ctx.call.record(ctx.node_id, "queue", queue=queue, priority=prio)
        status = await self._wait(ctx, queue, options, wired)
        if status.startswith("key:"):
            chosen = EXIT_KEYS[status[4:]]
            ctx.call.outcome = f"{chosen}:{queue}"
            return chosen
        ctx.call.record(ctx.node_id, "queue-result", status=status or "none")
        result = STATUS_EDGES.get(status)
        if result is None:
            return STOP
        if result not in wired and result != "continue":
            ctx.call.outcome = f"queue-{result}:{queue}"
        return result if result in wired else "fallback"

    async def _wait(self, ctx: NodeContext, queue: str, options: str, wired: Mapping[str, str]) -> str:
        """Queue() in slices of announce_every s with an announcement between them; QUEUESTATUS or "key:<k>"."""
        if not self.announce_every:
            await ctx.channel.exec_app("Queue", queue, options, "", "", str(self.timeout or ""))
            return (await ctx.channel.get_var("QUEUESTATUS") or "").upper()
        keys = "".join(k for k, edge in EXIT_KEYS.items() if edge in wired)
        waited, position, turn = 0, 0, 0  # s of queue time used (announcements do not), place to rejoin at
        while True:
            slice_s = min(self.announce_every, self.timeout - waited) if self.timeout else self.announce_every
            args = [queue, options, "", "", str(slice_s)]
            if position:
                args += ["", "", "", str(position)]
            await ctx.channel.exec_app("Queue", *args)
            waited += slice_s
            status = (await ctx.channel.get_var("QUEUESTATUS") or "").upper()
            if status != "TIMEOUT" or (self.timeout and waited >= self.timeout):
                return status
            raw = await ctx.channel.get_var("QUEUEPOSITION") or ""
            position = int(raw) if raw.isdigit() and int(raw) > 0 else max(1, position)
            key = await self._announce(ctx, queue, position, keys, turn)
            turn += 1
            ctx.call.record(ctx.node_id, "queue-announce", position=position, key=key)
            if key:
                return f"key:{key}"

    async def _announce(self, ctx: NodeContext, queue: str, position: int, keys: str, turn: int) -> str:
        """Place and wait, then this turn's periodic message, then the keys; a key interrupts and wins."""
        board = ctx.services.queues
        ewt = board.estimate(queue, position)[0] if board is not None else None
        ctx.call.vars["queue_position"] = str(position)
        ctx.call.vars["queue_ewt"] = "" if ewt is None else str(round(ewt))
        names = ["queue-place"]
        if (ewt_name := ewt_prompt(ewt)) is not None:
            names.append(ewt_name)
        extra: dict[str, Any] = {"queue_position": str(position)}
        key = await ctx.play(PromptRef.parse(names), escape=keys, extra=extra)
        if not key and self.messages:
            key = await ctx.play(self.messages[turn % len(self.messages)], escape=keys, extra=extra)
        offers = [p for k, p in (("1", "queue-press-callback"), ("2", "queue-press-voicemail")) if k in keys]
        if not key and offers:
            key = await ctx.play(PromptRef.parse(offers), escape=keys, extra=extra)
        return key

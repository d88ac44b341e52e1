"""`voicemail`: the caller leaves a message (outside hours, on overflow, or because they asked to).

The message is recorded by Asterisk (RECORD FILE, ended by #, silence, the time limit or the caller hanging
up — the usual way to finish, and the message is kept), normalised to telephone audio and stored with caller,
customer, time, language, reason and queue (`ivr.ops.voicemail`); the webhook is told in the background.

`reason` names why the caller is here; empty, it comes from the edge that led to the node: an hours node's
`closed`/`holiday`/`emergency` edge keeps its name; a queue's `voicemail` edge is `caller` when the caller
pressed the key during an announcement and `overflow` when routing sent them; a queue's `timeout`/`full`
edge is `overflow`, `empty` is `no-agents`; a menu key is `caller`; no edge at all is `direct`.
Edges: `next` (stored, or nothing was said); `failed` (optional: storage failed).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from ivr.errors import CallEnded, StoreUnavailable
from ivr.flows.node import Node, node_type
from ivr.flows.prompt_ref import PromptRef
from ivr.media.recordings import new_id
from ivr.validation import NonNegative

if TYPE_CHECKING:
    from ivr.flows.context import NodeContext

QUEUE_EDGES = {"timeout": "overflow", "full": "overflow", "empty": "no-agents"}
KEEP_EDGES = ("closed", "holiday", "emergency", "overflow", "caller", "no-agents")


def _p(name: str) -> PromptRef:
    return PromptRef.parse(name)


def infer_reason(ctx: NodeContext) -> str:
    """Why the caller reached this node, from the journey's last edge into it."""
    journey = ctx.call.journey
    for i in range(len(journey) - 1, -1, -1):
        ev = journey[i]
        if ev.kind != "edge" or ev.detail.get("to") != ctx.node_id:
            continue
        edge, source = str(ev.detail.get("edge", "")), ev.node
        if edge == "voicemail":
            pressed = any(e.node == source and e.kind == "queue-announce" and e.detail.get("key")
                          for e in journey[:i])
            return "caller" if pressed else "overflow"
        if edge in KEEP_EDGES:
            return edge
        if edge in QUEUE_EDGES:
            return QUEUE_EDGES[edge]
        if len(edge) == 1 and edge in "0123456789*#":
            return "caller"
        return edge or "direct"
    return "direct"


@node_type("voicemail")
@dataclass(frozen=True)
class Voicemail(Node):
    prompt: PromptRef = _p("voicemail-intro")
    thanks: PromptRef | None = _p("voicemail-saved")
    reason: str = ""  # a template; empty = from the edge that led here
    max_seconds: Annotated[int, Field(ge=0, le=3600)] = 0
    """longest message in s (0 = the setting voicemail.max_seconds)"""
    silence_seconds: Annotated[int, Field(ge=0)] = 5
    """this much silence ends the message (0: only # or the limit)"""
    min_seconds: NonNegative = 0.5
    """shorter than this: nothing was said, nothing is stored"""
    beep: bool = True

    edges = ("next",)
    optional_edges = ("failed",)

    async def run(self, ctx: NodeContext) -> str:
        store = ctx.services.voicemail
        if store is None:
            raise StoreUnavailable("voicemail is not configured")
        call, settings = ctx.call, ctx.services.settings
        reason = " ".join(ctx.render(self.reason).split())[:40] if self.reason else infer_reason(ctx)
        now = ctx.services.clock()
        message_id = new_id(now)
        await asyncio.to_thread(store.prepare)  # RECORD FILE does not create folders
        await ctx.play(self.prompt)
        hung_up = False
        try:
            rec = await ctx.channel.record(
                store.target(message_id), escape="#", beep=self.beep,
                max_seconds=float(self.max_seconds or settings.voicemail_max_seconds),
                silence_seconds=float(self.silence_seconds))
            hung_up = rec.ended_by == "hangup"
        except CallEnded:
            hung_up = True  # whatever Asterisk wrote before the hang-up is still a message
        call.outcome = f"voicemail:{reason}"
        message = await store.keep(
            message_id, min_seconds=self.min_seconds, caller=call.caller_id, time=now.isoformat(),
            language=call.language, reason=reason, customer_id=call.customer_id,
            queue=call.vars.get("queue", ""), flow=call.flow, call_id=ctx.channel.uniqueid)
        if message is None:
            call.record(ctx.node_id, "voicemail", saved=False, reason=reason)
            call.outcome = f"voicemail-empty:{reason}"
        else:
            call.record(ctx.node_id, "voicemail", saved=True, id=message.id, seconds=message.seconds, reason=reason)
        if hung_up:
            raise CallEnded("the caller hung up after the message")
        if message is not None:
            await ctx.play(self.thanks)
        return "next"

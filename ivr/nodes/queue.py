"""`queue`: bridge the caller to an Asterisk queue, handing the agent what the IVR learnt.

What the IVR collected reaches the agent as inherited channel variables (`__IVR_*`): language,
customer id and name, tier, verification level, the menu path, and any `vars` of the node.
Secure input (`call.secure`) is never among them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ivr.flows.prompt_ref import PromptRef
from ivr.nodes.base import STOP, Node, node_type

if TYPE_CHECKING:
    from ivr.flows.context import NodeContext

QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
TRANSFER = PromptRef.parse("transfer-agent")
# Asterisk's QUEUESTATUS after Queue() returns → edge
STATUS_EDGES = {"TIMEOUT": "timeout", "FULL": "full", "JOINEMPTY": "empty", "LEAVEEMPTY": "empty",
                "JOINUNAVAIL": "empty", "LEAVEUNAVAIL": "empty", "CONTINUE": "continue"}


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


@node_type("queue")
@dataclass(frozen=True)
class Queue(Node):
    """Edges (all optional): timeout, full, empty (no agents), continue (after the agent hung up)."""

    queue: str
    prompt: PromptRef | None = TRANSFER
    timeout: int = 0  # seconds the caller may wait; 0 = the queue's own setting
    priority: int | None = None
    vars: Mapping[str, str] = field(default_factory=dict)

    edges = ()
    optional_edges = ("timeout", "full", "empty", "continue")
    terminal = True

    def problems(self) -> list[str]:
        found = []
        if not QUEUE_NAME.match(self.queue):
            found.append(f"queue name {self.queue!r} must be letters, digits, '-' or '_'")
        if self.timeout < 0:
            found.append("timeout cannot be negative")
        found += [f"variable name {k!r} must be a name" for k in self.vars if not k.isidentifier()]
        return found

    async def run(self, ctx: NodeContext) -> str:
        for name, value in agent_vars(ctx, self.vars).items():
            await ctx.channel.set_var(f"__IVR_{name}", value)
        if self.priority is not None:
            await ctx.channel.set_var("QUEUE_PRIO", str(self.priority))
        await ctx.play(self.prompt)
        wired = ctx.flow.nodes[ctx.node_id].edges if ctx.node_id in ctx.flow.nodes else {}
        options = "c" if "continue" in wired else ""
        ctx.call.outcome = f"queue:{self.queue}"
        ctx.call.record(ctx.node_id, "queue", queue=self.queue)
        await ctx.channel.exec_app("Queue", self.queue, options, "", "", str(self.timeout or ""))
        status = (await ctx.channel.get_var("QUEUESTATUS") or "").upper()
        ctx.call.record(ctx.node_id, "queue-result", status=status or "none")
        edge = STATUS_EDGES.get(status)
        if edge is None:
            return STOP
        if edge not in wired and edge != "continue":
            ctx.call.outcome = f"queue-{edge}:{self.queue}"
        return edge if edge in wired else "fallback"

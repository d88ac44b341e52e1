"""`identify`: who is calling? Caller id → customer directory → name, tier, language, open orders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ivr.errors import BackendError, BackendTimeout
from ivr.flows.node import Node, node_type
from ivr.nodes.backend_call import apply_customer, backends, e164

if TYPE_CHECKING:
    from ivr.flows.context import NodeContext


@node_type("identify")
@dataclass(frozen=True)
class Identify(Node):
    """Edges: known, unknown; failed/timeout if wired (else a failed lookup counts as unknown:
    not knowing the caller is no reason to stop serving them)."""

    use_language: bool = True  # switch to the customer's preferred language

    edges = ("known", "unknown")
    optional_edges = ("failed", "timeout")

    async def run(self, ctx: NodeContext) -> str:
        number = e164(ctx.call.caller_id, ctx.services.settings.phone_region)
        if not number:
            ctx.call.record(ctx.node_id, "lookup", result="no-caller-id")
            return "unknown"
        wired = ctx.flow.nodes[ctx.node_id].edges if ctx.node_id in ctx.flow.nodes else {}
        try:
            customer = await backends(ctx).directory.by_caller_id(number)
        except BackendError as exc:
            edge = "timeout" if isinstance(exc, BackendTimeout) else "failed"
            ctx.call.record(ctx.node_id, "error", error=type(exc).__name__)
            return edge if edge in wired else "unknown"
        if customer is None:
            ctx.call.record(ctx.node_id, "lookup", result="unknown")
            return "unknown"
        await apply_customer(ctx, customer, self.use_language)
        return "known"

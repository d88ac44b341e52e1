"""`lookup`: self-service through backends — balance, order status, password reset — recorded in the CRM.

Results land in call variables for the next nodes to speak:
    balance         balance (decimal text), currency (USD, EUR ...)
    order_status    order_number, order_digits ("5 0 0 0 1", for TTS), order_state (raw),
                    order_status (the state in the caller's language), order_eta (ISO date or "")
    password_reset  reset_sent_to (masked number on file)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ivr.backends.protocols import Interaction
from ivr.errors import BackendError, IvrError
from ivr.flows.node import Node, node_type
from ivr.flows.prompt_ref import PromptRef
from ivr.nodes.backend_call import PLEASE_WAIT, backends, with_filler

if TYPE_CHECKING:
    from ivr.flows.context import NodeContext

log = logging.getLogger("ivr.lookup")
WHAT = ("balance", "order_status", "password_reset")


@node_type("lookup")
@dataclass(frozen=True)
class Lookup(Node):
    """Edges: next; not_found (order_status), failed and timeout (optional: default apology → agent)."""

    what: Literal["balance", "order_status", "password_reset"]
    """balance → {balance}, {currency}; order_status → {order_status}, {order_digits}, {order_eta}; password_reset"""
    order_var: str = "order_number"
    """the call variable that holds the order number"""
    requires_auth: bool = True
    filler: PromptRef | None = PLEASE_WAIT

    edges = ("next",)
    optional_edges = ("not_found", "failed", "timeout")

    async def run(self, ctx: NodeContext) -> str:
        call = ctx.call
        if not call.customer_id:
            raise BackendError("lookup before the caller was identified")
        if self.requires_auth and call.auth_level != "verified":
            raise BackendError(f"{self.what} needs a verified caller (put an authenticate node first)")
        try:
            edge: str = await getattr(self, f"_{self.what}")(ctx)
        except BackendError as exc:
            self._crm(ctx, "failed", type(exc).__name__)
            raise
        self._crm(ctx, "ok" if edge == "next" else edge)
        ctx.call.record(ctx.node_id, "lookup", what=self.what, result=edge)
        return edge

    async def _balance(self, ctx: NodeContext) -> str:
        balance = await with_filler(ctx, backends(ctx).accounts.balance(ctx.call.customer_id), self.filler)
        ctx.call.vars.update(balance=str(balance.amount), currency=balance.currency)
        return "next"

    async def _order_status(self, ctx: NodeContext) -> str:
        number = ctx.call.vars.get(self.order_var, "")
        order = await with_filler(ctx, backends(ctx).orders.status(ctx.call.customer_id, number), self.filler) \
            if number else None
        if order is None:
            return "not_found"
        store = ctx.services.prompts
        word = _catalog_text(store, f"order-state-{order.state}", ctx.call.language) or order.state
        ctx.call.vars.update(order_number=order.number, order_digits=" ".join(order.number), order_state=order.state,
                             order_status=word, order_eta=order.eta.isoformat() if order.eta else "")
        return "next"

    async def _password_reset(self, ctx: NodeContext) -> str:
        ticket = await with_filler(ctx, backends(ctx).password_reset.reset(ctx.call.customer_id), self.filler)
        ctx.call.vars["reset_sent_to"] = ticket.sent_to
        return "next"

    def _crm(self, ctx: NodeContext, outcome: str, detail: str = "") -> None:
        """Record the contact in the CRM without making the caller wait (a CRM failure is only logged)."""
        if ctx.services.backends is None:
            return
        crm = ctx.services.backends.crm
        interaction = Interaction(ctx.call.customer_id, self.what.replace("_", "-"), outcome,
                                  summary=detail, call_id=ctx.call.uniqueid)

        async def send() -> None:
            try:
                await crm.record(interaction)
            except IvrError as exc:
                log.warning("[%s] CRM record failed: %s", ctx.call.uniqueid, exc)

        ctx.services.background.spawn(send(), name=f"crm-{ctx.call.uniqueid}")  # flushed when the service stops


def _catalog_text(store: object, name: str, language: str) -> str | None:
    catalog = getattr(store, "catalog", None)
    src = catalog.lookup(name, language) if catalog is not None else None
    return src.text if src is not None else None

"""Helpers for nodes that call backends: the filler prompt while waiting, applying a found customer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TYPE_CHECKING, TypeVar

import phonenumbers

from ivr.errors import BackendUnavailable
from ivr.flows.prompt_ref import PromptRef

if TYPE_CHECKING:
    from ivr.backends.http import Backends
    from ivr.backends.protocols import Customer
    from ivr.flows.context import NodeContext

T = TypeVar("T")
PLEASE_WAIT = PromptRef.parse("please-wait")


def backends(ctx: NodeContext) -> Backends:
    if ctx.services.backends is None:
        raise BackendUnavailable("no backend configured (backends.url)")
    return ctx.services.backends


async def with_filler(ctx: NodeContext, work: Awaitable[T], filler: PromptRef | None = PLEASE_WAIT) -> T:
    """Await `work`; if it takes longer than backends.filler_after, play `filler` meanwhile."""
    task = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait({task}, timeout=ctx.services.settings.backends_filler_after)
        if not done and filler is not None:
            ctx.call.record(ctx.node_id, "filler")
            await ctx.play(filler)
        return await task
    finally:
        if not task.done():  # the caller hung up during the filler
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


def e164(caller_id: str, region: str) -> str:
    """A caller id as E.164 (`+12025550101`), or "" when it is not a valid number."""
    if not caller_id:
        return ""
    try:
        number = phonenumbers.parse(caller_id, region)
    except phonenumbers.NumberParseException:
        return ""
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) \
        if phonenumbers.is_possible_number(number) else ""


async def apply_customer(ctx: NodeContext, customer: Customer, use_language: bool) -> None:
    """The call now knows who is calling: name, tier, language, open orders and cases."""
    call = ctx.call
    call.customer = customer
    call.customer_id, call.customer_name, call.tier = customer.id, customer.name, customer.tier
    if call.auth_level == "none":
        call.auth_level = "identified"
    call.vars["open_orders"] = str(len(customer.open_orders))
    call.vars["open_cases"] = str(len(customer.open_cases))
    if use_language and customer.language in ctx.services.settings.languages and customer.language != call.language:
        call.language = customer.language
        await ctx.channel.set_language(customer.language)
    call.record(ctx.node_id, "customer", customer_id=customer.id, tier=customer.tier, language=call.language)

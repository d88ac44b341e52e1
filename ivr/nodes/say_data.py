"""`say_data`: speak digits, a number, a currency amount, a date or a time in the call's language."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Literal

from ivr.flows.node import Node, node_type
from ivr.flows.prompt_ref import PromptRef

if TYPE_CHECKING:
    from ivr.flows.context import NodeContext

CURRENCY_WORDS = {"USD": ("currency-dollars", "currency-cents"), "EUR": ("currency-euros", "currency-cents")}


@node_type("say_data")
@dataclass(frozen=True)
class SayData(Node):
    """`value` is a template (`{balance}`); amounts are decimal text, dates ISO (2026-11-25).
    `currency` may be a template too (`{currency}`, as `lookup` sets it)."""

    kind: Literal["digits", "number", "amount", "date", "time", "alpha"]
    """how `value` is spoken"""
    value: str
    """a template, e.g. `{balance}`"""
    currency: str = "USD"
    """for amounts: USD, EUR, or a template (`{currency}`)"""
    before: PromptRef | None = None
    after: PromptRef | None = None

    def problems(self) -> list[str]:
        found = []
        if self.kind == "amount" and "{" not in self.currency and self.currency not in CURRENCY_WORDS:
            found.append(f"currency must be one of {', '.join(CURRENCY_WORDS)}")
        return found

    def prompts(self) -> list[PromptRef]:
        if self.kind != "amount":
            return super().prompts()
        sets = CURRENCY_WORDS.values() if "{" in self.currency else [CURRENCY_WORDS[self.currency]]
        words = [w for c in sets for w in c]
        return [*super().prompts(), PromptRef.parse([*dict.fromkeys(words), "and"])]

    async def run(self, ctx: NodeContext) -> str:
        value = ctx.render(self.value).strip()
        await ctx.play(self.before)
        try:
            await self._say(ctx, value)
        except (ValueError, InvalidOperation):
            ctx.call.record(ctx.node_id, "error", error="bad-value", data=self.kind)
            return "fallback"
        await ctx.play(self.after)
        return "next"

    async def _say(self, ctx: NodeContext, value: str) -> None:
        if self.kind == "digits":
            if not value.isdigit():
                raise ValueError(value)
            await ctx.say_core("digits", value)
        elif self.kind == "number":
            await ctx.say_core("number", str(int(Decimal(value))))
        elif self.kind == "alpha":
            await ctx.say_core("alpha", "".join(c for c in value if c.isalnum()))
        elif self.kind == "amount":
            amount = Decimal(value).quantize(Decimal("0.01"))
            units, cents = divmod(int(abs(amount) * 100), 100)
            currency = ctx.render(self.currency).strip().upper()
            if currency not in CURRENCY_WORDS:
                raise ValueError(f"no words for currency {currency!r}")
            unit_word, cent_word = CURRENCY_WORDS[currency]
            await ctx.say_core("number", str(units))
            await ctx.play(PromptRef.parse(unit_word))
            if cents:
                await ctx.play(PromptRef.parse("and"))
                await ctx.say_core("number", str(cents))
                await ctx.play(PromptRef.parse(cent_word))
        elif self.kind == "date":
            d = date.fromisoformat(value[:10])
            await ctx.say_core("date", str(calendar.timegm((d.year, d.month, d.day, 12, 0, 0))))
        elif self.kind == "time":
            t = datetime.fromisoformat(value)
            await ctx.say_core("time", str(int(t.timestamp())))

"""`gather`: collect N digits with terminator, timeouts, validation (pattern, Luhn), confirmation.

With `secure: true` the digits go to `call.secure` only: never to the journey, logs, or
channel variables. The journey records how many digits came, never which.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ivr.channel import DTMF_KEYS
from ivr.flows.prompt_ref import PromptRef
from ivr.nodes.base import Node, node_type
from ivr.nodes.menu import INVALID, NO_INPUT

if TYPE_CHECKING:
    from ivr.flows.context import NodeContext

YOU_ENTERED = PromptRef.parse("you-pressed")
CONFIRM = PromptRef.parse("confirm-entry")


def luhn_ok(digits: str) -> bool:
    """The Luhn check digit test (card numbers, many account numbers)."""
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


@node_type("gather")
@dataclass(frozen=True)
class Gather(Node):
    """Stores the digits in call variable `var` (or in secure storage). Edges: next, invalid, timeout."""

    prompt: PromptRef
    var: str
    min_digits: int = 1
    max_digits: int = 20
    terminator: str = "#"
    timeout: float = 5.0
    digit_timeout: float = 3.0
    pattern: str | None = None
    luhn: bool = False
    retries: int = 3
    secure: bool = False
    confirm: bool = False
    invalid_prompt: PromptRef | None = INVALID
    timeout_prompt: PromptRef | None = NO_INPUT

    edges = ("next",)
    optional_edges = ("invalid", "timeout")

    def problems(self) -> list[str]:
        found = []
        if not self.var.isidentifier():
            found.append(f"var {self.var!r} must be a name (letters, digits, _)")
        if not 1 <= self.min_digits <= self.max_digits <= 64:
            found.append("need 1 <= min_digits <= max_digits <= 64")
        if self.terminator not in ("", "#", "*"):
            found.append("terminator must be '#', '*' or empty")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                found.append(f"pattern: {exc}")
        if self.secure and self.confirm:
            found.append("secure input cannot be read back (confirm)")
        return found

    async def collect(self, ctx: NodeContext) -> str | None:
        """One try: digits, or None on timeout before any digit."""
        digits = ""
        key = await ctx.play(self.prompt, DTMF_KEYS)
        while True:
            if not key:
                key = await ctx.channel.wait_digit(self.digit_timeout if digits else self.timeout)
            if not key:
                return digits or None
            if key == self.terminator:
                return digits
            digits += key
            if len(digits) >= self.max_digits:
                return digits
            key = ""

    def valid(self, digits: str) -> bool:
        if not digits.isdigit() or not self.min_digits <= len(digits) <= self.max_digits:
            return False
        if self.pattern is not None and not re.fullmatch(self.pattern, digits):
            return False
        return not self.luhn or luhn_ok(digits)

    async def run(self, ctx: NodeContext) -> str:
        last = "timeout"
        for attempt in range(1, self.retries + 1):
            digits = await self.collect(ctx)
            if digits is None:
                last = "timeout"
                ctx.call.record(ctx.node_id, "input", via="timeout", attempt=attempt)
                if attempt < self.retries:
                    await ctx.play(self.timeout_prompt)
                continue
            ok = self.valid(digits)
            detail = {"length": len(digits)} if self.secure else {"value": digits}
            ctx.call.record(ctx.node_id, "input", via="dtmf", valid=ok, attempt=attempt, **detail)
            if ok and (not self.confirm or await self._confirmed(ctx, digits)):
                if self.secure:
                    ctx.call.secure[self.var] = digits
                else:
                    ctx.call.vars[self.var] = digits
                return "next"
            last = "invalid"
            if attempt < self.retries and not ok:
                await ctx.play(self.invalid_prompt)
        return last

    async def _confirmed(self, ctx: NodeContext, digits: str) -> bool:
        await ctx.play(YOU_ENTERED)
        key = await ctx.say_core("digits", digits, DTMF_KEYS)
        key = key or await ctx.play(CONFIRM, DTMF_KEYS) or await ctx.channel.wait_digit(self.timeout)
        ctx.call.record(ctx.node_id, "confirm", accepted=key == "1")
        return key == "1"

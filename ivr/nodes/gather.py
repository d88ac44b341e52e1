"""`gather`: collect N digits with terminator, timeouts, validation (pattern, Luhn), confirmation.

With `secure: true` the digits go to `call.secure` only: never to the journey, logs, or
channel variables. The journey records how many digits came, never which.

Speech (`speech: true`, not with `secure`): the caller may also say the digits one by one; spoken digits
are read back ("I heard 4 5 1 2, is that right?") unless `confirm: never`. `confirm`: false/auto (read
back spoken digits only), true/always (keyed digits too), never. Not understood: once more
(`speech-say-digits`), then keys only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ivr.channel import DTMF_KEYS
from ivr.flows.node import Node, node_type
from ivr.flows.prompt_ref import PromptRef
from ivr.identity.secret import Secret
from ivr.nodes.listen import confirm, ear_for, keypad_hint, listen, service_of
from ivr.nodes.menu import INVALID, NO_INPUT
from ivr.speech.grammar import Grammar
from ivr.speech.intents import digits_of
from ivr.speech.recognizer import Recognition

if TYPE_CHECKING:
    from ivr.flows.context import NodeContext

YOU_ENTERED = PromptRef.parse("you-pressed")
CONFIRM = PromptRef.parse("confirm-entry")
SAY_DIGITS = PromptRef.parse("speech-say-digits")


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
    """what is played before the digits"""
    var: str
    """the call variable the digits go to ({var} in templates)"""
    min_digits: int = 1
    """fewest digits accepted (1..64)"""
    max_digits: int = 20
    """most digits; input ends there (1..64)"""
    terminator: str = "#"
    """the key that ends input: '#', '*' or '' (none)"""
    timeout: float = 5.0
    """s to wait for the first digit"""
    digit_timeout: float = 3.0
    """s to wait between digits"""
    pattern: str | None = None
    """a regular expression the digits must match"""
    luhn: bool = False
    """the digits must pass the Luhn check (card numbers)"""
    retries: int = 3
    """tries before the invalid/timeout edge"""
    secure: bool = False
    """PINs and codes: never logged, journaled or read back; keypad only"""
    confirm: bool | str = False
    """read the digits back and ask 1 = right: true, false, auto, always, never"""
    invalid_prompt: PromptRef | None = INVALID
    timeout_prompt: PromptRef | None = NO_INPUT
    speech: bool = False
    """the caller may also say the digits"""
    min_confidence: float | None = None
    """speech: below this the result is not taken (0..1)"""

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
            except (re.error, OverflowError, RecursionError) as exc:  # a{4294967296}, deep nesting
                found.append(f"pattern: {exc}")
        if self.secure and self.confirm not in (False, "never"):
            found.append("secure input cannot be read back (confirm)")
        if self.confirm not in (True, False, "auto", "always", "never"):
            found.append("confirm must be true, false, auto, always or never")
        if self.secure and self.speech:
            found.append("secure input is keypad only (speech: false)")
        if self.min_confidence is not None and not 0 <= self.min_confidence <= 1:
            found.append("min_confidence must be between 0 and 1")
        return found

    def grammar(self) -> Grammar:
        return Grammar.spoken_digits(self.min_digits, min(self.max_digits, 40))

    async def collect(self, ctx: NodeContext, key: str = "") -> str | None:
        """One try: digits, or None on timeout before any digit. `key`: the first key, already pressed."""
        if not self.secure:
            return await self._collect(ctx, key)
        ctx.call.secure_input = True  # what shows keys (the simulator) masks them meanwhile
        try:
            return await self._collect(ctx, key)
        finally:
            ctx.call.secure_input = False

    async def _collect(self, ctx: NodeContext, key: str) -> str | None:
        digits = ""
        key = key or await ctx.play(self.prompt, DTMF_KEYS)
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
        ear = await ear_for(ctx) if self.speech and not self.secure else None
        prompt, misses, attempt = self.prompt, 0, 0
        while attempt < self.retries:
            spoken = False
            if ear is not None:
                heard = await listen(ctx, prompt, ear=ear, grammar=self.grammar(), wait=self.timeout)
                prompt = self.prompt
                if heard.via == "speech":
                    digits = self._spoken_digits(ctx, heard.recognition)
                    if digits is None or not self.valid(digits):
                        misses += 1
                        if misses == 1:
                            prompt = SAY_DIGITS
                        else:
                            ear = None
                            await keypad_hint(ctx)
                        continue
                    spoken = True
                elif heard.key:
                    digits = await self.collect(ctx, heard.key)
                else:
                    digits = None
            else:
                digits = await self.collect(ctx)
            attempt += 1
            if spoken:
                assert digits is not None
                if self.confirm == "never" or await confirm(ctx, ear, digits=digits, wait=self.timeout):
                    ctx.call.vars[self.var] = digits
                    return "next"
                last = "invalid"
                continue
            if digits is None:
                last = "timeout"
                ctx.call.record(ctx.node_id, "input", via="timeout", attempt=attempt)
                if attempt < self.retries:
                    await ctx.play(self.timeout_prompt)
                continue
            ok = self.valid(digits)
            detail = {"length": len(digits)} if self.secure else {"value": digits}
            ctx.call.record(ctx.node_id, "input", via="dtmf", valid=ok, attempt=attempt, **detail)
            if ok and (self.confirm not in (True, "always") or await self._confirmed(ctx, digits)):
                if self.secure:
                    ctx.call.secure[self.var] = Secret(digits)
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

    def _spoken_digits(self, ctx: NodeContext, recognition: Recognition | None) -> str | None:
        """The digits the caller said (None: not understood or not sure enough); recorded in the journey."""
        assert recognition is not None
        service = service_of(ctx)
        threshold = self.min_confidence if self.min_confidence is not None else (
            service.settings.min_confidence if service is not None else 0.5)
        digits = digits_of(recognition, self.grammar(), threshold=threshold)
        ctx.call.record(ctx.node_id, "input", via="speech", text=recognition.text,
                        confidence=round(recognition.confidence, 3), value=digits, understood=digits is not None)
        return digits

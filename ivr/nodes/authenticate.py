"""`authenticate`: prove who is calling with PIN, one-time code by SMS, or card + date of birth.

Methods run in the order the flow lists them and all must pass. Every secret is keyed as secure
input: wrapped in a `Secret` at once, never in a log line, journey event, metric or channel variable.
Failures count per account across calls (Redis); a locked account takes the `locked` edge and the
reason goes to the agent as `auth_reason`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field

from ivr.errors import AuthLocked, StoreUnavailable
from ivr.flows.node import Node, node_type
from ivr.flows.prompt_ref import PromptRef
from ivr.identity.auth import Auth, OtpRateLimited, OtpResult
from ivr.identity.secret import Secret
from ivr.nodes.backend_call import apply_customer, backends, with_filler
from ivr.nodes.gather import Gather

if TYPE_CHECKING:
    from ivr.flows.context import NodeContext

Method = Literal["pin", "otp", "card"]


def _p(name: str) -> PromptRef:
    return PromptRef.parse(name)


@node_type("authenticate")
@dataclass(frozen=True)
class Authenticate(Node):
    """Edges: ok, failed, locked (required: the flow says where each caller goes); error and timeout
    (optional) when Redis or a backend fails — unwired, the fallback apologises and finds an agent."""

    methods: Annotated[tuple[Method, ...], Field(min_length=1)] = ("pin",)
    """checks that must all pass, in order"""
    tries: Annotated[int, Field(ge=1, le=5)] = 3
    """tries per check in this call"""
    account_prompt: PromptRef = _p("enter-account")
    pin_prompt: PromptRef = _p("enter-pin")
    otp_sent_prompt: PromptRef = _p("otp-sent")
    otp_prompt: PromptRef = _p("enter-otp")
    card_prompt: PromptRef = _p("enter-card")
    dob_prompt: PromptRef = _p("enter-dob")
    failed_prompt: PromptRef = _p("auth-failed")
    locked_prompt: PromptRef = _p("auth-locked")

    edges = ("ok", "failed", "locked")
    optional_edges = ("error", "timeout")
    error_edge = "error"  # `failed` means the caller failed; a system failure is something else

    def _ask(self, prompt: PromptRef, lo: int, hi: int) -> Gather:
        return Gather(prompt=prompt, var="secret", min_digits=lo, max_digits=hi, secure=True, retries=1)

    async def _secret(self, ctx: NodeContext, prompt: PromptRef, lo: int, hi: int) -> Secret | None:
        digits = await self._ask(prompt, lo, hi).collect(ctx)
        ctx.call.record(ctx.node_id, "input", via="dtmf" if digits else "timeout", length=len(digits or ""))
        return Secret(digits) if digits else None

    async def run(self, ctx: NodeContext) -> str:
        auth = ctx.services.auth
        if auth is None:
            raise StoreUnavailable("authentication needs Redis and the accounts backend")
        call = ctx.call
        try:
            if not call.customer_id and not await self._account(ctx, auth):
                return self._done(ctx, "failed", f"{self.methods[0]}-failed")  # as a wrong secret: no enumeration
            if await auth.is_locked(call.customer_id, call.caller_id):
                return await self._locked(ctx)
            for method in self.methods:
                ok = await getattr(self, f"_{method}")(ctx, auth)
                if not ok:
                    await ctx.play(self.failed_prompt)
                    return self._done(ctx, "failed", f"{method}-failed")
        except AuthLocked:
            return await self._locked(ctx)
        call.auth_level = "verified"
        return self._done(ctx, "ok", "verified")

    async def _account(self, ctx: NodeContext, auth: Auth) -> bool:
        """An unknown caller keys the account (customer) number; True once a customer is found.

        A number nobody has is not told apart from a wrong secret: the caller is asked for the first
        method's secret as often as for a real account, hears the same failures, and each try counts
        against that number, the caller id and the service like a wrong PIN (so it locks alike)."""
        number = ""
        for attempt_no in range(1, self.tries + 1):
            gather = Gather(prompt=self.account_prompt, var="account", min_digits=3, max_digits=12, retries=1)
            number = await gather.collect(ctx) or ""
            if number.isdigit():
                break
            await self._try_again(ctx, attempt_no)
        else:
            await ctx.play(self.failed_prompt)
            return False
        caller = ctx.call.caller_id
        if await auth.is_locked(number, caller):
            raise AuthLocked("account locked")
        customer = await with_filler(ctx, backends(ctx).directory.by_id(number))
        if customer is not None:
            await apply_customer(ctx, customer, use_language=False)
            return True
        method = self.methods[0]
        if method == "otp":
            await ctx.play(self.otp_sent_prompt)
        for attempt_no in range(1, self.tries + 1):
            if await self._decoy(ctx, method):
                attempt = await auth.reject(number, caller)
                ctx.call.record(ctx.node_id, "auth", method=method, ok=False)
                if attempt.locked:
                    raise AuthLocked("too many failures")
            await self._try_again(ctx, attempt_no)
        await ctx.play(self.failed_prompt)
        return False

    async def _decoy(self, ctx: NodeContext, method: str) -> bool:
        """Ask for `method`'s secret as for a real account, and drop it; False when nothing was keyed."""
        if method == "card":
            last4 = await self._secret(ctx, self.card_prompt, 4, 4)
            dob = await self._ask(self.dob_prompt, 8, 8).collect(ctx)
            return last4 is not None and bool(dob)
        prompt, lo, hi = (self.otp_prompt, 6, 6) if method == "otp" else (self.pin_prompt, 4, 8)
        return await self._secret(ctx, prompt, lo, hi) is not None

    async def _pin(self, ctx: NodeContext, auth: Auth) -> bool:
        for attempt_no in range(1, self.tries + 1):
            pin = await self._secret(ctx, self.pin_prompt, 4, 8)
            if pin is not None:
                attempt = await with_filler(ctx, auth.verify_pin(ctx.call.customer_id, pin, ctx.call.caller_id))
                ctx.call.record(ctx.node_id, "auth", method="pin", ok=attempt.ok)
                if attempt.ok:
                    return True
                if attempt.locked:
                    raise AuthLocked("too many PIN failures")
            await self._try_again(ctx, attempt_no)
        return False

    async def _try_again(self, ctx: NodeContext, attempt_no: int) -> None:
        """The failed prompt between tries; after the last try `run` plays it (once, not twice)."""
        if attempt_no < self.tries:
            await ctx.play(self.failed_prompt)

    async def _otp(self, ctx: NodeContext, auth: Auth) -> bool:
        customer = ctx.call.customer
        phone = getattr(customer, "phone", "")
        if not phone:
            ctx.call.record(ctx.node_id, "auth", method="otp", ok=False, reason="no-phone-on-file")
            return False
        try:
            await with_filler(ctx, auth.otp.send(ctx.call.customer_id, phone, ctx.call.language))
        except OtpRateLimited:
            ctx.call.record(ctx.node_id, "auth", method="otp", ok=False, reason="rate-limited")
            return False
        await ctx.play(self.otp_sent_prompt)
        for attempt_no in range(1, self.tries + 1):
            code = await self._secret(ctx, self.otp_prompt, 6, 6)
            if code is None:
                continue
            result = await auth.otp.verify(ctx.call.customer_id, code)
            ctx.call.record(ctx.node_id, "auth", method="otp", ok=result is OtpResult.OK, result=result.value)
            if result is OtpResult.OK:
                return True
            if result is not OtpResult.WRONG:
                return False  # expired, used, or too many attempts: a new code needs a new call
            await self._try_again(ctx, attempt_no)
        return False

    async def _card(self, ctx: NodeContext, auth: Auth) -> bool:
        for attempt_no in range(1, self.tries + 1):
            last4 = await self._secret(ctx, self.card_prompt, 4, 4)
            dob_digits = await self._ask(self.dob_prompt, 8, 8).collect(ctx)
            dob = _dob(dob_digits or "", ctx.call.language)
            if last4 is not None and dob is not None:
                attempt = await with_filler(ctx, auth.verify_card(ctx.call.customer_id, last4, dob, ctx.call.caller_id))
                ctx.call.record(ctx.node_id, "auth", method="card", ok=attempt.ok)
                if attempt.ok:
                    return True
                if attempt.locked:
                    raise AuthLocked("too many card failures")
            await self._try_again(ctx, attempt_no)
        return False

    async def _locked(self, ctx: NodeContext) -> str:
        await ctx.play(self.locked_prompt)
        return self._done(ctx, "locked", "locked")

    def _done(self, ctx: NodeContext, edge: str, reason: str) -> str:
        ctx.call.vars["auth_reason"] = reason
        ctx.call.record(ctx.node_id, "auth-result", result=edge, reason=reason)
        return edge


def _dob(digits: str, language: str) -> date | None:
    """Eight digits as the caller was asked: MMDDYYYY in English, DDMMYYYY elsewhere."""
    if len(digits) != 8 or not digits.isdigit():
        return None
    a, b, year = int(digits[:2]), int(digits[2:4]), int(digits[4:])
    month, day = (a, b) if language == "en" else (b, a)
    try:
        return date(year, month, day)
    except ValueError:
        return None

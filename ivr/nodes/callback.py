"""`callback`: take a callback request instead of waiting; `callback_call`: the call placed back to the customer.

`callback` (reached from a queue node's `callback` edge, or offered with `offer`):
number = the caller id ("1: this number, 2: another number") or keyed in; normalised to E.164 (national
digits read in `settings.callbacks_default_region`, else `phone_region`) and checked with `ivr.queueing.phone`
against `settings.callbacks_regions` (premium-rate, foreign, invalid → `refused`, with a prompt).
Kind `keep_place`: due when the caller would have reached an agent (now + EWT at their position);
kind `slot`: "1 within the hour, 2 tomorrow morning (09:00-12:00 in `timezone`)".
Stored with `CallbackStore.add` (one live callback per number → `exists`; the caps per caller id and
per day → `refused`, with `unavailable_prompt`). Edges: `next` (stored), `refused`, `exists`, `failed`
(Redis down), `declined` (the offer, the number or the slot not chosen).

`callback_call` runs first in the `callback` flow (Asterisk's [ivr-callbacks] passes the id as the AGI
argument, `agi_arg_1`, or the channel variable IVR_CALLBACK_ID): it loads the callback (queue, language,
tier into the call) and records what happened on the callback's hash: `answer` (accepted/declined,
read by `ivr.queueing.originate` to settle the attempt) and `flow_outcome`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

from ivr.diagnostics import brief
from ivr.errors import StoreUnavailable
from ivr.flows.node import Node, node_type
from ivr.flows.prompt_ref import PromptRef
from ivr.nodes.backend_call import e164
from ivr.queueing.callbacks import Callback, CallbackCaps, CapReached, keep_place, slot
from ivr.queueing.phone import callback_policy, check_callback_number
from ivr.store import callback as callback_key
from ivr.validation import AtLeastOne, Positive

if TYPE_CHECKING:
    from ivr.flows.context import NodeContext

DIGITS = "0123456789"
CALLBACK_ID = re.compile(r"^[0-9a-f]{32}$")
MORNING = (time(9), time(12))


def _p(name: str) -> PromptRef:
    return PromptRef.parse(name)


@node_type("callback")
@dataclass(frozen=True)
class CallbackRequest(Node):
    queue: str = ""  # default: the call variable `queue` (the queue node sets it), else settings.default_queue
    kind: Literal["keep_place", "slot"] = "keep_place"
    """keep_place: called back when an agent would have answered; slot: in a window the caller picks"""
    offer: PromptRef | None = None  # e.g. callback-offer: 1 = yes, anything else → declined
    number_menu: PromptRef = _p("callback-number-menu")
    enter_number: PromptRef = _p("callback-enter-number")
    slot_menu: PromptRef = _p("callback-slot-menu")
    confirmed: PromptRef = _p("callback-confirmed")
    refused_prompt: PromptRef = _p("callback-refused")
    exists_prompt: PromptRef = _p("callback-exists")
    unavailable_prompt: PromptRef = _p("callback-unavailable")  # over a cap (per caller id or per day)
    timeout: Positive = 5.0
    """s for each choice / the first digit of a number"""
    retries: AtLeastOne = 2
    max_attempts: AtLeastOne = 3
    """calls the dialer places before it gives up"""
    timezone: str = "UTC"
    """the caller's zone, for "tomorrow morning" """

    edges = ("next",)
    optional_edges = ("refused", "exists", "failed", "declined")

    def problems(self) -> list[str]:
        found = []
        try:
            ZoneInfo(self.timezone)
        except (KeyError, ValueError, OSError):  # OSError: a directory of zones (America), too long
            found.append(f"unknown timezone {brief(self.timezone)}")
        return found

    def prompts(self) -> list[PromptRef]:
        found = super().prompts()
        return found if self.kind == "slot" else [p for p in found if p is not self.slot_menu]

    async def _choose(self, ctx: NodeContext, prompt: PromptRef, keys: str) -> str:
        for _ in range(self.retries):
            key = await ctx.play(prompt, keys) or await ctx.channel.wait_digit(self.timeout)
            if key in keys and key:
                return key
            await ctx.play(_p("invalid") if key else _p("no-input"))
        return ""

    async def _number(self, ctx: NodeContext) -> tuple[str, str]:
        """(raw number, how) or ("", "") when none was chosen."""
        caller = ctx.call.caller_id.strip()
        if caller:
            choice = await self._choose(ctx, self.number_menu, "12")
            if choice == "1":
                return caller, "caller_id"
            if choice != "2":
                return "", ""
        for _ in range(self.retries):
            digits = await ctx.play(self.enter_number, DIGITS + "#")
            while len(digits) < 20:
                key = await ctx.channel.wait_digit(self.timeout if not digits else 4.0)
                if not key or key == "#":
                    break
                digits += key
            digits = digits.rstrip("#")
            if digits:
                ctx.call.record(ctx.node_id, "input", via="dtmf", digits=len(digits))
                return ("+" + digits[2:] if digits.startswith("00") else digits), "keyed"
            await ctx.play(_p("no-input"))
        return "", ""

    async def run(self, ctx: NodeContext) -> str:
        call = ctx.call
        if self.offer is not None and await self._choose(ctx, self.offer, "12") != "1":
            call.record(ctx.node_id, "callback", result="declined")
            return "declined"
        settings, store = ctx.services.settings, ctx.services.callbacks
        if store is None:
            raise StoreUnavailable("callbacks need Redis (redis_url)")
        caps = CallbackCaps.from_settings(settings)
        caller = e164(call.caller_id, settings.phone_region) or call.caller_id  # one count for any spelling
        cap = await store.over_cap(caller, caps, ctx.services.clock().timestamp())
        if cap in ("caller_day", "day"):  # refused before asking for a number; caller_pending waits for the
            return await self._capped(ctx, cap, "")  # number: it may be one already booked (`exists`)
        raw, how = await self._number(ctx)
        if not raw:
            call.record(ctx.node_id, "callback", result="no-number")
            return "declined"
        check = check_callback_number(raw, callback_policy(settings))
        if not check.ok or check.e164 is None:
            call.vars["callback_refused"] = check.reason
            call.record(ctx.node_id, "callback", result="refused", reason=check.reason, source=how)
            await ctx.play(self.refused_prompt)
            call.outcome = f"callback-refused:{check.reason}"
            return "refused"
        queue = self.queue or call.vars.get("queue") or settings.default_queue
        now_dt = ctx.services.clock()
        now = now_dt.timestamp()
        common = dict(max_attempts=self.max_attempts, language=call.language, tier=call.tier,
                      caller_uniqueid=ctx.channel.uniqueid)
        if self.kind == "slot":
            choice = await self._choose(ctx, self.slot_menu, "12")
            if not choice:
                call.record(ctx.node_id, "callback", result="no-slot")
                return "declined"
            start, end = self._window(choice, now_dt)
            cb = slot(check.e164, queue, now=now, start=start, end=end, **common)  # type: ignore[arg-type]
        else:
            position, ewt = self._place(ctx, queue)
            cb = keep_place(check.e164, queue, now=now, ewt=ewt, position=position,
                            **common)  # type: ignore[arg-type]
        try:
            live, created = await store.add(cb, caller=caller, caps=caps)
        except CapReached as exc:  # another request of this caller (or the day's last place) came first
            return await self._capped(ctx, exc.cap, how)
        call.vars["callback_id"] = live.id
        if not created:
            call.record(ctx.node_id, "callback", result="exists", id=live.id)
            await ctx.play(self.exists_prompt)
            call.outcome = "callback-exists"
            return "exists"
        call.record(ctx.node_id, "callback", result="stored", id=cb.id, callback_kind=cb.kind, queue=queue,
                    due_in=round(cb.due_at - now), source=how)
        call.outcome = f"callback:{queue}"
        await ctx.play(self.confirmed)
        return "next"

    async def _capped(self, ctx: NodeContext, cap: str, how: str) -> str:
        call = ctx.call
        call.vars["callback_refused"] = f"cap:{cap}"
        call.record(ctx.node_id, "callback", result="refused", reason=f"cap:{cap}", **({"source": how} if how else {}))
        await ctx.play(self.unavailable_prompt)
        call.outcome = "callback-refused:cap"
        return "refused"

    def _window(self, choice: str, now: datetime) -> tuple[float, float]:
        if choice == "1":
            return now.timestamp(), now.timestamp() + 3600.0
        tz = ZoneInfo(self.timezone)
        day = now.astimezone(tz).date() + timedelta(days=1)
        start, end = (datetime.combine(day, t, tzinfo=tz) for t in MORNING)
        return start.timestamp(), end.timestamp()

    def _place(self, ctx: NodeContext, queue: str) -> tuple[int, float]:
        """(position, EWT s) the caller has (or would have) in the queue."""
        raw = ctx.call.vars.get("queue_position", "")
        board = ctx.services.queues
        position = int(raw) if raw.isdigit() else (board.snapshot(queue).callers + 1 if board else 1)
        ewt = board.estimate(queue, position)[0] if board is not None else None
        if ewt is None:
            given = ctx.call.vars.get("queue_ewt", "")
            ewt = float(given) if given.replace(".", "", 1).isdigit() else 0.0
        return max(1, position), ewt


@node_type("callback_call")
@dataclass(frozen=True)
class CallbackCall(Node):
    """In the flow Asterisk runs when a called-back customer answers. Edges: next; unknown, failed."""

    answer: str = ""  # written to the callback's `answer` (accepted, declined ...)
    result: str = ""  # written to the callback's `flow_outcome` (e.g. served)

    edges = ("next",)
    optional_edges = ("unknown", "failed")

    async def run(self, ctx: NodeContext) -> str:
        call, store = ctx.call, ctx.services.callbacks
        cb_id = call.vars.get("callback_id") or await _callback_id(ctx)
        if not CALLBACK_ID.match(cb_id):
            call.record(ctx.node_id, "callback", result="unknown")
            return "unknown"
        if store is None or ctx.services.store is None:
            raise StoreUnavailable("callbacks need Redis (redis_url)")
        cb: Callback | None = await store.get(cb_id)
        if cb is None:
            call.record(ctx.node_id, "callback", result="unknown", id=cb_id)
            return "unknown"
        if "callback_id" not in call.vars:
            call.vars.update(callback_id=cb.id, queue=cb.queue, queue_position="1")
            call.tier = cb.tier or call.tier
            if cb.language and cb.language in ctx.services.settings.languages and cb.language != call.language:
                call.language = cb.language
                await ctx.channel.set_language(cb.language)
        fields: dict[Any, Any] = {"answer_channel": ctx.channel.uniqueid}
        if self.answer:
            fields["answer"] = self.answer
        if self.result:
            fields["flow_outcome"] = self.result
        if self.answer or self.result:
            key = callback_key(cb.id)
            await ctx.services.store.run(lambda r: r.hset(key, mapping=fields))
            call.record(ctx.node_id, "callback", id=cb.id, answer=self.answer, result=self.result)
            call.outcome = f"callback-{self.result or self.answer}"
        return "next"


async def _callback_id(ctx: NodeContext) -> str:
    env = ctx.channel.env
    raw = env.get("arg_1") or env.get("agi_arg_1") or await ctx.channel.get_var("IVR_CALLBACK_ID")
    return (raw or "").strip()

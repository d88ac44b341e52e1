"""The callback Originator over AMI: `Originate` (Async) into the `ivr-callbacks` context, one attempt at a time.

An attempt: Channel = `settings.callbacks_channel` with the E.164 number, Context
`settings.callbacks_context`, Exten `s`, Priority 1, `Variable: IVR_CALLBACK_ID=<id>`, ActionID and
ChannelId/OtherChannelId from `ivr.queueing.dialer` (stable per attempt). Asterisk answers with "successfully
queued", then an `OriginateResponse` event for that ActionID: Success once the customer picked up,
else Failure with a Reason (3 no answer, 5 busy, 8 congestion, 1 rejected, 0 failed).

An answered call runs the `callback` flow, whose `callback_call` nodes write `answer` (accepted or
declined) and `answer_channel` (the channel = this attempt's ChannelId) on the callback's hash; the
attempt is settled by that answer (no answer within `answer_wait`: retried later).

Idempotency. A resumed attempt (the previous dialer died holding the lease; `callback.resumed`) first
looks for that attempt's channel (CoreShowChannels, Uniqueid = ChannelId): alive → it waits for the
customer's answer instead of dialing again; an answer already recorded for the attempt settles it
without dialing. Only an attempt that left no trace is dialed again (same ActionID and ChannelId).

Agent first (`settings.callbacks_mode = "agent_first"`): the Originate is a Local channel into
`settings.callbacks_agent_context` (asterisk-conf [ivr-callbacks-agent-first]): its second half waits in the
callback's queue ahead of new callers and the agent who answers hears a whisper (the customer's number);
then its first half dials the customer and bridges them. The dial result is written by the dialplan to
AstDB (`ivr-callbacks/<id>` = `<attempt>:<DIALSTATUS>`, ANSWER as soon as the customer picks up) and read
here with DBGet -- live, and after a restart for a resumed attempt (no second dial while its channel lives
or once a result is recorded). No agent within `callbacks_agent_wait`: outcome `no_agent`, retried.

`AmiClient.action` sends it with `as_list=False`, so panoramisk completes the action on "successfully
queued" and dispatches the later `OriginateResponse` as an event, to the handler registered here (the
future of the attempt, keyed by ActionID; the ring time plus 15 s at most).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from ivr.config import Settings
from ivr.errors import AmiError
from ivr.queueing.callbacks import Callback
from ivr.queueing.dialer import OriginateResult, channel_ids
from ivr.store import Store
from ivr.store import callback as callback_key

log = logging.getLogger("ivr.originate")

CALLER_ID = "Acme <100>"  # what the customer's phone shows
AGENT_FIRST_DB = "ivr-callbacks"  # AstDB family the agent-first dialplan writes dial results to
HANGUP_GRACE = 2.0  # s a failed attempt with Reason 0 waits for its channel's Hangup event (the cause)
DIAL_OUTCOMES = {"BUSY": "busy", "NOANSWER": "no_answer", "CONGESTION": "congestion", "CHANUNAVAIL": "unavailable",
                 "CANCEL": "agent_hung_up"}
REASONS = {"0": ("failed", True), "1": ("rejected", True), "3": ("no_answer", True), "5": ("busy", True),
           "8": ("congestion", True)}
# Asterisk 22 reports Reason 0 for a busy customer (measured): the hangup cause of the attempt's channel
# (Hangup event, Uniqueid = ChannelId, seen just before the OriginateResponse) says more. Unallocated or
# malformed numbers are not retried.
CAUSES = {"17": ("busy", True), "18": ("no_answer", True), "19": ("no_answer", True), "20": ("unavailable", True),
          "21": ("rejected", True), "34": ("congestion", True), "38": ("congestion", True),
          "1": ("invalid_number", False), "28": ("invalid_number", False)}


class AmiOriginator:
    """Implements `ivr.queueing.dialer.Originator` with an `ivr.ami.AmiClient` (or anything with action/on)."""

    def __init__(self, ami: Any, settings: Settings, store: Store | None, *, ring_seconds: float | None = None,
                 answer_wait: float | None = None, poll: float = 0.5, mode: str | None = None) -> None:
        self.ami, self.settings, self.store, self.poll = ami, settings, store, poll
        self.ring_seconds = settings.callbacks_ring_seconds if ring_seconds is None else ring_seconds
        self.answer_wait = settings.callbacks_answer_wait if answer_wait is None else answer_wait
        self.mode = mode or settings.callbacks_mode
        self._waiting: dict[str, asyncio.Future[dict[str, str]]] = {}
        # ChannelId of an attempt being placed → its hangup cause, once the channel's Hangup event came
        self._causes: dict[str, asyncio.Future[str]] = {}
        ami.on("OriginateResponse", self._on_response)
        ami.on("Hangup", self._on_hangup)

    def _on_hangup(self, event: dict[str, str]) -> None:
        cause = self._causes.get(event.get("Uniqueid", ""))  # ActionID = ChannelId (dialer.channel_ids)
        if cause is not None and not cause.done():
            cause.set_result(event.get("Cause", ""))

    async def _cause(self, action_id: str, event: dict[str, str]) -> str:
        """The hangup cause of a failed attempt. Asterisk 22 gives Reason 0 for a busy customer too, and the
        channel's Hangup event (the cause: 17 busy, 19 no answer) may come just before or just after the
        OriginateResponse: with Reason 0 and no cause yet, wait a moment for it."""
        fut = self._causes[action_id]
        if not fut.done() and event.get("Reason", "0") == "0":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(fut), HANGUP_GRACE)
        return fut.result() if fut.done() else ""

    def _on_response(self, event: dict[str, str]) -> None:
        fut = self._waiting.get(event.get("ActionID", ""))
        if fut is not None and not fut.done():
            fut.set_result(event)

    async def originate(self, callback: Callback, action_id: str) -> OriginateResult:
        if self.mode == "agent_first":
            return await self._agent_first(callback, action_id)
        chan_id, other_id = channel_ids(callback.id, callback.attempt)
        if callback.resumed:
            answer = await self._answer(callback.id, chan_id)
            if answer:
                return self._settle(answer, "recorded before a restart")
            if await self._channel_alive(chan_id):
                log.info("callback %s: attempt %d is still live after a restart; not dialing again",
                         callback.id, callback.attempt)
                return await self._await_answer(callback.id, chan_id)
        number = callback.number
        fields = {
            "Channel": self.settings.callbacks_channel.format(number=number, number_digits=number.lstrip("+")),
            "Context": self.settings.callbacks_context, "Exten": "s", "Priority": "1", "Async": "true",
            "Timeout": str(int(self.ring_seconds * 1000)), "ActionID": action_id,
            "ChannelId": chan_id, "OtherChannelId": other_id, "CallerID": CALLER_ID,
            "Variable": f"IVR_CALLBACK_ID={callback.id}",
        }
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[dict[str, str]] = loop.create_future()
        self._waiting[action_id], self._causes[action_id] = fut, loop.create_future()
        try:
            event = await self._send(fields, fut)
            cause = await self._cause(action_id, event) if event.get("Response") != "Success" else ""
        finally:
            self._waiting.pop(action_id, None)
            self._causes.pop(action_id, None)
        if event.get("Response") != "Success":
            outcome, retry = CAUSES.get(cause) or REASONS.get(event.get("Reason", "0"), ("failed", True))
            return OriginateResult(False, outcome, retry=retry,
                                   detail=f"reason {event.get('Reason', '?')}, cause {cause or '?'}")
        return await self._await_answer(callback.id, chan_id)

    async def _send(self, fields: dict[str, str], fut: asyncio.Future[dict[str, str]],
                    ring: float | None = None) -> dict[str, str]:
        """Send Originate ("successfully queued" comes back at once), then await its OriginateResponse event."""
        await self.ami.action("Originate", **fields)  # AmiError when refused or AMI is down
        limit = (self.ring_seconds if ring is None else ring) + 15.0
        try:
            async with asyncio.timeout(limit):
                return await fut
        except TimeoutError as exc:
            raise AmiError(f"Originate: no OriginateResponse in {limit:.0f}s") from exc

    async def _await_answer(self, cb_id: str, chan_id: str) -> OriginateResult:
        deadline = time.monotonic() + self.answer_wait
        while time.monotonic() < deadline:
            if answer := await self._answer(cb_id, chan_id):
                return self._settle(answer, "")
            await asyncio.sleep(self.poll)
        return OriginateResult(False, "no_choice", detail="answered, but no choice made")

    @staticmethod
    def _settle(answer: str, detail: str) -> OriginateResult:
        if answer == "accepted":
            return OriginateResult(True, "accepted", detail=detail)
        return OriginateResult(False, answer or "declined", retry=False, detail=detail)

    async def _answer(self, cb_id: str, chan_id: str) -> str:
        if self.store is None:
            return "accepted"  # nothing to read: an answered call counts
        key = callback_key(cb_id)
        raw: Any = await self.store.run(lambda r: r.hmget(key, ["answer", "answer_channel"]))
        answer, channel = (_text(v) for v in raw)
        return answer if answer and channel == chan_id else ""

    # --- agent first -------------------------------------------------------------------------------
    async def _agent_first(self, cb: Callback, action_id: str) -> OriginateResult:
        chan_id, other_id = channel_ids(cb.id, cb.attempt)
        if cb.resumed:
            if status := await self._dial_status(cb):
                return _dial_settle(status, "recorded before a restart")
            if await self._channel_alive(chan_id):
                log.info("callback %s: agent-first attempt %d is still live after a restart; not dialing again",
                         cb.id, cb.attempt)
                return await self._await_dial(cb, chan_id)
        number, s = cb.number, self.settings
        variables = {"IVR_CALLBACK_ID": cb.id, "IVR_CALLBACK_ATTEMPT": str(cb.attempt), "IVR_CALLBACK_QUEUE": cb.queue,
                     "IVR_CALLBACK_DIAL": s.callbacks_channel.format(number=number, number_digits=number.lstrip("+")),
                     "IVR_CALLBACK_RING": str(int(self.ring_seconds)),
                     "IVR_CALLBACK_WAIT": str(int(s.callbacks_agent_wait)),
                     "IVR_CALLBACK_FROM": CALLER_ID, "__IVR_CALLBACK_DIGITS": number.lstrip("+")}
        if any(c in v for v in variables.values() for c in ",\n\r"):  # Originate splits Variable at commas
            return OriginateResult(False, "failed", retry=False, detail="a value unfit for the dialplan")
        ctx = s.callbacks_agent_context
        fields = {"Channel": f"Local/s@{ctx}/n", "Context": ctx, "Exten": "dial", "Priority": "1", "Async": "true",
                  "Timeout": str(int(s.callbacks_agent_wait * 1000)), "ActionID": action_id, "ChannelId": chan_id,
                  "OtherChannelId": other_id, "CallerID": f"Callback <{number}>",
                  "Variable": ",".join(f"{k}={v}" for k, v in variables.items())}
        fut: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()
        self._waiting[action_id] = fut
        try:
            event = await self._send(fields, fut, ring=s.callbacks_agent_wait)
        finally:
            self._waiting.pop(action_id, None)
            self._causes.pop(action_id, None)
        if event.get("Response") != "Success":  # no agent answered in time (or the queue is gone)
            return OriginateResult(False, "no_agent", detail=f"reason {event.get('Reason', '?')}")
        return await self._await_dial(cb, chan_id)

    async def _await_dial(self, cb: Callback, chan_id: str) -> OriginateResult:
        """Until the dialplan records this attempt's dial result (or its channel is gone)."""
        deadline = time.monotonic() + self.settings.callbacks_agent_wait + self.ring_seconds + 30.0
        while time.monotonic() < deadline:
            if status := await self._dial_status(cb):
                return _dial_settle(status, "")
            if not await self._channel_alive(chan_id):
                status = await self._dial_status(cb)  # the hangup handler writes it just before the channel goes
                return _dial_settle(status, "") if status else OriginateResult(False, "failed", detail="no result")
            await asyncio.sleep(self.poll)
        return OriginateResult(False, "failed", detail="no dial result in time")

    async def _dial_status(self, cb: Callback) -> str:
        """This attempt's DIALSTATUS from AstDB, or "" (none yet, or an older attempt's)."""
        try:
            await self.ami.action("DBGet", Family=AGENT_FIRST_DB, Key=cb.id)
        except AmiError as exc:
            if "not found" in str(exc).lower():
                return ""
            raise
        msgs = await self.ami.action("DBGet", as_list=True, Family=AGENT_FIRST_DB, Key=cb.id)
        value = next((m.get("Val", "") for m in msgs if m.get("Event") == "DBGetResponse"), "")
        attempt, _, status = value.partition(":")
        return status if attempt == str(cb.attempt) else ""

    async def _channel_alive(self, chan_id: str) -> bool:
        msgs = await self.ami.action("CoreShowChannels", as_list=True)
        return any(m.get("Uniqueid") == chan_id or m.get("Linkedid") == chan_id
                   for m in msgs if m.get("Event") == "CoreShowChannel")


def _dial_settle(status: str, detail: str) -> OriginateResult:
    if status == "ANSWER":
        return OriginateResult(True, "accepted", detail=detail)
    return OriginateResult(False, DIAL_OUTCOMES.get(status, "failed"), detail=f"{status} {detail}".strip())


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")

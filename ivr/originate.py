"""The callback Originator over AMI: `Originate` (Async) into the `ivr-callbacks` context, one attempt at a time.

An attempt: Channel = `settings.callbacks_channel` with the E.164 number, Context
`settings.callbacks_context`, Exten `s`, Priority 1, `Variable: IVR_CALLBACK_ID=<id>`, ActionID and
ChannelId/OtherChannelId from `ivr.dialer` (stable per attempt). Asterisk answers with "successfully
queued", then an `OriginateResponse` event for that ActionID: Success once the customer picked up,
else Failure with a Reason (3 no answer, 5 busy, 8 congestion, 1 rejected, 0 failed).

An answered call runs the `callback` flow, whose `callback_call` nodes write `answer` (accepted or
declined) and `answer_channel` (the channel = this attempt's ChannelId) on the callback's hash; the
attempt is settled by that answer (no answer within `answer_wait`: retried later).

Idempotency. A resumed attempt (the previous dialer died holding the lease; `callback.resumed`) first
looks for that attempt's channel (CoreShowChannels, Uniqueid = ChannelId): alive → it waits for the
customer's answer instead of dialing again; an answer already recorded for the attempt settles it
without dialing. Only an attempt that left no trace is dialed again (same ActionID and ChannelId).

`AmiClient.action` sends it with `as_list=False`, so panoramisk completes the action on "successfully
queued" and dispatches the later `OriginateResponse` as an event, to the handler registered here (the
future of the attempt, keyed by ActionID; the ring time plus 15 s at most).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from ivr.callbacks import Callback
from ivr.config import Settings
from ivr.dialer import OriginateResult, channel_ids
from ivr.errors import AmiError
from ivr.store import Store
from ivr.store import callback as callback_key

log = logging.getLogger("ivr.originate")

REASONS = {"0": ("failed", True), "1": ("rejected", True), "3": ("no_answer", True), "5": ("busy", True),
           "8": ("congestion", True)}


class AmiOriginator:
    """Implements `ivr.dialer.Originator` with an `ivr.ami.AmiClient` (or anything with action/on)."""

    def __init__(self, ami: Any, settings: Settings, store: Store | None, *, ring_seconds: float = 30.0,
                 answer_wait: float = 90.0, poll: float = 0.5) -> None:
        self.ami, self.settings, self.store = ami, settings, store
        self.ring_seconds, self.answer_wait, self.poll = ring_seconds, answer_wait, poll
        self._waiting: dict[str, asyncio.Future[dict[str, str]]] = {}
        ami.on("OriginateResponse", self._on_response)

    def _on_response(self, event: dict[str, str]) -> None:
        fut = self._waiting.get(event.get("ActionID", ""))
        if fut is not None and not fut.done():
            fut.set_result(event)

    async def originate(self, callback: Callback, action_id: str) -> OriginateResult:
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
            "ChannelId": chan_id, "OtherChannelId": other_id, "CallerID": "Acme <100>",
            "Variable": f"IVR_CALLBACK_ID={callback.id}",
        }
        fut: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()
        self._waiting[action_id] = fut
        try:
            event = await self._send(fields, fut)
        finally:
            self._waiting.pop(action_id, None)
        if event.get("Response") != "Success":
            outcome, retry = REASONS.get(event.get("Reason", "0"), ("failed", True))
            return OriginateResult(False, outcome, retry=retry, detail=f"reason {event.get('Reason', '?')}")
        return await self._await_answer(callback.id, chan_id)

    async def _send(self, fields: dict[str, str], fut: asyncio.Future[dict[str, str]]) -> dict[str, str]:
        """Send Originate ("successfully queued" comes back at once), then await its OriginateResponse event."""
        await self.ami.action("Originate", **fields)  # AmiError when refused or AMI is down
        limit = self.ring_seconds + 15.0
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

    async def _channel_alive(self, chan_id: str) -> bool:
        msgs = await self.ami.action("CoreShowChannels", as_list=True)
        return any(m.get("Uniqueid") == chan_id or m.get("Linkedid") == chan_id
                   for m in msgs if m.get("Event") == "CoreShowChannel")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")

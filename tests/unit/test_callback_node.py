"""The callback node: number choice, policy (premium, international), kinds, one live callback per number."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ivr.call import Call
from ivr.config import Settings
from ivr.errors import StoreUnavailable
from ivr.journeys import JourneyLog
from ivr.queueing.callbacks import Callback
from ivr.queueing.queuestate import QueueBoard
from ivr.services import Services
from ivr.testing import FakeChannel, FakePrompts
from tests.flowkit import prompts, run, visited

NOW = datetime(2025, 3, 10, 15, 30, tzinfo=UTC)


class FakeCallbacks:
    """CallbackStore.add with one live callback per number."""

    def __init__(self, down: bool = False) -> None:
        self.added: list[Callback] = []
        self.down = down

    async def over_cap(self, caller: str, caps: object, now: float) -> str | None:
        if self.down:
            raise StoreUnavailable("redis down")
        return None

    async def add(self, cb: Callback, **caps: object) -> tuple[Callback, bool]:
        if self.down:
            raise StoreUnavailable("redis down")
        live = next((c for c in self.added if c.number == cb.number), None)
        if live is not None:
            return live, False
        self.added.append(cb)
        return cb, True


def flow(params: str = "") -> str:
    return f"""
flow: c
start: cb
nodes:
  cb:
    type: callback
    {params}
    next: {{next: done, refused: nope, exists: dup, failed: down, declined: hold}}
  done: {{type: hangup}}
  nope: {{type: hangup}}
  dup: {{type: hangup}}
  down: {{type: hangup}}
  hold: {{type: queue, queue: support}}
"""


def svc(store: FakeCallbacks, board: QueueBoard | None = None, **settings: Any) -> Services:
    return Services(Settings(**{"callbacks_regions": ("US", "IT"), **settings}), FakePrompts(),
                    JourneyLog(None), callbacks=store, queues=board, clock=lambda: NOW)  # type: ignore[arg-type]


async def go(script: str, caller: str = "", params: str = "", store: FakeCallbacks | None = None,
             board: QueueBoard | None = None, **settings: Any) -> tuple[Call, FakeChannel, FakeCallbacks]:
    store = store or FakeCallbacks()
    call, ch = await run(flow(params), script, svc=svc(store, board, **settings), callerid=caller)
    return call, ch, store


async def test_this_number_keep_place() -> None:
    call, ch, store = await go("1", caller="+390212345678")
    assert visited(call) == ["cb", "done"]
    [cb] = store.added
    assert (cb.number, cb.kind, cb.queue, cb.state) == ("+390212345678", "keep_place", "support", "pending")
    assert cb.due_at == NOW.timestamp() and cb.caller_uniqueid == "fake-0001"
    assert prompts(ch) == ["callback-number-menu", "callback-confirmed", "goodbye"]
    assert call.vars["callback_id"] == cb.id and call.outcome == "callback:support"


async def test_keep_place_is_due_after_the_ewt_of_the_position() -> None:
    board = QueueBoard(clock=lambda: NOW.timestamp())
    board.resync([{"Event": "QueueParams", "Queue": "billing"},
                  {"Event": "QueueMember", "Queue": "billing", "Location": "PJSIP/a1", "Status": "2", "InCall": "1"}])
    for _ in range(5):
        board.apply({"Event": "AgentComplete", "Queue": "billing", "Interface": "PJSIP/a1", "TalkTime": "100"})
    _, _, store = await go("1", caller="+390212345678", params="queue: billing", board=board)
    [cb] = store.added
    assert cb.queue == "billing" and cb.position == 1 and cb.ewt == board.estimate("billing", 1)[0]
    assert cb.due_at == NOW.timestamp() + cb.ewt and cb.ewt > 0


async def test_another_number_keyed_in() -> None:
    _, ch, store = await go("2 0 2 1 2 3 4 5 6 7 8 #", caller="+12025550123", callbacks_default_region="IT")
    assert [c.number for c in store.added] == ["+390212345678"]  # national digits read in the set region
    assert "callback-enter-number" in prompts(ch)


async def test_a_us_caller_keys_a_national_number() -> None:
    call, _, store = await go("2 2 0 2 5 5 5 0 1 0 1 #", caller="+12025550123")  # phone_region US by default
    assert visited(call) == ["cb", "done"] and [c.number for c in store.added] == ["+12025550101"]


async def test_no_caller_id_asks_for_the_number() -> None:
    call, ch, store = await go("0 0 1 2 0 2 5 5 5 0 1 2 3 #")
    assert [c.number for c in store.added] == ["+12025550123"]
    assert prompts(ch)[0] == "callback-enter-number"


async def test_premium_rate_is_refused() -> None:
    call, ch, store = await go("1", caller="+19005550123")
    assert visited(call) == ["cb", "nope"] and not store.added
    assert call.vars["callback_refused"] == "premium_rate"
    assert "callback-refused" in prompts(ch)
    [event] = [e.detail for e in call.journey if e.kind == "callback"]
    assert event["result"] == "refused" and event["reason"] == "premium_rate"


async def test_international_is_refused() -> None:
    call, _, store = await go("2 0 0 4 4 7 4 0 0 1 2 3 4 5 6 #", caller="+390212345678")
    assert visited(call) == ["cb", "nope"] and not store.added
    assert call.vars["callback_refused"] == "international"


async def test_one_live_callback_per_number() -> None:
    store = FakeCallbacks()
    await go("1", caller="+390212345678", store=store)
    call, ch, _ = await go("1", caller="+390212345678", store=store)
    assert visited(call) == ["cb", "dup"] and len(store.added) == 1
    assert "callback-exists" in prompts(ch) and call.vars["callback_id"] == store.added[0].id


async def test_redis_down_takes_failed() -> None:
    call, _, _ = await go("1", caller="+390212345678", store=FakeCallbacks(down=True))
    assert visited(call) == ["cb", "down"]


async def test_slot_tomorrow_morning_and_within_the_hour() -> None:
    _, ch, store = await go("1 2", caller="+390212345678", params="kind: slot\n    timezone: Europe/Rome")
    [cb] = store.added
    start = datetime(2025, 3, 11, 8, 0, tzinfo=UTC).timestamp()  # 09:00 in Rome (CET)
    assert (cb.kind, cb.due_at, cb.window_end) == ("slot", start, start + 3 * 3600)
    assert "callback-slot-menu" in prompts(ch)
    _, _, store = await go("1 1", caller="+390212345678", params="kind: slot")
    assert store.added[0].window_end == NOW.timestamp() + 3600


async def test_declined_offer_and_no_choice() -> None:
    call, _, store = await go("2", caller="+390212345678", params="offer: callback-offer")
    assert visited(call) == ["cb", "hold"] and not store.added
    call, _, store = await go("t t", caller="+390212345678")  # never says which number
    assert visited(call) == ["cb", "hold"] and not store.added

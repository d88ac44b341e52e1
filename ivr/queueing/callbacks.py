"""Durable callbacks in Redis: one live callback per number, keep-place or time slot, retries with backoff.

Requests are capped (`CallbackCaps`, from the `callbacks_max_*` settings): live callbacks per caller id,
requests per caller id per UTC day, requests to the whole service per UTC day. The check, the counting
and the storing are one Lua step, so concurrent requests cannot overshoot a cap.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal, cast

from ivr.store import (
    CALLBACK_CALLER_TTL,
    CALLBACK_DAY_TTL,
    CALLBACK_PREFIX,
    CALLBACK_RETENTION,
    CALLBACKS_DUE,
    Store,
    callback,
    callback_caller,
    callback_caller_day,
    callback_day,
    callback_lease,
    callback_number,
)
from ivr.validation import REPLY_CONFIG, quiet, validate

if TYPE_CHECKING:
    from ivr.config import Settings

log = logging.getLogger("ivr.callbacks")

Kind = Literal["keep_place", "slot"]
CbState = Literal["pending", "dialing", "done", "failed", "cancelled"]


@dataclass(frozen=True)
class Callback:
    """One callback (the model of its Redis hash). Times are epoch seconds; `attempts` counts finished attempts."""

    __pydantic_config__ = REPLY_CONFIG  # the hash also holds claimed_at, updated_at ...

    id: str
    number: str  # E.164 (see ivr.queueing.phone)
    queue: str
    kind: Kind
    due_at: float
    created_at: float
    state: CbState = "pending"
    window_end: float | None = None  # slot: no attempt starts at or after this
    attempts: int = 0
    max_attempts: int = 3
    position: int = 0  # keep_place: position the caller would have had
    ewt: float = 0.0  # keep_place: EWT when asked
    language: str = ""
    tier: str = ""
    caller_uniqueid: str = ""  # the inbound call that asked
    outcome: str = ""
    detail: str = ""
    resumed: bool = False  # set by claim: a previous dialer's lease expired during this attempt

    @property
    def attempt(self) -> int:
        """Number of the attempt being (or about to be) placed."""
        return self.attempts + 1

    def to_hash(self) -> dict[str, str]:
        return {k: _enc(v) for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_hash(cls, h: dict[str, str]) -> Callback:
        """The record read back; MalformedRecord (naming the fields, never their values) if it is not one."""
        text = {f.name for f in dataclasses.fields(cls) if f.type in ("str", "Kind", "CbState")}
        value, problems = validate(cls, {k: v for k, v in h.items() if v != "" or k in text})
        if value is None:
            raise MalformedRecord("; ".join(quiet(p) for p in problems[:3]))
        return value


class MalformedRecord(ValueError):
    """A callback hash that is not a callback (written by another version, or by hand)."""


@dataclass(frozen=True)
class CallbackCaps:
    """How many callback requests are taken: per caller id (live ones, and per UTC day) and in all per day."""

    pending_per_caller: int = 3
    per_caller_day: int = 5
    per_day: int = 2000

    @classmethod
    def from_settings(cls, settings: Settings) -> CallbackCaps:
        return cls(settings.callbacks_max_pending_per_caller, settings.callbacks_max_per_caller_day,
                   settings.callbacks_max_per_day)


class CapReached(Exception):
    """A request over a cap; `cap` is caller_pending, caller_day or day. Nothing was stored or counted."""

    def __init__(self, cap: str) -> None:
        super().__init__(f"callback cap reached: {cap}")
        self.cap = cap


def _enc(v: object) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    return "" if v is None else repr(v) if isinstance(v, float) else str(v)


def keep_place(number: str, queue: str, *, now: float, ewt: float, position: int, max_attempts: int = 3,
               language: str = "", tier: str = "", caller_uniqueid: str = "") -> Callback:
    """A callback due when the caller would have reached an agent: now + EWT (re-evaluated by the dialer)."""
    return Callback(uuid.uuid4().hex, number, queue, "keep_place", now + max(0.0, ewt), now,
                    max_attempts=max_attempts, position=max(1, position), ewt=max(0.0, ewt),
                    language=language, tier=tier, caller_uniqueid=caller_uniqueid)


def slot(number: str, queue: str, *, now: float, start: float, end: float, max_attempts: int = 3,
         language: str = "", tier: str = "", caller_uniqueid: str = "") -> Callback:
    """A callback in a chosen window [start, end); raises ValueError for an empty or past window."""
    if not start < end or end <= now:
        raise ValueError("the callback window is empty or already over")
    return Callback(uuid.uuid4().hex, number, queue, "slot", max(start, now), now, window_end=end,
                    max_attempts=max_attempts, language=language, tier=tier,
                    caller_uniqueid=caller_uniqueid)


def keep_place_due(cb: Callback, ewt_at: Callable[[str, int], float | None]) -> float | None:
    """Due time with today's service rate: request time + EWT now for the position the caller had."""
    est = ewt_at(cb.queue, cb.position)
    return None if est is None else cb.created_at + est


# --- Redis ------------------------------------------------------------------------------------------

_CAP_CHECK = """
local live = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[4])) do
  local st = redis.call('HGET', ARGV[9] .. id, 'state')
  if st == 'pending' or st == 'dialing' then live = live + 1 else redis.call('SREM', KEYS[4], id) end
end
if live >= tonumber(ARGV[4]) then return {'capped', 'caller_pending'} end
if tonumber(redis.call('GET', KEYS[5]) or '0') >= tonumber(ARGV[5]) then return {'capped', 'caller_day'} end
if tonumber(redis.call('GET', KEYS[6]) or '0') >= tonumber(ARGV[6]) then return {'capped', 'day'} end
"""
_ADD = """
local cur = redis.call('GET', KEYS[2])
if cur then return {'exists', cur} end
if ARGV[3] == '1' then
""" + _CAP_CHECK + """
  for i = 5, 6 do
    if redis.call('INCR', KEYS[i]) == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[7]) end
  end
  redis.call('SADD', KEYS[4], ARGV[1])
  redis.call('PEXPIRE', KEYS[4], ARGV[8])
end
redis.call('HSET', KEYS[1], unpack(ARGV, 10))
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('SET', KEYS[2], ARGV[1])
return {'created', ARGV[1]}
"""
_OVER_CAP = _CAP_CHECK + "return {'ok', ''}"  # same KEYS and ARGV as _ADD; stores and counts nothing
_CLAIM = """
local st = redis.call('HGET', KEYS[1], 'state')
if st ~= 'pending' and st ~= 'dialing' then redis.call('ZREM', KEYS[3], ARGV[4]) return 0 end
local score = redis.call('ZSCORE', KEYS[3], ARGV[4])
if (not score) or tonumber(score) > tonumber(ARGV[3]) then return 0 end
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'state', 'dialing', 'resumed', st == 'dialing' and '1' or '0', 'claimed_at', ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[4])
return 1
"""
_RENEW = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], 'XX', ARGV[4], ARGV[3])
return 1
"""
_FINISH = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
if ARGV[3] == '' then redis.call('ZREM', KEYS[3], ARGV[2]) else redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2]) end
if ARGV[4] == '1' then
  if redis.call('GET', KEYS[4]) == ARGV[2] then redis.call('DEL', KEYS[4]) end
  redis.call('EXPIRE', KEYS[1], ARGV[5])
end
redis.call('DEL', KEYS[2])
return 1
"""
_CANCEL = """
local st = redis.call('HGET', KEYS[1], 'state')
if (st ~= 'pending' and st ~= 'dialing') or redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'state', 'cancelled', 'outcome', 'cancelled', 'updated_at', ARGV[3])
redis.call('ZREM', KEYS[3], ARGV[1])
if redis.call('GET', KEYS[4]) == ARGV[1] then redis.call('DEL', KEYS[4]) end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""
_SET_ASIDE = """
redis.call('ZREM', KEYS[1], ARGV[1])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
"""
_RESCHEDULE = """
if redis.call('HGET', KEYS[1], 'state') ~= 'pending' or redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'due_at', ARGV[2])
redis.call('ZADD', KEYS[3], 'XX', ARGV[2], ARGV[1])
return 1
"""


class CallbackStore:
    """Every method is one atomic Redis step; all raise StoreUnavailable when Redis is unreachable."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self.clock = clock

    def _keys(self, cb_id: str, number: str = "") -> list[str]:
        keys = [callback(cb_id), callback_lease(cb_id), CALLBACKS_DUE]
        return keys + [_number_key(number)] if number else keys

    async def add(self, cb: Callback, *, caller: str = "", caps: CallbackCaps | None = None) -> tuple[Callback, bool]:
        """Store a new callback unless its number already has a live one: (the live callback, created?).

        With `caps`, the request of caller id `caller` ("" = anonymous) is also checked against them and
        counted (on the UTC day of `cb.created_at`); over a cap it raises CapReached."""
        flat = [x for kv in cb.to_hash().items() for x in kv]
        keys, args = _cap_keys_args(cb.id, cb.number, repr(cb.due_at), caller, caps, cb.created_at)
        args += flat
        kind, value = (str(x) for x in await self._store.eval(_ADD, keys, args))
        if kind == "capped":
            raise CapReached(value)
        if value == cb.id:
            return cb, True
        return (await self.get(value)) or cb, False

    async def over_cap(self, caller: str, caps: CallbackCaps, now: float) -> str | None:
        """Which cap a new request of `caller` would exceed now (caller_pending, caller_day, day), or None.

        Only a hint, to refuse before asking the caller anything: `add` checks again atomically."""
        keys, args = _cap_keys_args("-", "-", "0", caller, caps, now)
        kind, value = (str(x) for x in await self._store.eval(_OVER_CAP, keys, args))
        return value if kind == "capped" else None

    async def get(self, cb_id: str) -> Callback | None:
        """The callback, or None when there is none. A malformed record is logged (its id and what is
        wrong, never the number), set aside (out of the due set and the number index) and read as none."""
        h = cast(dict[str, str], await self._store.run(lambda r: r.hgetall(callback(cb_id))))
        if not h:
            return None
        try:
            return Callback.from_hash(h)
        except MalformedRecord as exc:
            log.error("callback %s: malformed record set aside (%s)", cb_id, exc)
            await self._store.eval(_SET_ASIDE, [CALLBACKS_DUE, callback_number(h.get("number") or "-")], [cb_id])
            return None

    async def for_number(self, number: str) -> Callback | None:
        """The live (pending or dialing) callback of a number, if any."""
        cb_id = await self._store.get(callback_number(number))
        return await self.get(cb_id) if cb_id else None

    async def cancel(self, cb_id: str) -> bool:
        """Cancel a callback nobody is dialing; False if it is being placed or already finished."""
        cb = await self.get(cb_id)
        keys = self._keys(cb_id, cb.number if cb else "-")  # a number not usable as a key: "-" too
        return bool(await self._store.eval(_CANCEL, keys, [cb_id, int(CALLBACK_RETENTION), repr(self.clock())]))

    async def due(self, now: float, limit: int) -> list[str]:
        """Ids whose next look is due (pending, or dialing with a lease that may have expired)."""
        ids = await self._store.run(lambda r: r.zrangebyscore(CALLBACKS_DUE, "-inf", now, start=0, num=limit))
        return [str(i) for i in ids]

    async def live(self, limit: int = 1000) -> list[Callback]:
        """Up to `limit` callbacks in the due set (soonest first)."""
        ids = await self._store.run(lambda r: r.zrange(CALLBACKS_DUE, 0, limit - 1))
        found = [await self.get(str(i)) for i in ids]
        return [cb for cb in found if cb is not None]

    async def claim(self, cb_id: str, token: str, lease: float, now: float) -> Callback | None:
        """Take the lease of a due callback (SET NX PX); None when someone else has it or it is not due."""
        args: list[str | int | float] = [token, _ms(lease), repr(now), cb_id, repr(now + lease)]
        if not await self._store.eval(_CLAIM, self._keys(cb_id), args):
            return None
        return await self.get(cb_id)

    async def renew(self, cb_id: str, token: str, lease: float, now: float) -> bool:
        keys = [callback_lease(cb_id), CALLBACKS_DUE]
        return bool(await self._store.eval(_RENEW, keys, [token, _ms(lease), cb_id, repr(now + lease)]))

    async def finish(self, cb: Callback, token: str, fields: dict[str, str], due: float | None) -> bool:
        """Record an attempt and release the lease: pending again at `due`, or finished when `due` is None.

        False when the lease was lost meanwhile (nothing is written: the new holder owns the callback)."""
        flat = [x for kv in fields.items() for x in kv]
        args: list[str | int | float] = [token, cb.id, "" if due is None else repr(due),
                                          "1" if due is None else "0", int(CALLBACK_RETENTION), *flat]
        return bool(await self._store.eval(_FINISH, self._keys(cb.id, cb.number), args))

    async def reschedule(self, cb_id: str, due_at: float) -> bool:
        """Move a pending, unclaimed callback (keep-place re-evaluation)."""
        return bool(await self._store.eval(_RESCHEDULE, self._keys(cb_id), [cb_id, repr(due_at)]))


def _cap_keys_args(cb_id: str, number: str, due: str, caller: str, caps: CallbackCaps | None,
                   at: float) -> tuple[list[str], list[str | int | float]]:
    """KEYS and the first nine ARGV of _ADD / _OVER_CAP (the day is the UTC day of `at`)."""
    day = datetime.fromtimestamp(at, UTC).strftime("%Y%m%d")
    keys = [callback(cb_id), _number_key(number), CALLBACKS_DUE, callback_caller(caller),
            callback_caller_day(caller, day), callback_day(day)]
    limits = caps or CallbackCaps()
    args: list[str | int | float] = [
        cb_id, due, "1" if caps else "0", limits.pending_per_caller, limits.per_caller_day, limits.per_day,
        int(CALLBACK_DAY_TTL * 1000), int(CALLBACK_CALLER_TTL * 1000), CALLBACK_PREFIX]
    return keys, args


def _number_key(number: str) -> str:
    """The number's live-callback key; a stored number that cannot name a key (tampered) gets one that
    never exists, so finishing or cancelling its callback still works."""
    try:
        return callback_number(number)
    except ValueError:
        return callback_number("-")


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))

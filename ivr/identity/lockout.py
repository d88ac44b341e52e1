"""The lockout of PIN and card checks: an attempt is reserved in Redis before the backend is asked.

Three sliding windows of failures are kept, each a sorted set scored by Redis' own clock:
- per account (`max_failures` within `failure_window` → the account is locked for `lockout`);
- per caller id, over every account (`caller_max_failures` within `caller_window` → that caller id may try
  no account for `caller_lockout`): one caller trying one PIN on many accounts is stopped too;
- for the whole service (`global_max_failures` within `global_window`: past it no check is made until the
  rate falls; callers reach a human): a slow spread of guesses from many caller ids is stopped as well.

Why reserve first: checking the lock, asking the backend and only then counting lets N concurrent wrong
PINs through when N calls arrive together. `reserve` (one Lua script) refuses when a lock exists or a window
is full and otherwise adds this attempt to all three windows *before* the backend is asked, so that with 20
concurrent wrong PINs the backend sees at most `max_failures` of them. `settle` then keeps the reservation
as a failure (locking when a window is full) or, on success, withdraws it, and refuses a correct PIN whose
account was locked meanwhile. A reservation that a lock (or an ops unlock) cleared is never added back, so
failures in flight do not roll into the next window.

An unknown account number is counted like a wrong PIN on an account of that number (`reject`): both sound
the same to the caller, and both lock alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

from ivr import store as keys
from ivr.errors import AuthLocked, StoreUnavailable
from ivr.store import Store

log = logging.getLogger("ivr.auth")


@dataclass(frozen=True)
class LockoutSettings:
    """The limits; seconds are floats so tests can use short windows."""

    max_failures: int = 5
    failure_window: float = keys.AUTH_FAILURE_WINDOW
    lockout: float = keys.AUTH_LOCKOUT
    caller_max_failures: int = 10
    caller_window: float = 3600.0
    caller_lockout: float = 3600.0
    global_max_failures: int = 200
    global_window: float = 60.0


@dataclass(frozen=True)
class Attempt:
    """Outcome of one PIN / card check; `remaining` failures are left before the account locks."""

    ok: bool
    remaining: int

    @property
    def locked(self) -> bool:
        return not self.ok and self.remaining == 0


@dataclass(frozen=True)
class Reservation:
    """One attempt counted in advance; hand it back to `settle`."""

    account: str
    caller_id: str
    nonce: str
    remaining: int  # failures left on the account if this one fails too


class Locked(AuthLocked):
    """Refused before any check: `scope` is account, caller or velocity (never told to the caller)."""

    def __init__(self, scope: str) -> None:
        super().__init__(f"authentication refused: {scope} limit")
        self.scope = scope


# KEYS: account failures, account lock, caller failures, caller lock, global failures
# ARGV: nonce, then window ms, max, for account, caller, global
_RESERVE = """
if redis.call('EXISTS', KEYS[2]) == 1 then return {-1, 'account'} end
if redis.call('EXISTS', KEYS[4]) == 1 then return {-1, 'caller'} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local sets = {{KEYS[1], ARGV[2], ARGV[3], 'account'}, {KEYS[3], ARGV[4], ARGV[5], 'caller'},
              {KEYS[5], ARGV[6], ARGV[7], 'velocity'}}
for _, s in ipairs(sets) do
  redis.call('ZREMRANGEBYSCORE', s[1], '-inf', now - tonumber(s[2]))
  if redis.call('ZCARD', s[1]) >= tonumber(s[3]) then return {-1, s[4]} end
end
for _, s in ipairs(sets) do
  redis.call('ZADD', s[1], now, ARGV[1])
  redis.call('PEXPIRE', s[1], s[2])
end
return {tonumber(ARGV[3]) - redis.call('ZCARD', KEYS[1]), 'ok'}
"""

# KEYS as _RESERVE; ARGV: nonce, ok (1/0), account max, account lockout ms, caller max, caller lockout ms
_SETTLE = """
if ARGV[2] == '1' then
  for _, k in ipairs({KEYS[1], KEYS[3], KEYS[5]}) do redis.call('ZREM', k, ARGV[1]) end
  if redis.call('EXISTS', KEYS[2]) == 1 or redis.call('EXISTS', KEYS[4]) == 1 then return -1 end
  redis.call('DEL', KEYS[1])
  return tonumber(ARGV[3])
end
local left = -2
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  local n = redis.call('ZCARD', KEYS[1])
  left = math.max(0, tonumber(ARGV[3]) - n)
  if n >= tonumber(ARGV[3]) then
    redis.call('SET', KEYS[2], '1', 'PX', ARGV[4])
    redis.call('DEL', KEYS[1])
  end
end
if redis.call('ZSCORE', KEYS[3], ARGV[1]) and redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[5]) then
  redis.call('SET', KEYS[4], '1', 'PX', ARGV[6])
  redis.call('DEL', KEYS[3])
  left = 0
end
if redis.call('EXISTS', KEYS[2]) == 1 or redis.call('EXISTS', KEYS[4]) == 1 then left = 0 end
return left
"""


_WITHDRAW = """
for _, k in ipairs({KEYS[1], KEYS[3], KEYS[5]}) do redis.call('ZREM', k, ARGV[1]) end
return 1
"""


class Lockout:
    """Failures counted across calls and processes (see the module docstring)."""

    def __init__(self, store: Store, settings: LockoutSettings) -> None:
        self.store = store
        self.settings = settings

    @staticmethod
    def _keys(account: str, caller_id: str) -> list[str]:
        return [keys.auth_failures(account), keys.auth_lock(account), keys.auth_caller_failures(caller_id),
                keys.auth_caller_lock(caller_id), keys.AUTH_GLOBAL_FAILURES]

    async def is_locked(self, account: str, caller_id: str = "") -> bool:
        names = [keys.auth_lock(account)] + ([keys.auth_caller_lock(caller_id)] if caller_id else [])
        return bool(await self.store.run(lambda r: r.exists(*names)))

    async def reserve(self, account: str, caller_id: str) -> Reservation:
        """Count this attempt before it is checked; raises `Locked` when it may not be made."""
        s = self.settings
        nonce = secrets.token_hex(8)
        args: list[str | int] = [nonce, keys.ms(s.failure_window), s.max_failures, keys.ms(s.caller_window),
                                 s.caller_max_failures, keys.ms(s.global_window), s.global_max_failures]
        left, verdict = await self.store.eval(_RESERVE, self._keys(account, caller_id), args)
        if verdict != "ok":
            log.warning("check for account %s refused: %s limit reached", account, verdict)
            raise Locked(str(verdict))
        return Reservation(account, caller_id, nonce, int(left))

    async def settle(self, reservation: Reservation, ok: bool) -> Attempt:
        """The check's outcome: a success withdraws the reservation (refused if a lock came meanwhile)."""
        s = self.settings
        args: list[str | int] = [reservation.nonce, int(ok), s.max_failures, keys.ms(s.lockout),
                                 s.caller_max_failures, keys.ms(s.caller_lockout)]
        left = int(await self.store.eval(_SETTLE, self._keys(reservation.account, reservation.caller_id), args))
        if ok:
            if left < 0:
                log.warning("correct check for account %s refused: locked while it was checked",
                            reservation.account)
                raise Locked("account")
            return Attempt(True, s.max_failures)
        remaining = reservation.remaining if left == -2 else left  # -2: a lock or an unlock cleared it
        if remaining == 0:
            log.warning("account %s locked after %d failures", reservation.account, s.max_failures)
        return Attempt(False, max(0, remaining))

    @contextlib.asynccontextmanager
    async def withdrawn_on_error(self, reservation: Reservation) -> AsyncIterator[None]:
        """A check that gave no verdict (backend down, timeout, caller gone) is not counted: nobody learnt
        anything from it. The withdrawal is shielded so a hang-up cannot leave it half done."""
        try:
            yield
        except BaseException:
            names = self._keys(reservation.account, reservation.caller_id)
            with contextlib.suppress(StoreUnavailable, asyncio.CancelledError):
                await asyncio.shield(self.store.eval(_WITHDRAW, names, [reservation.nonce]))
            raise

    async def reset(self, account: str) -> None:
        """Forget the account's failures (an active lock stays)."""
        await self.store.delete(keys.auth_failures(account))

    async def unlock(self, account: str = "", caller_id: str = "") -> bool:
        """Lift a lock and clear its window (ops); True if something was locked."""
        names: list[str] = []
        if account:
            names += [keys.auth_lock(account), keys.auth_failures(account)]
        if caller_id:
            names += [keys.auth_caller_lock(caller_id), keys.auth_caller_failures(caller_id)]
        locks = [n for n in names if ":lock:" in n or ":clock:" in n]
        was = int(await self.store.run(lambda r: r.exists(*locks))) if locks else 0
        if names:
            await self.store.delete(*names)
        return was > 0

    async def status(self, account: str) -> tuple[float | None, int]:
        """(seconds the account stays locked or None, failures in its window now)."""
        left = await self.store.ttl(keys.auth_lock(account))
        name = keys.auth_failures(account)
        window = keys.ms(self.settings.failure_window)

        async def count(r: object) -> int:
            t = await r.time()  # type: ignore[attr-defined]
            now = int(t[0]) * 1000 + int(t[1]) // 1000
            return int(await r.zcount(name, now - window, "+inf"))  # type: ignore[attr-defined]

        return left, await self.store.run(count)

"""Shared state in Redis: the client, its error mapping, and every key name and TTL of the project."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from ivr.errors import StoreUnavailable

T = TypeVar("T")

PREFIX = "ivr"
_PART = re.compile(r"^[A-Za-z0-9+_.@-]{1,64}$")


def _part(value: str) -> str:
    """One caller- or backend-supplied piece of a key name; refuses anything that could alias keys."""
    if not _PART.match(value):
        raise ValueError(f"not usable in a key name: {value!r}")
    return value


# --- auth: lockout (sliding window of failures, see ivr/identity/auth.py) and lock flag ---
AUTH_FAILURE_WINDOW = 15 * 60.0  # s: failures counted within any window this long
AUTH_LOCKOUT = 15 * 60.0  # s: how long an account stays locked once it reaches the limit


def auth_failures(account: str) -> str:
    """Sorted set of an account's failed PIN / card checks by time; TTL AUTH_FAILURE_WINDOW, renewed."""
    return f"{PREFIX}:auth:fail:{_part(account)}"


def auth_lock(account: str) -> str:
    """Present while the account is locked out; TTL AUTH_LOCKOUT."""
    return f"{PREFIX}:auth:lock:{_part(account)}"


def _caller_tag(caller_id: str) -> str:
    """A caller id as a key part: hashed, so key names carry no phone number (and any text is safe)."""
    return hashlib.sha256((caller_id or "anonymous").encode()).hexdigest()[:24]


def auth_caller_failures(caller_id: str) -> str:
    """Sorted set of the failed checks made from one caller id, over every account; TTL its window."""
    return f"{PREFIX}:auth:cfail:{_caller_tag(caller_id)}"


def auth_caller_lock(caller_id: str) -> str:
    """Present while a caller id may not try any account; TTL the caller lockout."""
    return f"{PREFIX}:auth:clock:{_caller_tag(caller_id)}"


AUTH_GLOBAL_FAILURES = f"{PREFIX}:auth:gfail"  # sorted set of every failed check of the service; TTL its window
AUTH_AUDIT = f"{PREFIX}:auth:audit"  # stream of ops actions on authentication (unlocks): who, when, what
AUTH_AUDIT_MAX = 10_000  # entries kept (XADD MAXLEN ~)


# --- auth: one-time codes ---
OTP_TTL = 5 * 60.0  # s: a code's life (NIST SP 800-63B allows at most 10 minutes)
OTP_SEND_WINDOW = 15 * 60.0  # s: window of the per-phone send counter


def otp_code(account: str) -> str:
    """Hash {h: HMAC of the code, tries, used} of the account's live code; TTL OTP_TTL."""
    return f"{PREFIX}:otp:code:{_part(account)}"


def otp_sends(phone: str) -> str:
    """Codes sent to a phone number; TTL OTP_SEND_WINDOW set on the first send."""
    return f"{PREFIX}:otp:sends:{_part(phone)}"


# --- client ---
@dataclass(frozen=True)
class StoreSettings:
    """Timeouts are short on purpose: a call must never hang on a dead Redis."""

    socket_timeout: float = 0.5
    connect_timeout: float = 0.5
    pool_timeout: float = 0.5  # wait for a free pooled connection (BlockingConnectionPool)
    max_connections: int = 64
    retries: int = 1  # immediate retries on a connection error only (re-dial after a Redis restart)
    op_timeout: float = 1.0  # hard ceiling of one operation, retries included


class Store:
    """A Redis client whose every failure is a `StoreUnavailable`; use `run`/`guard` for raw commands."""

    def __init__(self, client: aioredis.Redis, settings: StoreSettings) -> None:
        self._redis = client
        self.settings = settings
        self._scripts: dict[str, AsyncScript] = {}

    @property
    def redis(self) -> aioredis.Redis:
        """The raw client (decode_responses=True); wrap its use in `guard()` or `run()`."""
        return self._redis

    @asynccontextmanager
    async def guard(self) -> AsyncIterator[None]:
        """Map any Redis, socket or timeout failure inside the block to `StoreUnavailable`."""
        try:
            async with asyncio.timeout(self.settings.op_timeout):
                yield
        except (RedisError, OSError, TimeoutError) as exc:
            raise StoreUnavailable(f"redis: {type(exc).__name__}: {exc}") from exc

    async def run(self, op: Callable[[aioredis.Redis], Awaitable[T]]) -> T:
        """`await store.run(lambda r: r.hgetall(key))` with the error mapping and deadline."""
        async with self.guard():
            return await op(self._redis)

    async def ping(self) -> bool:
        """True when Redis answers; never raises."""
        try:
            return bool(await self.run(lambda r: r.ping()))
        except StoreUnavailable:
            return False

    async def get(self, key: str) -> str | None:
        value = await self.run(lambda r: r.get(key))
        return value.decode() if isinstance(value, bytes) else value

    async def set(self, key: str, value: str, ttl: float | None = None) -> None:
        px = None if ttl is None else ms(ttl)
        await self.run(lambda r: r.set(key, value, px=px))

    async def exists(self, key: str) -> bool:
        return bool(await self.run(lambda r: r.exists(key)))

    async def delete(self, *keys: str) -> int:
        return int(await self.run(lambda r: r.delete(*keys)))

    async def ttl(self, key: str) -> float | None:
        """Seconds left, or None when the key is missing or has no expiry."""
        ms = int(await self.run(lambda r: r.pttl(key)))
        return None if ms < 0 else ms / 1000

    async def incr_window(self, key: str, window: float) -> int:
        """INCR a counter; the first increment starts its window (PEXPIRE NX). Returns the new count."""
        return int(await self.eval(_INCR_WINDOW, [key], [ms(window)]))

    async def eval(self, script: str, keys: Sequence[str], args: Sequence[str | int | float]) -> Any:
        """Run a Lua script (EVALSHA, loading it on NOSCRIPT, e.g. after a Redis restart) atomically."""
        registered = self._scripts.get(script)
        if registered is None:
            registered = self._scripts[script] = self._redis.register_script(script)
        return await self.run(lambda r: registered(keys=list(keys), args=list(args)))

    async def close(self) -> None:
        await self._redis.aclose()


def ms(seconds: float) -> int:
    """Seconds → milliseconds for PX / PEXPIRE (at least 1)."""
    return max(1, int(seconds * 1000))


_INCR_WINDOW = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
"""


def connect(url: str, settings: StoreSettings | None = None) -> Store:
    """A `Store` on `url` (no I/O yet: a Redis that is down at start-up only fails the first use)."""
    s = settings or StoreSettings()
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=s.max_connections,
        timeout=s.pool_timeout,
        socket_timeout=s.socket_timeout,
        socket_connect_timeout=s.connect_timeout,
        retry=Retry(NoBackoff(), s.retries, supported_errors=(RedisConnectionError,)),
        decode_responses=True,
    )
    return Store(aioredis.Redis.from_pool(pool), s)


# --- queues, callbacks, emergency ---
EMERGENCY = f"{PREFIX}:emergency"  # JSON announcement; PX = until its expires_at (expires by itself)
EMERGENCY_CHANNEL = f"{PREFIX}:emergency:changed"  # pub/sub: the new announcement JSON, "" when cleared
EMERGENCY_MAX_TTL = 7 * 24 * 3600.0  # s: longest life an announcement may be given
CALLBACKS_DUE = f"{PREFIX}:cb:due"  # ZSET callback id → epoch s when a dialer should look at it next
CALLBACK_RETENTION = 7 * 24 * 3600.0  # s: a finished (done/failed/cancelled) callback's hash is kept this long


def callback(cb_id: str) -> str:
    """Hash of one callback; no TTL while pending/dialing, CALLBACK_RETENTION once finished."""
    return f"{PREFIX}:cb:{_part(cb_id)}"


def callback_number(e164: str) -> str:
    """Id of the one live callback of a number (set atomically with the hash); deleted when it ends."""
    return f"{PREFIX}:cb:num:{_part(e164)}"


def callback_lease(cb_id: str) -> str:
    """Token of the dialer placing a callback; PX = the lease, renewed while the call is being placed."""
    return f"{PREFIX}:cb:lease:{_part(cb_id)}"


# --- callback caps (ivr/queueing/callbacks.py: checked and counted in the same Lua step that stores a callback) ---
CALLBACK_DAY_TTL = 2 * 24 * 3600.0  # s: a per-day counter outlives its UTC day, then expires
CALLBACK_CALLER_TTL = 8 * 24 * 3600.0  # s: a caller's set of live callbacks, renewed by each request


def _caller_ref(caller: str) -> str:
    """A caller id as it may appear in a key name: a digest (key names are listed by ops tools)."""
    return hashlib.sha256((caller.strip() or "anonymous").encode()).hexdigest()[:32]


def callback_caller(caller: str) -> str:
    """Set of a caller id's callback ids (pruned of finished ones when counted); TTL CALLBACK_CALLER_TTL."""
    return f"{PREFIX}:cb:caller:{_caller_ref(caller)}"


def callback_caller_day(caller: str, day: str) -> str:
    """Callback requests a caller id made on UTC day `day` (YYYYMMDD); TTL CALLBACK_DAY_TTL."""
    return f"{PREFIX}:cb:asks:{_caller_ref(caller)}:{_part(day)}"


def callback_day(day: str) -> str:
    """Callback requests the whole service took on UTC day `day` (YYYYMMDD); TTL CALLBACK_DAY_TTL."""
    return f"{PREFIX}:cb:asks:{_part(day)}"


CALLBACK_PREFIX = f"{PREFIX}:cb:"  # callback(id) = CALLBACK_PREFIX + id, for the Lua step that prunes

"""Caller authentication: PIN and card checks under a cross-call lockout, and one-time codes by SMS.

Lockout: a sliding window per account (a sorted set of failure times, scored by Redis' own clock,
trimmed and counted in one Lua script). Reaching `max_failures` within `failure_window` sets a lock
key for `lockout` seconds and clears the window. Chosen over INCR + EXPIRE, whose fixed window lets
2 × (max - 1) failures through around its boundary. While Redis is down every method raises
`StoreUnavailable`: the flow hands the caller to a human instead of skipping the check.

One-time codes: 6 digits from `secrets`, stored only as HMAC-SHA256(server key, account, code) for
`otp_ttl` seconds; verification is one Lua script (check, count, consume), so a code works once, and
`otp_max_attempts` wrong guesses burn it. Sends are limited per phone number.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import date

from ivr import store as keys
from ivr.backends.protocols import Accounts
from ivr.errors import AuthLocked, StoreUnavailable
from ivr.secret import Secret
from ivr.sms import SmsGateway, mask_phone, otp_text
from ivr.store import Store

log = logging.getLogger("ivr.auth")

_PIN = re.compile(r"^\d{4,12}$")
_LAST4 = re.compile(r"^\d{4}$")


@dataclass(frozen=True)
class AuthSettings:
    """Every limit of authentication; seconds are floats so tests can use short windows."""

    tries_per_call: int = 3  # the flow node's limit per call
    max_failures: int = 5  # per account, across calls, within failure_window
    failure_window: float = keys.AUTH_FAILURE_WINDOW
    lockout: float = keys.AUTH_LOCKOUT
    otp_digits: int = 6
    otp_ttl: float = keys.OTP_TTL
    otp_max_attempts: int = 3
    otp_sends: int = 3  # per phone number within otp_send_window
    otp_send_window: float = keys.OTP_SEND_WINDOW

    def __post_init__(self) -> None:
        if min(self.tries_per_call, self.max_failures, self.otp_max_attempts, self.otp_sends) < 1:
            raise ValueError("attempt and send limits must be at least 1")
        if not 0 < self.otp_ttl <= 600:
            raise ValueError("otp_ttl must be within (0, 600] s (NIST SP 800-63B: at most 10 minutes)")
        if not 6 <= self.otp_digits <= 10:
            raise ValueError("otp_digits must be 6..10")


class OtpResult(enum.Enum):
    OK = "ok"
    WRONG = "wrong"
    EXPIRED = "expired"  # no live code: never issued, or its TTL passed
    USED = "used"
    TOO_MANY_ATTEMPTS = "too_many_attempts"  # this code is burnt; issue a new one


class OtpRateLimited(AuthLocked):
    """Too many codes were sent to this phone number recently."""


@dataclass(frozen=True)
class Attempt:
    """Outcome of one PIN / card check; `remaining` failures are left before the account locks."""

    ok: bool
    remaining: int

    @property
    def locked(self) -> bool:
        return not self.ok and self.remaining == 0


_RECORD_FAILURE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]))
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
local n = redis.call('ZCARD', KEYS[1])
if n >= tonumber(ARGV[2]) then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
  redis.call('DEL', KEYS[1])
end
return n
"""

_ISSUE = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if n > tonumber(ARGV[2]) then return -1 end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'h', ARGV[3], 'tries', 0, 'used', 0)
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return n
"""

_VERIFY = """
local f = redis.call('HMGET', KEYS[1], 'h', 'tries', 'used')
if not f[1] then return 'expired' end
if f[3] == '1' then return 'used' end
if tonumber(f[2]) >= tonumber(ARGV[2]) then return 'too_many_attempts' end
if f[1] == ARGV[1] then
  redis.call('HSET', KEYS[1], 'used', 1)
  return 'ok'
end
if redis.call('HINCRBY', KEYS[1], 'tries', 1) >= tonumber(ARGV[2]) then return 'too_many_attempts' end
return 'wrong'
"""


class Lockout:
    """Failures of an account counted across calls and processes (see the module docstring)."""

    def __init__(self, store: Store, settings: AuthSettings) -> None:
        self.store = store
        self.settings = settings

    async def is_locked(self, account: str) -> bool:
        return await self.store.exists(keys.auth_lock(account))

    async def ensure_unlocked(self, account: str) -> None:
        if await self.is_locked(account):
            raise AuthLocked(f"account {account} is locked")

    async def record_failure(self, account: str) -> int:
        """Count one failure; returns how many are left before the lock (0: now locked)."""
        s = self.settings
        nonce = secrets.token_hex(8)
        args: list[str | int] = [keys.ms(s.failure_window), s.max_failures, keys.ms(s.lockout), nonce]
        names = [keys.auth_failures(account), keys.auth_lock(account)]
        count = int(await self.store.eval(_RECORD_FAILURE, names, args))
        remaining = max(0, s.max_failures - count)
        if remaining == 0:
            log.warning("account %s locked for %.0f s after %d failures", account, s.lockout, count)
        return remaining

    async def reset(self, account: str) -> None:
        """After a success: forget the account's failures (an active lock stays)."""
        await self.store.delete(keys.auth_failures(account))


class OneTimeCodes:
    """Issue and verify one-time codes; with an `SmsGateway`, `send` texts them too."""

    def __init__(
        self, store: Store, key: Secret, settings: AuthSettings, sms: SmsGateway | None = None,
    ) -> None:
        if len(key.reveal()) < 16:
            raise ValueError("the OTP key must have at least 16 characters")
        self.store = store
        self.settings = settings
        self.sms = sms
        self._key = key

    def _digest(self, account: str, code: str) -> str:
        message = f"{account}\x00{code}".encode()
        return hmac.new(self._key.reveal().encode(), message, hashlib.sha256).hexdigest()

    async def issue(self, account: str, phone: str) -> Secret:
        """A new code for `account` (replacing any live one); raises OtpRateLimited per `phone`."""
        s = self.settings
        code = Secret("".join(secrets.choice("0123456789") for _ in range(s.otp_digits)))
        digest = self._digest(account, code.reveal())
        args: list[str | int] = [keys.ms(s.otp_send_window), s.otp_sends, digest, keys.ms(s.otp_ttl)]
        sent = int(await self.store.eval(_ISSUE, [keys.otp_sends(phone), keys.otp_code(account)], args))
        if sent < 0:
            log.warning("one-time code for %s refused: send limit for %s reached", account, mask_phone(phone))
            raise OtpRateLimited(f"too many codes sent to {mask_phone(phone)}")
        log.info("one-time code issued for %s (send %d of %d)", account, sent, s.otp_sends)
        return code

    async def send(self, account: str, phone: str, language: str = "en") -> str:
        """Issue a code and text it to `phone`; returns the SMS id. A failed send drops the code."""
        if self.sms is None:
            raise RuntimeError("OneTimeCodes has no SmsGateway")
        code = await self.issue(account, phone)
        try:
            minutes = max(1, round(self.settings.otp_ttl / 60))
            return await self.sms.send(phone, otp_text(code, language, minutes))
        except BaseException:
            with contextlib.suppress(StoreUnavailable):
                await self.store.delete(keys.otp_code(account))
            raise

    async def verify(self, account: str, code: Secret) -> OtpResult:
        args: list[str | int] = [self._digest(account, code.reveal()), self.settings.otp_max_attempts]
        result = OtpResult(await self.store.eval(_VERIFY, [keys.otp_code(account)], args))
        log.info("one-time code check for %s: %s", account, result.value)
        return result


class Auth:
    """Authentication for the flow nodes (one instance serves every call); codes: `auth.otp`."""

    def __init__(
        self, store: Store, accounts: Accounts, *, otp_key: Secret, sms: SmsGateway | None = None,
        settings: AuthSettings | None = None,
    ) -> None:
        self.settings = settings or AuthSettings()
        self.accounts = accounts
        self.lockout = Lockout(store, self.settings)
        self.otp = OneTimeCodes(store, otp_key, self.settings, sms)

    async def is_locked(self, account: str) -> bool:
        return await self.lockout.is_locked(account)

    async def record_failure(self, account: str) -> int:
        return await self.lockout.record_failure(account)

    async def reset(self, account: str) -> None:
        await self.lockout.reset(account)

    async def verify_pin(self, account: str, pin: Secret) -> Attempt:
        """Raises AuthLocked (before asking the backend) when locked; BackendError if it fails."""
        await self.lockout.ensure_unlocked(account)
        ok = bool(_PIN.match(pin.reveal())) and await self.accounts.verify_pin(account, pin)
        return await self._settle(account, "PIN", ok)

    async def verify_card(self, account: str, last4: Secret, dob: date) -> Attempt:
        await self.lockout.ensure_unlocked(account)
        ok = bool(_LAST4.match(last4.reveal())) and await self.accounts.verify_card(account, last4, dob)
        return await self._settle(account, "card", ok)

    async def _settle(self, account: str, what: str, ok: bool) -> Attempt:
        if ok:
            await self.lockout.reset(account)
            log.info("%s check for %s: ok", what, account)
            return Attempt(True, self.settings.max_failures)
        remaining = await self.lockout.record_failure(account)
        log.info("%s check for %s: wrong (%d before lockout)", what, account, remaining)
        return Attempt(False, remaining)

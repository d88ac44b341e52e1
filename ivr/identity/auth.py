"""Caller authentication: PIN and card checks under a cross-call lockout, and one-time codes by SMS.

Lockout (ivr/identity/lockout.py): sliding windows of failures per account, per caller id and for the whole
service, each attempt reserved atomically before the backend checks it, so concurrent guesses cannot race
past the limit. While Redis is down every method raises `StoreUnavailable`: the flow hands the caller to a
human instead of skipping the check.

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
from ivr.identity.lockout import Attempt, Lockout, LockoutSettings, Reservation
from ivr.identity.secret import Secret
from ivr.identity.sms import SmsGateway, mask_phone, otp_text
from ivr.store import Store
from ivr.validation import SECTION_CONFIG

log = logging.getLogger("ivr.auth")

_PIN = re.compile(r"^\d{4,12}$")
_LAST4 = re.compile(r"^\d{4}$")


@dataclass(frozen=True)
class AuthSettings:
    """Every limit of authentication (the `[auth]` settings section); seconds are floats so tests can use
    short windows. Checked by `ivr.validation` (`__post_init__` holds the safety rules)."""

    __pydantic_config__ = SECTION_CONFIG

    tries_per_call: int = 3  # the flow node's limit per call
    max_failures: int = 5  # per account, across calls, within failure_window
    failure_window: float = keys.AUTH_FAILURE_WINDOW
    lockout: float = keys.AUTH_LOCKOUT
    caller_max_failures: int = 10  # per caller id, over every account, within caller_window
    caller_window: float = 3600.0
    caller_lockout: float = 3600.0
    global_max_failures: int = 200  # the whole service, within global_window: past it no check is made
    global_window: float = 60.0
    otp_digits: int = 6
    otp_ttl: float = keys.OTP_TTL
    otp_max_attempts: int = 3
    otp_sends: int = 3  # per phone number within otp_send_window
    otp_send_window: float = keys.OTP_SEND_WINDOW

    def __post_init__(self) -> None:
        limits = (self.tries_per_call, self.max_failures, self.otp_max_attempts, self.otp_sends,
                  self.caller_max_failures, self.global_max_failures)
        if min(limits) < 1:
            raise ValueError("attempt and send limits must be at least 1")
        windows = (self.failure_window, self.lockout, self.caller_window, self.caller_lockout, self.global_window)
        if min(windows) <= 0:
            raise ValueError("windows and lockouts must be above 0 s")
        if not 0 < self.otp_ttl <= 600:
            raise ValueError("otp_ttl must be within (0, 600] s (NIST SP 800-63B: at most 10 minutes)")
        if not 6 <= self.otp_digits <= 10:
            raise ValueError("otp_digits must be 6..10")

    def lockout_settings(self) -> LockoutSettings:
        return LockoutSettings(
            max_failures=self.max_failures, failure_window=self.failure_window, lockout=self.lockout,
            caller_max_failures=self.caller_max_failures, caller_window=self.caller_window,
            caller_lockout=self.caller_lockout, global_max_failures=self.global_max_failures,
            global_window=self.global_window)


class OtpResult(enum.Enum):
    OK = "ok"
    WRONG = "wrong"
    EXPIRED = "expired"  # no live code: never issued, or its TTL passed
    USED = "used"
    TOO_MANY_ATTEMPTS = "too_many_attempts"  # this code is burnt; issue a new one


class OtpRateLimited(AuthLocked):
    """Too many codes were sent to this phone number recently."""


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
        self.lockout = Lockout(store, self.settings.lockout_settings())
        self.otp = OneTimeCodes(store, otp_key, self.settings, sms)

    async def is_locked(self, account: str, caller_id: str = "") -> bool:
        return await self.lockout.is_locked(account, caller_id)

    async def reset(self, account: str) -> None:
        await self.lockout.reset(account)

    async def verify_pin(self, account: str, pin: Secret, caller_id: str = "") -> Attempt:
        """Raises AuthLocked (before asking the backend) when a limit is reached; BackendError if it fails."""
        reservation = await self.lockout.reserve(account, caller_id)
        async with self.lockout.withdrawn_on_error(reservation):
            ok = bool(_PIN.match(pin.reveal())) and await self.accounts.verify_pin(account, pin)
        return await self._settle(reservation, "PIN", ok)

    async def verify_card(self, account: str, last4: Secret, dob: date, caller_id: str = "") -> Attempt:
        reservation = await self.lockout.reserve(account, caller_id)
        async with self.lockout.withdrawn_on_error(reservation):
            ok = bool(_LAST4.match(last4.reveal())) and await self.accounts.verify_card(account, last4, dob)
        return await self._settle(reservation, "card", ok)

    async def reject(self, account: str, caller_id: str = "") -> Attempt:
        """An account number nobody has: counted like a wrong PIN on it, so both sound the same."""
        return await self._settle(await self.lockout.reserve(account, caller_id), "PIN", False)

    async def _settle(self, reservation: Reservation, what: str, ok: bool) -> Attempt:
        attempt = await self.lockout.settle(reservation, ok)
        log.info("%s check for %s: %s", what, reservation.account,
                 "ok" if ok else f"wrong ({attempt.remaining} before lockout)")
        return attempt

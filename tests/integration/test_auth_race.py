"""The lockout under concurrency and across accounts, on a real Redis with a slow accounts backend.

Concurrent wrong PINs must not race past the limit (each attempt is reserved before the backend is asked),
a correct PIN once the lock exists is refused, failures still in flight when the lock falls do not count in
the next window, and one caller id trying many accounts (or the whole service under a spray) is stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest

from ivr.errors import AuthLocked, BackendUnavailable
from ivr.identity.auth import Auth, AuthSettings
from ivr.identity.secret import Secret
from ivr.store import Store, auth_failures, connect

KEY = Secret("test-otp-key-0123456789abcdef")
RIGHT = "2468"


class SlowAccounts:
    """Accepts only RIGHT; each check takes `delay` seconds and is counted per account."""

    def __init__(self, delay: float = 0.2, fail: bool = False, right_delay: float | None = None) -> None:
        self.delay = delay
        self.right_delay = delay if right_delay is None else right_delay
        self.fail = fail
        self.checks: dict[str, int] = {}

    async def verify_pin(self, customer_id: str, pin: Secret) -> bool:
        self.checks[customer_id] = self.checks.get(customer_id, 0) + 1
        await asyncio.sleep(self.right_delay if pin.reveal() == RIGHT else self.delay)
        if self.fail:
            raise BackendUnavailable("accounts: down")
        return pin.reveal() == RIGHT

    async def verify_card(self, customer_id: str, last4: Secret, dob: date) -> bool:
        return await self.verify_pin(customer_id, last4)


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[Store]:
    s = connect(redis_url)
    async def clear(r: Any) -> None:  # the lockout's keys only: other tests share this Redis
        async for key in r.scan_iter("ivr:auth:*"):
            await r.delete(key)

    await s.run(clear)
    yield s
    await s.close()


def _auth(store: Store, accounts: SlowAccounts, **settings: float) -> Auth:
    return Auth(store, accounts, otp_key=KEY, settings=AuthSettings(**settings))  # type: ignore[arg-type]


async def _try(auth: Auth, account: str, pin: str, caller: str = "+12025550199") -> str:
    try:
        attempt = await auth.verify_pin(account, Secret(pin), caller)
    except AuthLocked:
        return "locked"
    return "ok" if attempt.ok else "locked" if attempt.locked else "wrong"


async def test_twenty_concurrent_wrong_pins_reach_the_backend_at_most_max_failures_times(store: Store) -> None:
    accounts = SlowAccounts(delay=0.3)
    auth = _auth(store, accounts, caller_max_failures=100)
    results = await asyncio.gather(*(_try(auth, "1001", f"{1000 + i}", f"+1202555{i:04d}") for i in range(20)))
    assert accounts.checks["1001"] == 5
    assert results == ["locked"] * 20  # 15 refused up front; the 5 checked hear the lock their failures set
    assert await auth.is_locked("1001")


async def test_a_correct_pin_after_the_lock_is_refused_and_never_checked(store: Store) -> None:
    accounts = SlowAccounts(delay=0.01)
    auth = _auth(store, accounts)
    assert [await _try(auth, "1001", p) for p in ("1111", "2222", "3333", "4444", "5555")] == \
        ["wrong"] * 4 + ["locked"]
    assert await _try(auth, "1001", RIGHT) == "locked"
    assert accounts.checks["1001"] == 5


async def test_a_correct_pin_in_flight_when_the_lock_falls_is_refused(store: Store) -> None:
    accounts = SlowAccounts(delay=0.05, right_delay=0.5)
    auth = _auth(store, accounts, max_failures=3)
    right = asyncio.ensure_future(_try(auth, "1001", RIGHT))
    await asyncio.sleep(0.05)
    wrong = await asyncio.gather(_try(auth, "1001", "1111"), _try(auth, "1001", "2222"))
    assert "locked" in wrong
    assert await right == "locked"


async def test_failures_in_flight_do_not_roll_into_the_next_window(store: Store) -> None:
    accounts = SlowAccounts(delay=0.4)
    auth = _auth(store, accounts, max_failures=3, lockout=0.6, caller_max_failures=100)
    first = asyncio.ensure_future(_try(auth, "1001", "1111", "+12025550001"))
    await asyncio.sleep(0.1)
    late = [asyncio.ensure_future(_try(auth, "1001", p, "+12025550002")) for p in ("2222", "3333")]
    assert await first == "locked"  # its failure filled the window: 3 reserved, lock set
    await asyncio.gather(*late)  # two failures settle after the lock cleared the window
    assert not await store.exists(auth_failures("1001"))
    await asyncio.sleep(0.7)  # the lockout is over
    after = await auth.verify_pin("1001", Secret("4444"), "+12025550003")
    assert (after.ok, after.remaining) == (False, 2)  # a fresh window: this is its first failure


async def test_one_caller_trying_many_accounts_is_stopped(store: Store) -> None:
    accounts = SlowAccounts(delay=0.0)
    auth = _auth(store, accounts, caller_max_failures=4)
    spray = [await _try(auth, str(2000 + i), "1111", "+12025550177") for i in range(4)]
    assert spray == ["wrong", "wrong", "wrong", "locked"]
    assert await _try(auth, "2999", RIGHT, "+12025550177") == "locked"  # any account, even the right PIN
    assert await _try(auth, "2999", RIGHT, "+12025550178") == "ok"  # another caller is not affected
    assert sum(accounts.checks.values()) == 5


async def test_a_spray_from_many_caller_ids_trips_the_global_velocity_limit(store: Store) -> None:
    accounts = SlowAccounts(delay=0.0)
    auth = _auth(store, accounts, global_max_failures=6, global_window=30)
    spray = [await _try(auth, str(3000 + i), "1111", f"+1202555{i:04d}") for i in range(8)]
    assert spray[:6] == ["wrong"] * 6 and spray[6:] == ["locked", "locked"]
    assert sum(accounts.checks.values()) == 6


async def test_an_unknown_account_counts_like_a_wrong_pin(store: Store) -> None:
    accounts = SlowAccounts(delay=0.0)
    auth = _auth(store, accounts, max_failures=2)
    first = await auth.reject("9999", "+12025550166")
    assert (first.ok, first.remaining) == (False, 1)
    assert (await auth.reject("9999", "+12025550166")).locked
    assert accounts.checks == {}  # the backend is never asked about a number nobody has


async def test_a_check_the_backend_never_answered_is_not_counted(store: Store) -> None:
    accounts = SlowAccounts(delay=0.0, fail=True)
    auth = _auth(store, accounts, max_failures=2)
    for _ in range(3):
        with pytest.raises(BackendUnavailable):
            await auth.verify_pin("1001", Secret("1111"), "+12025550155")
    accounts.fail = False
    assert (await auth.verify_pin("1001", Secret("1111"), "+12025550155")).remaining == 1


async def test_ops_unlock_lifts_account_and_caller_locks(store: Store) -> None:
    accounts = SlowAccounts(delay=0.0)
    auth = _auth(store, accounts, max_failures=1, caller_max_failures=2)
    assert await _try(auth, "1001", "1111", "+12025550144") == "locked"
    assert await _try(auth, "1002", "1111", "+12025550144") == "locked"  # the caller's second failure
    assert await auth.lockout.unlock(account="1001")
    assert await _try(auth, "1001", RIGHT, "+12025550145") == "ok"
    assert await _try(auth, "1003", RIGHT, "+12025550144") == "locked"  # the caller id is still stopped
    assert await auth.lockout.unlock(caller_id="+12025550144")
    assert await _try(auth, "1003", RIGHT, "+12025550144") == "ok"
    assert not await auth.lockout.unlock(account="1003")  # nothing was locked

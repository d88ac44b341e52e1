"""PIN and card checks against the reference backend, with the lockout counted in a real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date

import pytest

from ivr.backends import BackendClient, HttpAccounts
from ivr.demo.refbackend import DEMO_PINS, Running, serve
from ivr.errors import AuthLocked, BackendUnavailable
from ivr.identity.auth import Auth, AuthSettings
from ivr.identity.secret import Secret
from ivr.store import Store, auth_failures, auth_lock, connect

KEY = Secret("test-otp-key-0123456789abcdef")


@pytest.fixture
async def backend() -> AsyncIterator[Running]:
    running = await serve()
    yield running
    await running.close()


@pytest.fixture
async def stores(redis_url: str) -> AsyncIterator[list[Store]]:
    """Two independent connections: two IVR processes (or two calls) sharing one Redis."""
    made = [connect(redis_url), connect(redis_url)]
    yield made
    for s in made:
        await s.close()


async def _auth(store: Store, backend: Running, **settings: float) -> tuple[Auth, BackendClient]:
    client = BackendClient("accounts", backend.url, timeout=2.0)
    return Auth(store, HttpAccounts(client), otp_key=KEY, settings=AuthSettings(**settings)), client  # type: ignore[arg-type]


async def test_right_pin_passes_and_resets_the_counter(backend: Running, stores: list[Store]) -> None:
    auth, client = await _auth(stores[0], backend)
    first = await auth.verify_pin("1001", Secret("0000"))
    assert (first.ok, first.remaining) == (False, 4)
    ok = await auth.verify_pin("1001", Secret(DEMO_PINS["1001"]))
    assert ok.ok and ok.remaining == 5 and not ok.locked
    assert not await stores[0].exists(auth_failures("1001"))
    await client.close()


async def test_lockout_counts_across_two_calls(backend: Running, stores: list[Store]) -> None:
    call1, c1 = await _auth(stores[0], backend)
    call2, c2 = await _auth(stores[1], backend)
    remaining = [(await call1.verify_pin("1002", Secret(p))).remaining for p in ("1111", "2222", "3333")]
    assert remaining == [4, 3, 2]  # the first call used its 3 tries
    assert (await call2.verify_pin("1002", Secret("4444"))).remaining == 1
    last = await call2.verify_pin("1002", Secret("5555"))
    assert last.locked
    assert await call1.is_locked("1002") and await call2.is_locked("1002")
    with pytest.raises(AuthLocked):  # even the right PIN is refused, before asking the backend
        await call1.verify_pin("1002", Secret(DEMO_PINS["1002"]))
    ttl = await stores[0].ttl(auth_lock("1002"))
    assert ttl is not None and 890 < ttl <= 900
    assert not await call1.is_locked("1001")  # other accounts are unaffected
    await c1.close()
    await c2.close()


async def test_lock_expires_after_the_lockout(backend: Running, stores: list[Store]) -> None:
    auth, client = await _auth(stores[0], backend, max_failures=2, lockout=0.4)
    await auth.verify_pin("1003", Secret("1111"))
    assert (await auth.verify_pin("1003", Secret("2222"))).locked
    with pytest.raises(AuthLocked):
        await auth.verify_pin("1003", Secret(DEMO_PINS["1003"]))
    await asyncio.sleep(0.5)
    assert not await auth.is_locked("1003")
    assert (await auth.verify_pin("1003", Secret(DEMO_PINS["1003"]))).ok
    await client.close()


async def test_failures_slide_out_of_the_window(backend: Running, stores: list[Store]) -> None:
    auth, client = await _auth(stores[0], backend, max_failures=3, failure_window=0.4)
    assert (await auth.reject("1003")).remaining == 2
    assert (await auth.reject("1003")).remaining == 1
    await asyncio.sleep(0.5)
    assert (await auth.reject("1003")).remaining == 2  # the old two are out of the window
    assert not await auth.is_locked("1003")
    await auth.reset("1003")
    assert (await auth.reject("1003")).remaining == 2
    await client.close()


async def test_card_and_dob_share_the_lockout(backend: Running, stores: list[Store]) -> None:
    auth, client = await _auth(stores[0], backend)
    assert (await auth.verify_card("1001", Secret("4242"), date(1980, 4, 12))).ok
    wrong_dob = await auth.verify_card("1001", Secret("4242"), date(1980, 4, 13))
    assert (wrong_dob.ok, wrong_dob.remaining) == (False, 4)
    for pin in ("1", "22", "333"):  # malformed PINs are failures without a backend call
        await auth.verify_pin("1001", Secret(pin))
    assert (await auth.verify_card("1001", Secret("4343"), date(1980, 4, 12))).locked
    with pytest.raises(AuthLocked):
        await auth.verify_card("1001", Secret("4242"), date(1980, 4, 12))
    await client.close()


async def test_backend_failure_is_not_a_wrong_pin(stores: list[Store]) -> None:
    from lab.redis_server import free_port

    client = BackendClient("accounts", f"http://127.0.0.1:{free_port()}", timeout=0.5, retries=0)
    auth = Auth(stores[0], HttpAccounts(client), otp_key=KEY)
    with pytest.raises(BackendUnavailable):
        await auth.verify_pin("1001", Secret("2468"))
    assert not await stores[0].exists(auth_failures("1001"))
    await client.close()

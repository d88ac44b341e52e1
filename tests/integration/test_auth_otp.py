"""One-time codes in a real Redis: issue, verify once, expiry, attempts, send limit, SMS delivery."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from ivr.demo.refbackend import Running
from ivr.demo.smssink import serve as serve_sink
from ivr.errors import AuthLocked, BackendUnavailable
from ivr.identity.auth import Auth, AuthSettings, OtpRateLimited, OtpResult
from ivr.identity.secret import Secret
from ivr.identity.sms import HttpSmsGateway
from ivr.store import Store, connect, otp_code
from lab.redis_server import free_port

KEY = Secret("test-otp-key-0123456789abcdef")
PHONE = "+12025550101"


class NoAccounts:
    """OTP never asks the accounts backend."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected backend call {name}")


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[Store]:
    s = connect(redis_url)
    yield s
    await s.close()


@pytest.fixture
async def sink() -> AsyncIterator[Running]:
    running = await serve_sink()
    yield running
    await running.close()


def _auth(store: Store, sms: HttpSmsGateway | None = None, **settings: Any) -> Auth:
    return Auth(store, NoAccounts(), otp_key=KEY, sms=sms, settings=AuthSettings(**settings))


def _other(code: Secret) -> Secret:
    return Secret(f"{(int(code.reveal()) + 1) % 1_000_000:06d}")


async def test_issued_code_verifies_once(store: Store) -> None:
    auth = _auth(store)
    code = await auth.otp.issue("1001", PHONE)
    assert len(code.reveal()) == 6 and code.reveal().isdigit()
    assert await auth.otp.verify("1001", code) is OtpResult.OK
    assert await auth.otp.verify("1001", code) is OtpResult.USED  # reuse refused
    assert await auth.otp.verify("1001", _other(code)) is OtpResult.USED


async def test_code_is_stored_only_as_a_hash_with_its_ttl(store: Store, redis_url: str) -> None:
    auth = _auth(store)
    code = await auth.otp.issue("1001", PHONE)
    ttl = await store.ttl(otp_code("1001"))
    assert ttl is not None and 295 < ttl <= 300
    dump = []
    async for key in store.redis.scan_iter():
        kind = await store.redis.type(key)
        dump.append(str(await store.redis.hgetall(key) if kind == "hash" else await store.redis.get(key)))
    assert code.reveal() not in " ".join(dump)


async def test_wrong_then_right_and_attempts_exhausted(store: Store) -> None:
    auth = _auth(store)
    code = await auth.otp.issue("1001", PHONE)
    assert await auth.otp.verify("1001", _other(code)) is OtpResult.WRONG
    assert await auth.otp.verify("1001", code) is OtpResult.OK
    code = await auth.otp.issue("1001", PHONE)
    results = [await auth.otp.verify("1001", _other(code)) for _ in range(3)]
    assert results == [OtpResult.WRONG, OtpResult.WRONG, OtpResult.TOO_MANY_ATTEMPTS]
    assert await auth.otp.verify("1001", code) is OtpResult.TOO_MANY_ATTEMPTS  # the code is burnt


async def test_expired_and_never_issued_codes_are_refused(store: Store) -> None:
    auth = _auth(store, otp_ttl=0.3)
    assert await auth.otp.verify("1002", Secret("123456")) is OtpResult.EXPIRED
    code = await auth.otp.issue("1002", "+390212345678")
    await asyncio.sleep(0.4)
    assert await auth.otp.verify("1002", code) is OtpResult.EXPIRED


async def test_new_code_replaces_old_and_codes_are_bound_to_the_account(store: Store) -> None:
    auth = _auth(store)
    old = await auth.otp.issue("1001", PHONE)
    new = await auth.otp.issue("1001", PHONE)
    if old != new:
        assert await auth.otp.verify("1001", old) is OtpResult.WRONG
    other = await auth.otp.issue("1003", "+12025550103")
    if other != new:
        assert await auth.otp.verify("1003", new) is OtpResult.WRONG
    assert await auth.otp.verify("1001", new) is OtpResult.OK


async def test_sends_are_rate_limited_per_phone(store: Store) -> None:
    auth = _auth(store, otp_send_window=0.5)
    for _ in range(3):
        await auth.otp.issue("1001", PHONE)
    live = await store.redis.hgetall(otp_code("1001"))
    with pytest.raises(OtpRateLimited) as caught:
        await auth.otp.issue("1001", PHONE)
    assert isinstance(caught.value, AuthLocked)
    assert await store.redis.hgetall(otp_code("1001")) == live  # the refused send changed nothing
    await auth.otp.issue("1003", "+12025550103")  # another number is not limited
    await asyncio.sleep(0.6)
    await auth.otp.issue("1001", PHONE)


async def test_code_reaches_the_sms_sink_and_verifies(store: Store, sink: Running) -> None:
    gateway = HttpSmsGateway(sink.url + "/messages", timeout=2.0)
    auth = _auth(store, gateway)
    await auth.otp.send("1002", "+390212345678", language="it")
    async with aiohttp.ClientSession() as http:
        async with http.get(sink.url + "/messages", params={"to": "+390212345678"}) as resp:
            messages = (await resp.json())["messages"]
    assert len(messages) == 1 and "codice" in messages[0]["text"]
    code = Secret("".join(ch for ch in messages[0]["text"] if ch.isdigit())[:6])
    assert await auth.otp.verify("1002", code) is OtpResult.OK
    await gateway.close()


async def test_failed_send_drops_the_code(store: Store) -> None:
    gateway = HttpSmsGateway(f"http://127.0.0.1:{free_port()}/messages", timeout=0.5, retries=0)
    auth = _auth(store, gateway)
    with pytest.raises(BackendUnavailable):
        await auth.otp.send("1001", PHONE)
    assert not await store.exists(otp_code("1001"))
    await gateway.close()

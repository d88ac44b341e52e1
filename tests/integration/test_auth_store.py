"""Redis outages: auth fails fast with StoreUnavailable and recovers by itself when Redis is back."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from ivr.errors import StoreUnavailable
from ivr.identity.auth import Auth, OtpResult
from ivr.identity.secret import Secret
from ivr.store import Store, StoreSettings, connect
from lab.redis_server import RedisServer

KEY = Secret("test-otp-key-0123456789abcdef")


class NoAccounts:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected backend call {name}")


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[Store]:
    s = connect(redis_url)
    yield s
    await s.close()


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A port that accepts TCP connections and never answers (a hung Redis)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    server.close()


async def _timed(coro: Any) -> float:
    start = time.monotonic()
    with pytest.raises(StoreUnavailable):
        await coro
    return time.monotonic() - start


async def test_stopped_redis_fails_fast_and_recovers(store: Store, redis_server: RedisServer) -> None:
    auth = Auth(store, NoAccounts(), otp_key=KEY)
    code = await auth.otp.issue("1001", "+12025550101")
    assert await store.ping()
    redis_server.stop()
    try:
        for op in (auth.is_locked("1001"), auth.reject("1001"), auth.reset("1001"),
                   auth.otp.issue("1001", "+12025550101"), auth.otp.verify("1001", code)):
            assert await _timed(op) < 1.0
        assert not await store.ping()
    finally:
        redis_server.start()
    # the same Store (its pooled connections died with the server) works again; AOF kept the data
    assert await store.ping()
    assert await auth.is_locked("1001") is False
    assert (await auth.reject("1001")).remaining == 4
    assert await auth.otp.verify("1001", code) is OtpResult.OK  # Lua scripts are re-loaded


async def test_hung_redis_times_out_in_half_a_second(black_hole: str) -> None:
    store = connect(black_hole)
    try:
        assert await _timed(store.exists("ivr:x")) < 0.8
        assert await _timed(store.set("ivr:x", "1", ttl=1)) < 0.8
    finally:
        await store.close()


async def test_unreachable_redis_at_start_up_is_not_fatal() -> None:
    from lab.redis_server import free_port

    store = connect(f"redis://127.0.0.1:{free_port()}/0")
    assert not await store.ping()
    assert await _timed(store.get("ivr:x")) < 1.0
    await store.close()


async def test_pool_waits_instead_of_failing_when_exhausted(redis_url: str) -> None:
    store = connect(redis_url, StoreSettings(max_connections=2, pool_timeout=2.0, op_timeout=3.0))
    try:
        results = await asyncio.gather(*(store.incr_window("ivr:test:count", 10) for _ in range(40)))
        assert sorted(results) == list(range(1, 41))
    finally:
        await store.close()


async def test_restart_between_calls_is_invisible(store: Store, redis_server: RedisServer) -> None:
    """Pooled connections die with the server; the next command re-dials instead of failing."""
    await asyncio.gather(*(store.exists(f"ivr:k{i}") for i in range(5)))  # fill the pool
    redis_server.stop()
    redis_server.start()
    assert await store.exists("ivr:k0") is False

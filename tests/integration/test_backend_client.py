"""The backend client against real sockets: refused, slow, 5xx, garbage, retries and the circuit."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from aiohttp import web

from ivr.backends import BackendClient, BackendNotFound, CircuitBreaker
from ivr.demo.refbackend import Running, start_site
from ivr.errors import BackendError, BackendTimeout, BackendUnavailable
from ivr.identity.secret import Secret
from lab.redis_server import free_port


def _state(breaker: CircuitBreaker) -> str:
    return breaker.state  # (read through a function: mypy would narrow the property between calls)


class Fake:
    """A misbehaving backend; `hits` counts requests per path."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.flaky_failures = 2
        self.headers: dict[str, str] = {}

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{name}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.hits[name] += 1
        self.headers = dict(request.headers)
        if name == "ok":
            return web.json_response({"amount": 12.10, "echo": await request.json() if request.can_read_body
                                      else None})
        if name == "slow":
            await asyncio.sleep(0.8)
            return web.json_response({})
        if name == "error":
            return web.json_response({"error": "boom"}, status=500)
        if name == "garbage":
            return web.Response(text="<html>oops", content_type="application/json")
        if name == "missing":
            return web.json_response({"error": "no"}, status=404)
        if name == "bad":
            return web.json_response({"error": "no"}, status=422)
        if name == "flaky":
            if self.hits[name] <= self.flaky_failures:
                return web.json_response({}, status=503)
            return web.json_response({"ok": True})
        if name == "empty":
            return web.Response(status=204)
        raise web.HTTPNotFound()


@pytest.fixture
async def fake() -> AsyncIterator[tuple[Fake, Running]]:
    f = Fake()
    running = await start_site(f.app())
    yield f, running
    await running.close()


async def _client(url: str, **kw: object) -> BackendClient:
    return BackendClient("test", url, **kw)  # type: ignore[arg-type]


async def test_ok_json_and_decimal_numbers(fake: tuple[Fake, Running]) -> None:
    f, srv = fake
    c = BackendClient("test", srv.url, headers={"Authorization": Secret("Bearer s3cr3t-token")})
    assert (await c.get("/ok"))["amount"] == Decimal("12.10")
    assert (await c.post("/ok", {"x": 1}))["echo"] == {"x": 1}
    assert f.headers["Authorization"] == "Bearer s3cr3t-token"
    assert await c.get("/empty") is None
    await c.close()


async def test_refused_connection_is_unavailable_after_bounded_retries() -> None:
    c = BackendClient("test", f"http://127.0.0.1:{free_port()}", retries=2, backoff=0.01)
    start = time.monotonic()
    with pytest.raises(BackendUnavailable, match="cannot connect"):
        await c.post("/anything", {})  # refused: safe to retry even a POST (nothing was sent)
    assert time.monotonic() - start < 0.5
    await c.close()


async def test_slow_backend_times_out_within_its_budget(fake: tuple[Fake, Running]) -> None:
    f, srv = fake
    c = BackendClient("test", srv.url, timeout=0.3)
    start = time.monotonic()
    with pytest.raises(BackendTimeout):
        await c.get("/slow")
    assert 0.25 < time.monotonic() - start < 0.6
    assert f.hits["slow"] == 1  # a timeout is never retried
    await c.close()


async def test_http_500_retried_for_get_only(fake: tuple[Fake, Running]) -> None:
    f, srv = fake
    c = BackendClient("test", srv.url, retries=2, backoff=0.01)
    with pytest.raises(BackendUnavailable, match="HTTP 500"):
        await c.get("/error")
    assert f.hits["error"] == 3
    with pytest.raises(BackendUnavailable, match="HTTP 500"):
        await c.post("/error", {})
    assert f.hits["error"] == 4  # a POST that reached the backend is not repeated
    await c.close()


async def test_transient_503_recovers_on_retry(fake: tuple[Fake, Running]) -> None:
    f, srv = fake
    c = BackendClient("test", srv.url, retries=2, backoff=0.01)
    assert await c.get("/flaky") == {"ok": True}
    assert f.hits["flaky"] == 3
    await c.close()


async def test_malformed_json_is_unavailable_without_retry(fake: tuple[Fake, Running]) -> None:
    f, srv = fake
    c = BackendClient("test", srv.url, retries=2)
    with pytest.raises(BackendUnavailable, match="malformed JSON"):
        await c.get("/garbage")
    assert f.hits["garbage"] == 1
    await c.close()


async def test_4xx_are_errors_but_not_faults(fake: tuple[Fake, Running]) -> None:
    f, srv = fake
    c = BackendClient("test", srv.url, breaker=CircuitBreaker("test", failure_threshold=1))
    with pytest.raises(BackendNotFound):
        await c.get("/missing")
    with pytest.raises(BackendError) as caught:
        await c.post("/bad", {})
    assert not isinstance(caught.value, (BackendUnavailable, BackendTimeout))
    assert _state(c.breaker) == "closed"
    await c.close()


async def test_circuit_opens_fails_fast_and_half_opens(fake: tuple[Fake, Running]) -> None:
    f, srv = fake
    breaker = CircuitBreaker("test", failure_threshold=3, reset_timeout=0.3)
    c = BackendClient("test", srv.url, retries=0, timeout=0.2, breaker=breaker)
    for path in ("/error", "/garbage", "/slow"):  # three different faults in a row
        with pytest.raises(BackendError):
            await c.get(path)
    assert _state(breaker) == "open"
    hits = sum(f.hits.values())
    start = time.monotonic()
    with pytest.raises(BackendUnavailable, match="circuit open"):
        await c.get("/ok")
    assert time.monotonic() - start < 0.05
    assert sum(f.hits.values()) == hits  # the backend was not contacted
    await asyncio.sleep(0.35)
    assert _state(breaker) == "half-open"
    with pytest.raises(BackendUnavailable):  # the trial fails: open again
        await c.get("/error")
    assert _state(breaker) == "open"
    await asyncio.sleep(0.35)
    assert (await c.get("/ok"))["amount"] == Decimal("12.10")  # the trial succeeds: closed
    assert _state(breaker) == "closed"
    await c.close()

"""The HTTP SMS gateway client against the sink and against failing gateways."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from ivr.demo.refbackend import Running, start_site
from ivr.demo.smssink import SINK, SmsSink
from ivr.demo.smssink import serve as serve_sink
from ivr.errors import BackendTimeout, BackendUnavailable
from ivr.identity.secret import Secret
from ivr.identity.sms import HttpSmsGateway
from lab.redis_server import free_port


@pytest.fixture
async def sink(tmp_path: Path) -> AsyncIterator[Running]:
    running = await serve_sink(jsonl=tmp_path / "sms.jsonl", token=Secret("sink-token-123456"))
    yield running
    await running.close()


def _gateway(sink: Running, **kw: object) -> HttpSmsGateway:
    auth = Secret("Bearer sink-token-123456")
    return HttpSmsGateway(sink.url + "/messages", auth_header=auth, **kw)  # type: ignore[arg-type]


async def test_message_reaches_the_sink_and_can_be_read_back(
    sink: Running, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    gateway = _gateway(sink)
    message_id = await gateway.send("+12025550101", Secret("Your code is 774411"))
    await gateway.send("+390212345678", Secret("Il tuo codice è 665522"))
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer sink-token-123456"}) as http:
        async with http.get(sink.url + "/messages", params={"to": "+12025550101"}) as resp:
            messages = (await resp.json())["messages"]
        async with http.get(sink.url + "/messages?to=+12025550101") as resp:  # unencoded "+" too
            assert (await resp.json())["messages"] == messages
    assert [(m["id"], m["from"], m["text"]) for m in messages] == [(message_id, "IVR", "Your code is 774411")]
    lines = [json.loads(line) for line in (tmp_path / "sms.jsonl").read_text().splitlines()]
    assert [m["to"] for m in lines] == ["+12025550101", "+390212345678"]
    assert "774411" not in caplog.text and "665522" not in caplog.text  # the text is never logged
    await gateway.close()


async def test_sink_refuses_without_token_and_drops_duplicates(sink: Running) -> None:
    body = {"id": "m1", "to": "+12025550101", "text": "hello"}
    async with aiohttp.ClientSession() as http:
        async with http.post(sink.url + "/messages", json=body) as resp:
            assert resp.status == 401
        headers = {"Authorization": "Bearer sink-token-123456"}
        for expected in ("accepted", "duplicate"):
            async with http.post(sink.url + "/messages", json=body, headers=headers) as resp:
                assert (await resp.json())["status"] == expected
        async with http.post(sink.url + "/messages", json={**body, "to": "555"}, headers=headers) as resp:
            assert resp.status == 400
        for method in ("GET", "DELETE"):  # reading or clearing the messages needs the token too
            for wrong in ({}, {"Authorization": "Bearer wrong"}):
                async with http.request(method, sink.url + "/messages", headers=wrong) as resp:
                    assert resp.status == 401 and "hello" not in await resp.text()
        async with http.get(sink.url + "/health") as resp:
            assert resp.status == 200  # health stays open
        async with http.delete(sink.url + "/messages", headers=headers) as resp:
            assert resp.status == 200
    assert sink.app[SINK].received() == []
    gateway = HttpSmsGateway(sink.url + "/messages", retries=0)
    with pytest.raises(BackendUnavailable) as caught:
        await gateway.send("+12025550101", Secret("no token"))
    assert "401" in str(caught.value)
    await gateway.close()


async def test_retries_a_failing_gateway_with_the_same_message_id() -> None:
    seen: list[tuple[str, str]] = []

    async def flaky(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append((body["id"], request.headers["Idempotency-Key"]))
        return web.json_response({}, status=503 if len(seen) < 3 else 202)

    app = web.Application()
    app.router.add_post("/send", flaky)
    srv = await start_site(app)
    gateway = HttpSmsGateway(srv.url + "/send", retries=2, backoff=0.01)
    try:
        message_id = await gateway.send("+12025550101", Secret("code 123456"))
        assert len(seen) == 3 and {s for pair in seen for s in pair} == {message_id}
    finally:
        await gateway.close()
        await srv.close()


async def test_gateway_down_or_slow_maps_to_backend_errors() -> None:
    down = HttpSmsGateway(f"http://127.0.0.1:{free_port()}/messages", retries=1, backoff=0.01)
    with pytest.raises(BackendUnavailable):
        await down.send("+12025550101", Secret("x"))
    await down.close()

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.8)
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/send", slow)
    srv = await start_site(app)
    gateway = HttpSmsGateway(srv.url + "/send", timeout=0.3)
    start = time.monotonic()
    try:
        with pytest.raises(BackendTimeout):
            await gateway.send("+12025550101", Secret("x"))
        assert time.monotonic() - start < 0.6
    finally:
        await gateway.close()
        await srv.close()


async def test_refuses_numbers_that_are_not_e164() -> None:
    gateway = HttpSmsGateway("http://127.0.0.1:9/messages")
    for bad in ("2025550101", "+0123456", "+1 555 123", ""):
        with pytest.raises(ValueError):
            await gateway.send(bad, Secret("x"))
    await gateway.close()


def test_sink_keeps_a_bounded_history() -> None:
    sink = SmsSink()
    assert sink.messages.maxlen is not None and sink.messages.maxlen >= 100

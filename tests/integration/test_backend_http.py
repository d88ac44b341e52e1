"""The HTTP backends against the reference backend: typed results, unknowns, and injected faults."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from decimal import Decimal

import aiohttp
import pytest
from aiohttp import web

from ivr.backends import BackendClient, Backends, HttpAccounts, HttpCustomerDirectory, Interaction, http_backends
from ivr.demo.refbackend import DEMO_PINS, Running, serve, start_site
from ivr.demo.smssink import SINK
from ivr.demo.smssink import serve as serve_sink
from ivr.errors import BackendTimeout, BackendUnavailable
from ivr.identity.secret import Secret


@pytest.fixture
async def stack() -> AsyncIterator[tuple[Backends, Running, Running]]:
    sink = await serve_sink()
    backend = await serve(sms_url=sink.url + "/messages", faults=True)
    backends = http_backends(backend.url, timeouts={"accounts": 0.4, "orders": 0.4}, retries=1)
    yield backends, backend, sink
    await backends.close()
    await backend.close()
    await sink.close()


async def _faults(backend: Running, **faults: object) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.put(backend.url + "/_faults", json=faults) as resp:
            assert resp.status == 200, await resp.text()


async def test_directory_finds_demo_customers(stack: tuple[Backends, Running, Running]) -> None:
    backends = stack[0]
    vip = await backends.directory.by_caller_id("+12025550101")
    assert vip is not None and (vip.id, vip.name, vip.tier, vip.language) == ("1001", "Alice Morgan", "vip", "en")
    assert [o.number for o in vip.open_orders] == ["50001", "50002"]  # delivered 50003 is not open
    assert vip.open_orders[0].eta == date.today() + timedelta(days=2)
    italian = await backends.directory.by_caller_id("+390212345678")
    assert italian is not None and italian.language == "it" and italian.name == "Giulia Rossi"
    bob = await backends.directory.by_id("1003")
    assert bob is not None and bob.tier == "standard" and bob.open_cases == ("CASE-0001",)
    assert await backends.directory.by_caller_id("+15550000000") is None
    assert await backends.directory.by_id("C9999") is None
    assert await backends.directory.by_id("../1001") is None  # cannot escape its path segment


async def test_accounts_pin_card_and_balance(stack: tuple[Backends, Running, Running]) -> None:
    accounts = stack[0].accounts
    assert await accounts.verify_pin("1002", Secret(DEMO_PINS["1002"])) is True
    assert await accounts.verify_pin("1002", Secret("0000")) is False
    assert await accounts.verify_card("1002", Secret("1881"), date(1975, 9, 30)) is True
    assert await accounts.verify_card("1002", Secret("1881"), date(1975, 9, 29)) is False
    usd = await accounts.balance("1001")
    assert (usd.account, usd.amount, usd.currency) == ("ACC-1001", Decimal("12345.67"), "USD")
    eur = await accounts.balance("1002")
    assert (eur.amount, eur.currency) == (Decimal("1234.50"), "EUR")


async def test_orders_are_scoped_to_their_customer(stack: tuple[Backends, Running, Running]) -> None:
    orders = stack[0].orders
    shipped = await orders.status("1002", "60001")
    assert shipped is not None and shipped.state == "shipped" and shipped.eta == date.today() + timedelta(days=1)
    cancelled = await orders.status("1002", "60002")
    assert cancelled is not None and cancelled.state == "cancelled" and cancelled.eta is None
    assert await orders.status("1003", "60001") is None  # someone else's order
    assert await orders.status("1002", "Z0000") is None


async def test_password_reset_texts_the_number_on_file(stack: tuple[Backends, Running, Running]) -> None:
    backends, _, sink = stack
    ticket = await backends.password_reset.reset("1002")
    assert ticket.ticket.startswith("RST-") and ticket.sent_to == "•••5678"
    received = sink.app[SINK].received("+390212345678")
    assert len(received) == 1 and "Reimposta la password" in received[0]["text"]


async def test_crm_records_interactions(stack: tuple[Backends, Running, Running]) -> None:
    crm = stack[0].crm
    first = await crm.record(Interaction("1001", "balance", "self-served", "heard balance", call_id="1.23"))
    second = await crm.record(Interaction("1001", "transfer", "agent"))
    assert first.startswith("CASE-") and first != second


async def test_injected_faults_map_to_errors(stack: tuple[Backends, Running, Running]) -> None:
    backends, backend, _ = stack
    await _faults(backend, delay_ms=700, path_prefix="/customers/1001/balance", count=1)
    with pytest.raises(BackendTimeout):
        await backends.accounts.balance("1001")
    await _faults(backend, status=500, path_prefix="/customers/1001/orders", count=2)
    with pytest.raises(BackendUnavailable, match="HTTP 500"):
        await backends.orders.status("1001", "50001")  # GET retried once: both faulted
    assert await backends.orders.status("1001", "50001") is not None  # count used up
    await _faults(backend, malformed=True, path_prefix="/customers/by-phone", count=1)
    with pytest.raises(BackendUnavailable, match="malformed"):
        await backends.directory.by_caller_id("+12025550101")
    assert await backends.directory.by_caller_id("+12025550101") is not None


async def test_replies_of_the_wrong_shape_are_unavailable() -> None:
    async def wrong(request: web.Request) -> web.Response:
        return web.json_response({"verified": "yes", "id": "C1"} if request.method == "POST" else [1, 2])

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", wrong)
    srv = await start_site(app)
    client = BackendClient("shape", srv.url)
    try:
        with pytest.raises(BackendUnavailable, match="unexpected reply"):
            await HttpAccounts(client).verify_pin("C1", Secret("1234"))
        with pytest.raises(BackendUnavailable, match="unexpected reply"):
            await HttpCustomerDirectory(client).by_id("C1")
    finally:
        await client.close()
        await srv.close()


async def test_unknown_customer_fails_verification_quietly(stack: tuple[Backends, Running, Running]) -> None:
    accounts = stack[0].accounts
    assert await accounts.verify_pin("C9999", Secret("1234")) is False
    assert await accounts.verify_card("C9999", Secret("1234"), date(1990, 1, 1)) is False
    with pytest.raises(ValueError, match="unknown backend"):
        http_backends("http://x", timeouts={"acounts": 1.0})

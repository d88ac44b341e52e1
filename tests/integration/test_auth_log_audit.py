"""Log audit: a full auth run at DEBUG level must not put a PIN, card digits or a one-time code in any log.

The redacting filter is deliberately NOT installed here: this proves the first line of defence (code
that never logs secrets); the filter is the second, tested in tests/unit/test_secret.py.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from datetime import date

import aiohttp
import pytest

from ivr.backends import http_backends
from ivr.demo.refbackend import DEMO_PINS, Running, serve
from ivr.demo.smssink import serve as serve_sink
from ivr.errors import AuthLocked, BackendUnavailable
from ivr.identity.auth import Auth, AuthSettings, OtpResult
from ivr.identity.secret import Secret
from ivr.identity.sms import HttpSmsGateway
from ivr.store import connect
from lab.redis_server import free_port

KEY = Secret("audit-otp-key-0123456789abcdef")


@pytest.fixture
async def services() -> AsyncIterator[tuple[Running, Running]]:
    sink = await serve_sink()
    backend = await serve(sms_url=sink.url + "/messages")
    yield backend, sink
    await backend.close()
    await sink.close()


def _all_output(caplog: pytest.LogCaptureFixture) -> str:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(formatter.format(r) + repr(r.args) for r in caplog.records)


async def test_no_secret_in_any_log_line(
    caplog: pytest.LogCaptureFixture, redis_url: str, services: tuple[Running, Running],
) -> None:
    backend, sink = services
    caplog.set_level(logging.DEBUG)
    store = connect(redis_url)
    backends = http_backends(backend.url)
    gateway = HttpSmsGateway(sink.url + "/messages")
    auth = Auth(store, backends.accounts, otp_key=KEY, sms=gateway, settings=AuthSettings(max_failures=4))
    secrets_used = ["9137", "8264", DEMO_PINS["1001"], DEMO_PINS["1003"], "4242", "1980-04-12"]

    assert not (await auth.verify_pin("1001", Secret("9137"))).ok
    assert (await auth.verify_pin("1001", Secret(DEMO_PINS["1001"]))).ok
    assert (await auth.verify_card("1001", Secret("4242"), date(1980, 4, 12))).ok
    for _ in range(4):
        await auth.verify_pin("1003", Secret("8264"))
    with pytest.raises(AuthLocked):
        await auth.verify_pin("1003", Secret(DEMO_PINS["1003"]))

    await auth.otp.send("1001", "+12025550101")
    async with aiohttp.ClientSession() as http:
        async with http.get(sink.url + "/messages", params={"to": "+12025550101"}) as resp:
            text = (await resp.json())["messages"][-1]["text"]
    code = re.search(r"\d{6}", text)
    assert code is not None
    secrets_used.append(code.group())
    assert await auth.otp.verify("1001", Secret(code.group()[::-1])) in (OtpResult.WRONG, OtpResult.OK)
    assert await auth.otp.verify("1001", Secret(code.group())) in (OtpResult.OK, OtpResult.USED)
    issued = await auth.otp.issue("1003", "+12025550103")
    secrets_used.append(issued.reveal())
    reset = await backends.password_reset.reset("1003")  # the reset link token must not be logged
    async with aiohttp.ClientSession() as http:
        async with http.get(sink.url + "/messages", params={"to": "+12025550103"}) as resp:
            link = (await resp.json())["messages"][-1]["text"]
    secrets_used.append(link.rsplit("/", 1)[-1])
    assert reset.sent_to.endswith("0103")

    dead = HttpSmsGateway(f"http://127.0.0.1:{free_port()}/messages", retries=1, timeout=0.5)
    with pytest.raises(BackendUnavailable):
        await Auth(store, backends.accounts, otp_key=KEY, sms=dead).otp.send("1002", "+390212345678")

    await dead.close()
    await gateway.close()
    await backends.close()
    await store.close()

    output = _all_output(caplog)
    loggers = {r.name for r in caplog.records}
    assert {"ivr" + ".auth", "ivr" + ".sms", "aiohttp.access"} <= loggers  # it did log (names, not modules)
    for value in secrets_used:
        assert not re.search(rf"(?<![\d\w]){re.escape(value)}(?![\d\w])", output), f"{value!r} leaked into logs"

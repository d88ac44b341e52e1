"""The demo line with its identity stack: real Redis, the reference backend and the SMS sink, over AGI."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from ivr.testing import FakeAsterisk
from tests.identitykit import ALICE, BOB, GIULIA, Identity, identity_stack


async def call(ident: Identity, keys: str, caller: str = "", **kw: Any) -> tuple[dict[str, Any], FakeAsterisk]:
    fake = FakeAsterisk(keys, env={"callerid": caller or "unknown"}, describe=ident.app.prompts.describe, **kw)
    await fake.call("127.0.0.1", ident.app.agi.port, "main")
    return ident.app.journeys.recent[-1], fake


def said(journey: dict[str, Any]) -> list[str]:
    return [p for e in journey["journey"] if e["kind"] == "prompt" for p in e["prompts"]]


async def test_known_caller_greeted_by_name_hears_balance(tmp_path: Path, redis_url: str) -> None:
    async with identity_stack(tmp_path, redis_url) as ident:
        lines: list[str] = []
        journey, fake = await call(ident, "1 2468# 9", ALICE, echo=lines.append)
    assert journey["outcome"] == "hangup"
    assert said(journey)[:2] == ["greet-known", "enter-pin"]  # "1" barged into the greeting: menu skipped
    assert any("Hello Alice, welcome back." in line for line in lines)  # identify.greet = first (default)
    assert not any("Morgan" in line for line in lines)
    says = [c for c in fake.transcript.commands if c.startswith("SAY NUMBER")]
    assert says[:2] == ['SAY NUMBER 12345 ""', 'SAY NUMBER 67 ""']
    assert "currency-dollars" in said(journey) and "currency-cents" in said(journey)


async def test_italian_customer_hears_order_status_in_italian(tmp_path: Path, redis_url: str) -> None:
    async with identity_stack(tmp_path, redis_url) as ident:
        lines: list[str] = []
        journey, fake = await call(ident, "2 1357# 60001# 9", GIULIA, echo=lines.append)
    assert journey["language"] == "it" and journey["outcome"] == "hangup"
    assert any("Lo stato del tuo ordine 6 0 0 0 1 è: in viaggio." in line for line in lines)
    assert any(c.startswith("SAY DATE") for c in fake.transcript.commands)


async def test_unknown_caller_keys_account_then_pin(tmp_path: Path, redis_url: str) -> None:
    async with identity_stack(tmp_path, redis_url) as ident:
        journey, _ = await call(ident, "1 1 1003# 9753# 9")
    assert journey["outcome"] == "hangup" and "balance-is" in said(journey)


async def test_wrong_pin_three_times_then_agent_with_reason(tmp_path: Path, redis_url: str) -> None:
    async with identity_stack(tmp_path, redis_url) as ident:
        journey, fake = await call(ident, "1 1111# 2222# 3333#", BOB)
    assert journey["outcome"] == "queue:support"
    assert said(journey).count("auth-failed") == 3
    assert 'SET VARIABLE "__IVR_REASON" "pin-failed"' in fake.transcript.commands
    assert 'SET VARIABLE "__IVR_AUTH" "identified"' in fake.transcript.commands


async def test_lockout_counts_across_calls(tmp_path: Path, redis_url: str) -> None:
    async with identity_stack(tmp_path, redis_url) as ident:
        first, _ = await call(ident, "1 1111# 2222# 3333#", BOB)
        second, fake = await call(ident, "1 4444# 5555#", BOB)
        third, _ = await call(ident, "1", BOB)
    assert first["outcome"] == "queue:support"
    assert "auth-locked" in said(second) and 'SET VARIABLE "__IVR_REASON" "locked"' in fake.transcript.commands
    assert "auth-locked" in said(third) and "enter-pin" not in said(third)  # locked before asking


async def test_password_reset_with_otp_from_the_sms(tmp_path: Path, redis_url: str) -> None:
    async with identity_stack(tmp_path, redis_url) as ident:
        fake = FakeAsterisk("3 9753#", env={"callerid": BOB}, describe=ident.app.prompts.describe)
        sent = {"n": 0}

        def read_code() -> str:   # the caller reads the code off their phone, then keys it
            sent["n"] += 1
            return f"{ident.last_code(BOB)}# 9" if sent["n"] == 1 else "h"

        fake.script.ask = read_code
        await fake.call("127.0.0.1", ident.app.agi.port, "main")
        journey = ident.app.journeys.recent[-1]
        assert "password-reset-done" in said(journey) and journey["outcome"] == "hangup"
        reset_sms = ident.sink.received(BOB)[-1]
        assert "reset" in reset_sms["text"].lower()


async def test_reused_code_is_refused(tmp_path: Path, redis_url: str) -> None:
    async with identity_stack(tmp_path, redis_url) as ident:
        codes: list[str] = []

        def first_call() -> str:
            codes.append(ident.last_code(BOB))
            return f"{codes[0]}# 9"

        fake = FakeAsterisk("3 9753#", env={"callerid": BOB})
        fake.script.ask = first_call
        await fake.call("127.0.0.1", ident.app.agi.port, "main")
        # a second call sends a new code; keying the old one fails every time
        fake = FakeAsterisk("3 9753#", env={"callerid": BOB})
        fake.script.ask = lambda: f"{codes[0]}# {codes[0]}# {codes[0]}#"
        await fake.call("127.0.0.1", ident.app.agi.port, "main")
        journey = ident.app.journeys.recent[-1]
        results = [e.get("result") for e in journey["journey"] if e["kind"] == "auth" and e.get("method") == "otp"]
        assert results and all(r != "ok" for r in results)
        assert journey["outcome"] == "queue:support"


@pytest.mark.parametrize("fault", [{"status": 500}, {"malformed": True}, {"delay_ms": 6000}])
async def test_backend_failure_apologises_then_agent(tmp_path: Path, redis_url: str, fault: dict[str, Any]) -> None:
    async with identity_stack(tmp_path, redis_url) as ident:
        await ident.faults(path_prefix="/customers/1003/balance", **fault)
        journey, _ = await call(ident, "1 9753#", BOB)
    assert journey["outcome"] == "queue:support"
    heard = said(journey)
    assert heard.index("apology") < heard.index("transfer-agent")
    if fault.get("delay_ms"):
        assert "please-wait" in heard  # the filler played while the backend was slow


async def test_backend_refused_still_reaches_a_human(tmp_path: Path, redis_url: str) -> None:
    async with identity_stack(tmp_path, redis_url, backends_url="http://127.0.0.1:9") as ident:
        journey, _ = await call(ident, "1 1 1003#", BOB)
    assert journey["outcome"] == "queue:support"


async def test_redis_down_callers_still_reach_a_human(tmp_path: Path, redis_server: Any, redis_url: str) -> None:
    async with identity_stack(tmp_path, redis_url) as ident:
        redis_server.stop()
        journey, _ = await call(ident, "1 9753#", BOB)
        assert journey["outcome"] == "queue:support" and "apology" in said(journey)
        journey, _ = await call(ident, "0", BOB)   # paths without Redis still work
        assert journey["outcome"] == "queue:support"


async def test_no_secret_reaches_a_log_or_journey(tmp_path: Path, redis_url: str,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with identity_stack(tmp_path, redis_url) as ident:
        codes: list[str] = []

        def key_code() -> str:
            codes.append(ident.last_code(BOB))
            return f"{codes[-1]}# 9"

        fake = FakeAsterisk("1 9753# 1 3 9753#", env={"callerid": BOB})   # balance, then a reset
        fake.script.ask = key_code
        await fake.call("127.0.0.1", ident.app.agi.port, "main")
        journeys = (tmp_path / "journeys.jsonl").read_text()
    text = "\n".join(r.getMessage() for r in caplog.records) + journeys
    for secret in ["9753", *codes]:
        assert secret not in text
    assert codes, "the reset sent a code"
    set_vars = [c for c in fake.transcript.commands if c.startswith("SET VARIABLE")]
    assert not any(s in c for c in set_vars for s in ["9753", *codes])


async def test_an_unknown_account_sounds_like_a_wrong_pin(tmp_path: Path, redis_url: str) -> None:
    """No enumeration: keying an account nobody has is heard exactly as keying a real one with a wrong PIN,
    and the agent is told the same reason."""
    async with identity_stack(tmp_path, redis_url) as ident:
        real, real_fake = await call(ident, "1 1 1003# 1111# 2222# 3333#")
        unknown, unknown_fake = await call(ident, "1 1 7777# 1111# 2222# 3333#")
    assert said(unknown) == said(real)
    assert said(real).count("enter-pin") == 3 and said(real).count("auth-failed") == 3
    assert unknown["outcome"] == real["outcome"] == "queue:support"
    for fake in (real_fake, unknown_fake):
        assert 'SET VARIABLE "__IVR_REASON" "pin-failed"' in fake.transcript.commands


async def test_an_unknown_account_locks_like_a_real_one(tmp_path: Path, redis_url: str) -> None:
    async with identity_stack(tmp_path, redis_url) as ident:
        await call(ident, "1 1 7777# 1111# 2222# 3333#", "+12025550180")
        await call(ident, "1 1 1003# 1111# 2222# 3333#", "+12025550180")
        second_unknown, _ = await call(ident, "1 1 7777# 4444# 5555#", "+12025550181")
        second_real, _ = await call(ident, "1 1 1003# 4444# 5555#", "+12025550181")
    assert said(second_unknown) == said(second_real)
    assert "auth-locked" in said(second_real)


@pytest.mark.parametrize(("greet", "heard"), [("full", "Hello Alice Morgan, welcome back."),
                                              ("first", "Hello Alice, welcome back."),
                                              ("none", "Hello, welcome back.")])
async def test_greeting_by_name_before_verification_is_a_setting(
        tmp_path: Path, redis_url: str, greet: str, heard: str) -> None:
    """Caller id is easy to spoof: before a PIN, the greeting says as much of the name as identify.greet
    allows; the agent still gets the full name, and after the PIN prompts may use it."""
    async with identity_stack(tmp_path, redis_url, identify_greet=greet) as ident:
        lines: list[str] = []
        journey, fake = await call(ident, "0", ALICE, echo=lines.append)
    greeting = [line for line in lines if "welcome back" in line]
    assert greeting and heard in greeting[0], greeting
    assert journey["outcome"] == "queue:vip"
    assert 'SET VARIABLE "__IVR_CUSTOMER_NAME" "Alice Morgan"' in fake.transcript.commands

"""Identity on real Asterisk: SIPp callers identified by caller id, PINs and lockout across calls, a one-time
code read off the SMS during the call, self-service in two languages, backend faults and Redis outages.

Every caller is a :class:`tests.e2e.identity_e2e_kit.Phone` that presses keys when the service's live
journey shows the prompt asking for them. Assertions come from the service's journeys, the AMI events its
own AMI client received (QueueCallerJoin: the caller really is in an Asterisk queue), the channel variables
an agent inherits, what Asterisk logged as played, the SMS sink and Redis. The last tests audit everything
these calls logged for the PINs and codes keyed in them.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from lab import AsteriskInstance
from lab.redis_server import start_redis
from tests.e2e.identity_e2e_kit import Audit, IdentityStack, capture_logs, events, identity_service, leaks, said
from tests.identitykit import ALICE, BOB, GIULIA

PINS = {ALICE: "2468", GIULIA: "1357", BOB: "9753"}
WRONG = ["7315", "6047", "5802", "4639", "2591"]  # wrong PINs Bob keys (no demo PIN, no likely log number)


@pytest.fixture(scope="module")
def audit() -> Iterator[Audit]:
    """Everything the calls of this module logged, and every secret keyed in them (see the last tests)."""
    collected = Audit()
    with capture_logs(collected):
        yield collected


def _codes(st: IdentityStack, phone: str) -> list[str]:
    return [m.group(1) for t in st.sink.received(phone) if (m := re.search(r"\b(\d{6})\b", t["text"]))]


async def _code_for(st: IdentityStack, phone: str, n: int, audit: Audit) -> tuple[str, float]:
    """The `n`th one-time code texted to `phone` (read off the SMS sink while the call waits) and when."""
    await st.svc.wait_for(f"SMS {n} to {phone}", lambda: len(_codes(st, phone)) >= n, 20)
    code = _codes(st, phone)[n - 1]
    audit.secret(code)
    return code, time.time()


def _text(st: IdentityStack, name: str, language: str) -> str:
    src = st.app.prompts.catalog.lookup(name, language)
    assert src is not None and src.text
    return str(src.text)


def _redis_dump(url: str) -> str:
    """Every key and value in Redis, as text."""
    r = redis.Redis.from_url(url, decode_responses=True)
    out = []
    for key in r.scan_iter():
        kind = str(r.type(key))
        value: Any = (r.get(key) if kind == "string" else r.hgetall(key) if kind == "hash"
                      else r.zrange(key, 0, -1, withscores=True) if kind == "zset"
                      else r.smembers(key) if kind == "set" else r.lrange(key, 0, -1) if kind == "list" else None)
        out.append(f"{key} {kind} {value!r}")
    return "\n".join(out)


# ------------------------------------------------------------- known callers: greeting and self-service
async def test_known_caller_greeted_by_name_hears_balance_then_agent(
        asterisk: AsteriskInstance, tmp_path: Path, redis_url: str, audit: Audit) -> None:
    audit.secret(PINS[ALICE])
    mark = asterisk.log_mark()
    async with identity_service(asterisk, tmp_path, redis_url, audit) as st, st.dial(ALICE) as alice:
        await alice.hears("main-menu")  # the greeting played to its end
        await alice.press("1")
        await alice.hears("enter-pin")
        await alice.press(PINS[ALICE] + "#")
        await alice.hears("anything-else")
        await alice.press("0")
        agent = await alice.agent_sees()
        journey = await alice.journey()
        played = st.played(alice.channel, mark)
        [join] = alice.joins()
    [customer] = events(journey, "customer")
    assert customer["customer_id"] == "1001" and customer["tier"] == "vip"
    assert said(journey) == ["greet-known", "main-menu", "enter-pin", "balance-is", "currency-dollars", "and",
                             "currency-cents", "anything-else", "transfer-agent"]
    assert [e["ok"] for e in events(journey, "auth")] == [True]
    # what Asterisk played: her name, then 12,345 dollars and 67 cents in its own number sounds
    assert played[0] == "Hello Alice, welcome back."  # identify.greet = first: the surname only after the PIN
    balance = played[played.index("Your balance is"):]
    assert balance[:9] == ["Your balance is", "digits/12", "digits/thousand", "digits/3", "digits/hundred",
                           "digits/40", "digits/5", "dollars", "and"]
    assert balance[9:12] == ["digits/60", "digits/7", "cents"]
    assert journey["outcome"] == "queue:vip" and join["Queue"] == "vip"
    assert (agent["IVR_CUSTOMER_ID"], agent["IVR_CUSTOMER_NAME"], agent["IVR_TIER"], agent["IVR_AUTH"]) == \
        ("1001", "Alice Morgan", "vip", "verified")
    assert agent["QUEUE_PRIO"] == "10" and agent["IVR_PATH"] == "main_menu:1 anything_else:0"


async def test_italian_customer_hears_order_status_in_italian(
        asterisk: AsteriskInstance, tmp_path: Path, redis_url: str, audit: Audit) -> None:
    audit.secret(PINS[GIULIA])
    mark = asterisk.log_mark()
    async with identity_service(asterisk, tmp_path, redis_url, audit) as st, st.dial(GIULIA) as giulia:
        await giulia.hears("main-menu")
        await giulia.press("2")
        await giulia.hears("enter-pin")
        await giulia.press(PINS[GIULIA] + "#")
        await giulia.hears("enter-order")
        await giulia.press("60001")  # five digits end the entry
        await giulia.hears("anything-else")
        await giulia.press("9")
        await giulia.hangs_up_on_us()
        journey = await giulia.journey()
        played = st.played(giulia.channel, mark)
    assert journey["language"] == "it" and journey["outcome"] == "hangup"
    assert said(journey) == ["greet-known", "speech-use-keypad", "main-menu", "enter-pin", "enter-order",
                             "order-status-is", "order-eta-is", "anything-else", "goodbye"]
    [order] = [e for e in events(journey, "lookup") if e.get("what") == "order_status"]
    assert order["result"] == "next"
    # what Asterisk played: Italian throughout, the order's state in Italian, the date in Asterisk's own sounds
    assert played[0] == "Ciao Giulia, che piacere risentirti."
    assert "Lo stato del tuo ordine 6 0 0 0 1 è: in viaggio." in played
    eta = played[played.index("Dovrebbe arrivare il") + 1:played.index(_text(st, "anything-else", "it"))]
    assert eta and all(p.startswith(("digits/", "mon-")) for p in eta), eta
    assert played[-1] == "Grazie per aver chiamato Acme. Arrivederci."


# ------------------------------------------------------------------------ wrong PINs and the lockout
async def test_wrong_pins_fail_then_lock_the_account_across_calls(
        asterisk: AsteriskInstance, tmp_path: Path, redis_url: str, audit: Audit) -> None:
    audit.secret(PINS[BOB], *WRONG)
    r = redis.Redis.from_url(redis_url)
    async with identity_service(asterisk, tmp_path, redis_url, audit) as st:
        # call 1: three wrong PINs -> `failed` -> an agent, told why
        async with st.dial(BOB) as bob:
            await bob.hears("greet-known")
            await bob.press("1")  # barges into the greeting: the menu takes the key
            for attempt, pin in enumerate(WRONG[:3], 1):
                await bob.hears("enter-pin", attempt)
                await bob.press(pin + "#")
            first_agent = await bob.agent_sees()
            first = await bob.journey()
        assert r.zcard("ivr:auth:fail:1003") == 3
        # call 2: two more wrong PINs make five within the window -> locked
        async with st.dial(BOB) as bob:
            await bob.hears("greet-known")
            await bob.press("1")
            for attempt, pin in enumerate(WRONG[3:], 1):
                await bob.hears("enter-pin", attempt)
                await bob.press(pin + "#")
            second_agent = await bob.agent_sees()
            second = await bob.journey()
        lock_ttl = r.pttl("ivr:auth:lock:1003")
        # call 3: Bob knows his PIN now, but the account is locked: he is not even asked for it
        async with st.dial(BOB) as bob:
            await bob.hears("greet-known")
            await bob.press("1")
            await bob.hears("auth-locked")
            await bob.press(PINS[BOB] + "#")  # keyed anyway, into a prompt that takes no keys
            third_agent = await bob.agent_sees()
            third = await bob.journey()
    assert [e["ok"] for e in events(first, "auth")] == [False, False, False]
    assert [(e["result"], e["reason"]) for e in events(first, "auth-result")] == [("failed", "pin-failed")]
    assert said(first).count("auth-failed") == 3  # once per wrong PIN, not twice after the last
    assert first["outcome"] == "queue:support" and first_agent["IVR_REASON"] == "pin-failed"
    assert first_agent["IVR_AUTH"] == "identified"

    assert [e["ok"] for e in events(second, "auth")] == [False, False]
    assert [(e["result"], e["reason"]) for e in events(second, "auth-result")] == [("locked", "locked")]
    assert said(second)[-2:] == ["auth-locked", "transfer-agent"] and "auth-failed" in said(second)
    assert second["outcome"] == "queue:support" and second_agent["IVR_REASON"] == "locked"
    assert 0 < lock_ttl <= 900_000

    assert [(e["result"], e["reason"]) for e in events(third, "auth-result")] == [("locked", "locked")]
    assert "enter-pin" not in said(third) and not events(third, "auth")  # no PIN asked, none checked
    assert third["outcome"] == "queue:support" and third_agent["IVR_REASON"] == "locked"
    assert [j["Queue"] for j in st.svc.named("QueueCallerJoin")] == ["support"] * 3


# ---------------------------------------------------------------------------- one-time codes by SMS
OTP_TTL = 14.0  # long enough to key a fresh code (~7 s), short enough to outwait in one call


async def test_password_reset_with_the_code_from_the_sms_expired_and_reused_codes(
        asterisk: AsteriskInstance, tmp_path: Path, redis_url: str, audit: Audit) -> None:
    """Alice keys the code she was texted (read off the SMS sink during the call) and her password is
    reset; Bob keys his after it expired; Alice calls again and keys the code she already used."""
    audit.secret(PINS[ALICE], PINS[BOB])
    async with identity_service(asterisk, tmp_path, redis_url, audit, auth={"otp_ttl": OTP_TTL}) as st:

        async def alice_resets() -> tuple[dict[str, Any], str]:
            async with st.dial(ALICE) as alice:
                await alice.hears("greet-known")
                await alice.press("3")
                await alice.hears("enter-pin")
                await alice.press(PINS[ALICE] + "#")
                code, _ = await _code_for(st, ALICE, 1, audit)
                await alice.hears("enter-otp")
                await alice.press(code + "#")
                await alice.hears("anything-else")
                await alice.press("9")
                await alice.hangs_up_on_us()
                return await alice.journey(), code

        async def bob_too_late() -> tuple[dict[str, Any], dict[str, str]]:
            async with st.dial(BOB) as bob:
                await bob.hears("greet-known")
                await bob.press("3")
                await bob.hears("enter-pin")
                await bob.press(PINS[BOB] + "#")
                code, sent = await _code_for(st, BOB, 1, audit)
                expired = sent + OTP_TTL + 0.5
                await asyncio.sleep(max(0.0, expired - time.time()))  # the code's life ends while he waits
                await bob.hears("enter-otp", after=expired)  # the prompt asks again after a silent try
                await bob.press(code + "#")
                agent = await bob.agent_sees()
                return await bob.journey(), agent

        alice_task = asyncio.create_task(alice_resets())
        bob_task = asyncio.create_task(bob_too_late())
        alice, used = await alice_task
        dump_after_reset = _redis_dump(redis_url)
        # Alice calls again and keys the code that already worked: a new code was sent, the old one is refused
        async with st.dial(ALICE) as again:
            await again.hears("greet-known")
            await again.press("3")
            await again.hears("enter-pin")
            await again.press(PINS[ALICE] + "#")
            fresh, _ = await _code_for(st, ALICE, 2, audit)
            await again.hears("enter-otp")
            await again.press(used + "#")
            await again.until("the old code checked", lambda: bool(again.events("auth")[1:]))
            await again.hang_up()
            reused = await again.journey()
        bob, bob_agent = await bob_task
        texts = [m["text"] for m in st.sink.received(ALICE)]
    # Alice: PIN, code, reset; the backend texted the reset link after the code
    assert [(e["method"], e["ok"]) for e in events(alice, "auth")] == [("pin", True), ("otp", True)]
    assert said(alice)[said(alice).index("enter-pin"):] == [
        "enter-pin", "otp-sent", "enter-otp", "password-reset-done", "anything-else", "goodbye"]
    assert alice["outcome"] == "hangup"
    assert used in texts[0] and "reset" in texts[1].lower() and "example.invalid/reset/" in texts[1]
    assert used not in dump_after_reset and PINS[ALICE] not in dump_after_reset  # codes are kept as HMACs
    # Bob: the right code, too late
    assert [e.get("result") for e in events(bob, "auth") if e["method"] == "otp"] == ["expired"]
    assert [(e["result"], e["reason"]) for e in events(bob, "auth-result")] == [("failed", "otp-failed")]
    assert bob["outcome"] == "queue:support" and bob_agent["IVR_REASON"] == "otp-failed"
    assert len(st.sink.received(BOB)) == 1  # no reset without the code
    # Alice again: the used code is refused (a new one replaced it); she was not reset twice
    assert len(texts) == 3 and fresh in texts[2] and fresh != used
    assert [(e["method"], e["ok"], e.get("result")) for e in events(reused, "auth")] == [
        ("pin", True, None), ("otp", False, "wrong")]
    assert "password-reset-done" not in said(reused)


# ------------------------------------------------------------------------------------ backend faults
FAULTS: dict[str, dict[str, Any]] = {
    "refused": {},  # the backend is stopped during the call
    "slow": {"delay_ms": 6000},  # past the accounts backend's 2.5 s budget
    "http-500": {"status": 500},
    "malformed-json": {"malformed": True},
}


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_backend_fault_apologises_and_reaches_an_agent(
        asterisk: AsteriskInstance, tmp_path: Path, redis_url: str, audit: Audit, fault: str) -> None:
    audit.secret(PINS[BOB])
    async with identity_service(asterisk, tmp_path, redis_url, audit) as st, st.dial(BOB) as bob:
        await bob.hears("greet-known")
        await bob.press("1")
        await bob.hears("enter-pin")
        if fault == "refused":
            await st.stop_backend()  # the PIN check finds nobody listening
        else:
            await st.faults(path_prefix="/customers/1003/balance", **FAULTS[fault])
        await bob.press(PINS[BOB] + "#")
        agent = await bob.agent_sees()
        journey = await bob.journey()
        [join] = bob.joins()
    heard = said(journey)
    assert heard.index("apology") < heard.index("transfer-agent") == len(heard) - 1, heard
    assert "balance-is" not in heard
    assert journey["outcome"] == "queue:support" and join["Queue"] == "support"
    assert agent["IVR_CUSTOMER_ID"] == "1003"  # the agent still knows who is calling
    errors = events(journey, "error")
    assert errors, journey
    if fault == "slow":
        assert "please-wait" in heard  # the filler played while the backend was slow
        assert errors[0]["error"] == "BackendTimeout"
    elif fault == "refused":
        assert events(journey, "auth") == [] and errors[0]["node"] == "balance_auth"
    else:
        assert [e["ok"] for e in events(journey, "auth")] == [True] and errors[0]["node"] == "balance_lookup"


# -------------------------------------------------------------------------------------- Redis outage
async def test_redis_stopped_callers_still_reach_a_human(
        asterisk: AsteriskInstance, tmp_path: Path, audit: Audit) -> None:
    """A private redis-server stops while Bob is being asked for his PIN; Alice and Giulia call after."""
    audit.secret(PINS[BOB], PINS[GIULIA])
    server = start_redis()
    try:
        async with identity_service(asterisk, tmp_path, server.url, audit) as st:
            async with st.dial(BOB) as bob:
                await bob.hears("greet-known")
                await bob.press("1")
                await bob.hears("enter-pin")
                server.stop()
                await bob.press(PINS[BOB] + "#")
                bob_agent = await bob.agent_sees()
                bob_journey = await bob.journey()

            async def alice_asks_for_an_agent() -> tuple[dict[str, Any], dict[str, str], list[str]]:
                mark = asterisk.log_mark()
                async with st.dial(ALICE) as alice:
                    await alice.hears("main-menu")
                    await alice.press("0")
                    agent = await alice.agent_sees()
                    return await alice.journey(), agent, st.played(alice.channel, mark)

            async def giulia_asks_for_her_balance() -> tuple[dict[str, Any], dict[str, str]]:
                async with st.dial(GIULIA) as giulia:
                    await giulia.hears("greet-known")
                    await giulia.press("1")
                    agent = await giulia.agent_sees()
                    return await giulia.journey(), agent

            (alice, alice_agent, alice_heard), (giulia, giulia_agent) = await asyncio.gather(
                alice_asks_for_an_agent(), giulia_asks_for_her_balance())
            health = await st.http("/health")
    finally:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)
    # Bob: Redis went away between his prompt and his PIN: an apology and an agent, not silence
    assert said(bob_journey)[-2:] == ["apology", "transfer-agent"] and not events(bob_journey, "auth")
    assert bob_journey["outcome"] == "queue:support" and bob_agent["IVR_CUSTOMER_ID"] == "1003"
    # Alice: identify and the menu need no Redis: greeted by name, at the VIP queue
    assert said(alice)[:2] == ["greet-known", "main-menu"] and alice["outcome"] == "queue:vip"
    assert alice_heard[0] == "Hello Alice, welcome back."
    assert alice_agent["IVR_CUSTOMER_NAME"] == "Alice Morgan"
    # Giulia: authentication needs Redis: apology, then the Italian queue
    assert said(giulia)[-2:] == ["apology", "transfer-agent"] and giulia["outcome"] == "queue:support-it"
    assert giulia_agent["IVR_LANGUAGE"] == "it"
    assert sorted(j["Queue"] for j in st.svc.named("QueueCallerJoin")) == ["support", "support-it", "vip"]
    assert '"status": "ok"' in health, health  # the service itself stays healthy without Redis


async def test_an_unknown_account_number_sounds_like_a_wrong_pin(
        asterisk: AsteriskInstance, tmp_path: Path, redis_url: str, audit: Audit) -> None:
    """No enumeration on real Asterisk: a caller the directory does not know keys an account number nobody
    has, then PINs, and hears exactly what a caller keying a real account with wrong PINs hears."""
    audit.secret(*WRONG[:3])
    heard = {}
    async with identity_service(asterisk, tmp_path, redis_url, audit) as st:
        for account, caller in (("1003", "+12025550181"), ("7777", "+12025550182")):
            async with st.dial(caller) as phone:
                await phone.hears("welcome")
                await phone.press("1")  # English
                await phone.hears("main-menu")
                await phone.press("1")  # balance
                await phone.hears("enter-account")
                await phone.press(account + "#")
                for attempt, pin in enumerate(WRONG[:3], 1):
                    await phone.hears("enter-pin", attempt)
                    await phone.press(pin + "#")
                agent = await phone.agent_sees()
                heard[account] = (said(await phone.journey()), agent["IVR_REASON"])
    assert heard["7777"] == heard["1003"]
    assert heard["1003"][0].count("enter-pin") == 3 and heard["1003"][1] == "pin-failed"


# ------------------------------------------------------------------------------------------ log audit
async def _ensure_calls(asterisk: AsteriskInstance, tmp: Path, redis_url: str, audit: Audit) -> None:
    """Run alone, the audit places a call of its own (a PIN) so that it has something to look at."""
    if audit.secrets:
        return
    audit.secret(PINS[BOB])
    async with identity_service(asterisk, tmp, redis_url, audit) as st, st.dial(BOB) as bob:
        await bob.hears("greet-known")
        await bob.press("1")
        await bob.hears("enter-pin")
        await bob.press(PINS[BOB] + "#")
        await bob.hears("anything-else")
        await bob.press("9")
        await bob.hangs_up_on_us()


def _asterisk_logs(asterisk: AsteriskInstance) -> list[tuple[str, str]]:
    """Every file under Asterisk's log dir: full, messages, security, queue_log, and cdr-csv/cel when on."""
    return [(str(p), p.read_text(errors="replace")) for p in sorted(asterisk.log_path().parent.rglob("*"))
            if p.is_file()]


# Numbers every log has that are no caller's input, removed before the search so that a PIN cannot "leak"
# by coinciding with one: Asterisk's line prefix ([time] LEVEL[thread id][call id]; thread ids are 4 digits
# on a young system) and the microseconds of AMI event timestamps (6 digits, like a code).
_BENIGN = [re.compile(r"^\[[0-9 :.-]+\] [A-Z]+\[\d+\](?:\[[^\]]*\])? ", re.MULTILINE),
           re.compile(r"Timestamp='\d+\.\d+'")]


def _scrub(text: str) -> str:
    for pattern in _BENIGN:
        text = pattern.sub("", text)
    return text


async def test_no_pin_or_code_in_any_log_journey_or_metric(
        asterisk: AsteriskInstance, tmp_path: Path, redis_url: str, audit: Audit) -> None:
    """Every log line of the service, reference backend and SMS sink at DEBUG (raw, before any redaction),
    journeys (file and HTTP), live calls, KPIs, /metrics, and Asterisk's own log files: no PIN or code
    keyed in this module's calls appears in them as a number of its own (or spelled out digit by digit)."""
    await _ensure_calls(asterisk, tmp_path, redis_url, audit)
    sources = [("service logs", "\n".join(audit.records)), *audit.texts, *_asterisk_logs(asterisk)]
    assert len(audit.records) > 100 and any("journeys" in s for s, _ in audit.texts)
    assert any(s == "GET /metrics" for s, _ in audit.texts)
    found = [f"{source}: {hit}" for source, text in sources for hit in leaks(_scrub(text), audit.secrets)]
    assert not found, "\n".join(found[:20])
    assert audit.secrets


def _dtmf_by_channel(text: str) -> dict[str, str]:
    keys: dict[str, str] = {}
    for m in re.finditer(r"DTMF end '([0-9*#A-D])' received on (\S+?),", text):
        keys[m.group(2)] = keys.get(m.group(2), "") + m.group(1)
    return keys


async def test_asterisk_log_does_not_spell_out_keyed_pins(
        asterisk: AsteriskInstance, tmp_path: Path, redis_url: str, audit: Audit) -> None:
    """With the `dtmf` level on, a log gets a `DTMF end '<key>'` line for every key: put together per
    channel, they give back each PIN and code keyed. No log file the configuration writes has one."""
    await _ensure_calls(asterisk, tmp_path, redis_url, audit)
    logs = _asterisk_logs(asterisk)
    assert any(name.endswith("full.log") for name, _ in logs) and any("queue_log" in n for n, _ in logs)
    assert not [name for name, text in logs if "DTMF end" in text or "DTMF begin" in text]
    keyed = "\n".join(k for _, text in logs for k in _dtmf_by_channel(text).values())
    spelled = sorted(s for s in audit.secrets if s in keyed)
    assert not spelled, f"PINs/codes that Asterisk's full.log spells out key by key: {spelled}"

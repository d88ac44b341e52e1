"""Every object on the call path, formatted every way Python formats it, with a PIN in the call: no run of
the PIN's digits appears (repr, str, pprint, vars, journey events, exceptions, log records)."""

from __future__ import annotations

import logging
import pprint
from datetime import date
from typing import Any

import pytest

from ivr.call import Call
from ivr.errors import AuthLocked, BackendUnavailable
from ivr.flows.context import NodeContext
from ivr.identity.auth import Auth, AuthSettings
from ivr.identity.lockout import Locked
from ivr.identity.secret import Secret
from tests.flowkit import flowset, run, services

PIN = "80417269"  # long enough not to turn up by chance in a timestamp or an id

FLOW = """
flow: pinflow
start: ask
nodes:
  ask: {type: gather, prompt: enter-pin, var: pin, secure: true, max_digits: 8, next: done}
  done: {type: say, prompt: goodbye, next: end}
  end: {type: return}
"""


def _formats(obj: Any) -> list[str]:
    out = [repr(obj), str(obj), pprint.pformat(obj), f"{obj}", "%s %r" % (obj, obj)]  # noqa: UP031
    if hasattr(obj, "__dict__"):
        out.append(pprint.pformat(vars(obj)))
    return out


def _leaks(texts: list[str]) -> list[str]:
    return [t[:300] for t in texts if PIN in t.replace(" ", "").replace(",", "").replace("'", "")]


async def test_a_secure_pin_shows_in_no_repr_of_the_call_path(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    call, channel = await run(FLOW, " ".join(PIN))
    assert call.secure["pin"].reveal() == PIN  # the node kept it, for the one place that needs it
    call.typeahead = PIN  # keys typed ahead into a secure prompt
    ctx = NodeContext(call, channel, services(), flowset(FLOW), flowset(FLOW).flows["pinflow"], "ask",
                      run_subflow=lambda name: None)  # type: ignore[arg-type,return-value]
    texts: list[str] = []
    for obj in (call, ctx, call.secure, call.journey, *call.journey, call.summary(), call.variables()):
        texts += _formats(obj)
    texts += [str(e.as_dict()) for e in call.journey]
    texts += [r.getMessage() + " " + repr(r.args) + " " + repr(vars(r)) for r in caplog.records]
    assert not _leaks(texts), _leaks(texts)


class _EchoingAccounts:
    """A broken backend whose errors carry the request, as some do."""

    async def verify_pin(self, customer_id: str, pin: Secret) -> bool:
        raise BackendUnavailable(f"accounts: HTTP 500 for {customer_id} with {pin}")

    async def verify_card(self, customer_id: str, last4: Secret, dob: date) -> bool:
        raise BackendUnavailable(f"accounts: HTTP 500 with {last4} and {dob}")


class _MemoryStore:
    """Just enough of Store for the lockout scripts' happy path."""

    async def eval(self, script: str, keys: list[str], args: list[Any]) -> Any:
        return [4, "ok"] if "ZADD" in script else 4

    async def run(self, op: Any) -> Any:
        return 0


async def test_exceptions_from_auth_and_backends_carry_no_secret() -> None:
    auth = Auth(_MemoryStore(), _EchoingAccounts(), otp_key=Secret("k" * 32),  # type: ignore[arg-type]
                settings=AuthSettings())
    caught: list[BaseException] = []
    for check in (auth.verify_pin("1001", Secret(PIN)),
                  auth.verify_card("1001", Secret(PIN[:4]), date(1980, 4, 12))):
        with pytest.raises(BackendUnavailable) as info:
            await check
        caught.append(info.value)
    caught += [AuthLocked("account 1001 is locked"), Locked("caller")]
    texts = [t for exc in caught for t in (*_formats(exc), repr(exc.args))]
    assert not _leaks(texts), _leaks(texts)


def test_a_call_built_by_hand_keeps_secure_values_as_secrets() -> None:
    call = Call("u1", "main")
    call.secure["pin"] = Secret(PIN)
    call.typeahead = PIN[:3] + PIN[3:]
    assert not _leaks(_formats(call))

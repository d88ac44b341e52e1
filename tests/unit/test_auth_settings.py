"""AuthSettings limits, results and texts (no Redis needed)."""

from __future__ import annotations

import dataclasses

import pytest

from ivr import store
from ivr.identity.auth import Attempt, AuthSettings, OtpResult
from ivr.identity.secret import Secret
from ivr.identity.sms import mask_phone, otp_text


def test_defaults_match_the_policy() -> None:
    s = AuthSettings()
    assert (s.tries_per_call, s.max_failures, s.failure_window, s.lockout) == (3, 5, 900, 900)
    assert (s.otp_digits, s.otp_ttl, s.otp_max_attempts, s.otp_sends, s.otp_send_window) == (6, 300, 3, 3, 900)
    assert s.otp_ttl == store.OTP_TTL and s.failure_window == store.AUTH_FAILURE_WINDOW
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.max_failures = 10  # type: ignore[misc]


@pytest.mark.parametrize("kwargs", [
    {"otp_ttl": 601}, {"otp_ttl": 0}, {"max_failures": 0}, {"otp_sends": 0}, {"otp_digits": 4},
])
def test_rejects_unsafe_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        AuthSettings(**kwargs)  # type: ignore[arg-type]


def test_attempt_locked_only_when_failed_with_none_left() -> None:
    assert Attempt(False, 0).locked
    assert not Attempt(False, 1).locked
    assert not Attempt(True, 5).locked


def test_otp_result_values() -> None:
    assert OtpResult("too_many_attempts") is OtpResult.TOO_MANY_ATTEMPTS
    assert {r.value for r in OtpResult} == {"ok", "wrong", "expired", "used", "too_many_attempts"}


def test_otp_text_is_a_secret_in_the_callers_language() -> None:
    code = Secret("482913")
    text = otp_text(code, "it", 5)
    assert isinstance(text, Secret) and str(text) == "***"
    assert "482913" in text.reveal() and "codice" in text.reveal()
    assert "verification code" in otp_text(code, "xx").reveal()
    assert mask_phone("+12025550101") == "•••0101"


def test_key_names_refuse_unsafe_parts() -> None:
    assert store.auth_lock("1001") == "ivr:auth:lock:1001"
    assert store.otp_sends("+12025550101") == "ivr:otp:sends:+12025550101"
    for bad in ("", "a:b", "a b", "x" * 65, "a*"):
        with pytest.raises(ValueError):
            store.auth_failures(bad)

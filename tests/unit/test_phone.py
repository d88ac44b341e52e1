"""Callback number policy: E.164 normalisation and refusals."""

from __future__ import annotations

import pytest

from ivr.queueing.phone import CallbackPolicy, check_callback_number

IT = CallbackPolicy.of(["IT", "VA"])


@pytest.mark.parametrize("raw", ["312 345 6789", "+39 312 345 6789", "0039 312-345-6789", "(312) 345.6789"])
def test_italian_mobile_in_any_spelling(raw: str) -> None:
    res = check_callback_number(raw, IT)
    assert (res.ok, res.e164, res.kind, res.region) == (True, "+393123456789", "mobile", "IT")


def test_fixed_line_keeps_the_leading_zero() -> None:
    assert check_callback_number("02 1234 5678", IT).e164 == "+390212345678"
    assert check_callback_number("06 698 12345", IT).region == "VA"  # a home region too


@pytest.mark.parametrize(("raw", "reason"), [
    ("899 123 456", "premium_rate"),
    ("+44 909 123 4567", "premium_rate"),
    ("+44 7400 123456", "international"),
    ("+1 201 555 0123", "international"),
    ("800 123 456", "type_not_allowed:toll_free"),
    ("848 123 456", "type_not_allowed:shared_cost"),
    ("55 1234 5678", "type_not_allowed:voip"),
    ("123", "invalid"),
    ("+39 000 000", "invalid"),
    ("", "unparseable"),
    ("anonymous", "unparseable"),
    ("3123456789; DROP", "unparseable"),
    ("1" * 40, "unparseable"),
    ("+", "unparseable"),
])
def test_refusals(raw: str, reason: str) -> None:
    res = check_callback_number(raw, IT)
    assert (res.ok, res.e164, res.reason) == (False, None, reason)


def test_nanp_fixed_line_or_mobile_and_type_lists() -> None:
    us = CallbackPolicy.of(["US", "CA"], ["mobile"])
    res = check_callback_number("(201) 555-0123", us)
    assert (res.e164, res.kind) == ("+12015550123", "fixed_line_or_mobile")
    only_toll_free = CallbackPolicy.of(["US"], ["toll_free"])
    assert check_callback_number("201 555 0123", only_toll_free).reason == "type_not_allowed:fixed_line_or_mobile"
    assert check_callback_number("800 234 5678", only_toll_free).ok


def test_policy_validation() -> None:
    assert CallbackPolicy.of(["sm", "it"]).default_region == "IT"
    for regions, types in ((["XX"], ["mobile"]), ([], ["mobile"]), (["IT"], ["satellite"])):
        with pytest.raises(ValueError):
            CallbackPolicy.of(regions, types)


def test_national_format_is_read_in_the_configured_region() -> None:
    from ivr.config import load_settings
    from ivr.queueing.phone import callback_policy

    settings = load_settings(env={"IVR_CONFIG": "/nonexistent/ivr.toml"})
    assert settings.phone_region == "US" and callback_policy(settings).default_region == "US"
    res = check_callback_number("2025550101", callback_policy(settings))  # a US caller, national format
    assert (res.ok, res.e164) == (True, "+12025550101")
    italian = load_settings(env={"IVR_CONFIG": "/nonexistent/ivr.toml", "IVR_CALLBACKS_DEFAULT_REGION": "it"})
    assert check_callback_number("02 1234 5678", callback_policy(italian)).e164 == "+390212345678"
    assert not check_callback_number("2025550101", callback_policy(italian)).ok


@pytest.mark.parametrize(("key", "value"), [
    ("IVR_CALLBACKS_DEFAULT_REGION", "XX"), ("IVR_CALLBACKS_REGIONS", "US,ZZ"), ("IVR_PHONE_REGION", "Q1"),
])
def test_region_settings_are_checked(key: str, value: str) -> None:
    from ivr.config import load_settings
    from ivr.errors import ConfigError

    with pytest.raises(ConfigError, match=key.removeprefix("IVR_").lower()):
        load_settings(env={"IVR_CONFIG": "/nonexistent/ivr.toml", key: value})

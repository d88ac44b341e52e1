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

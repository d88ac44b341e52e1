"""Where the data of a `200 result=... (data) extras` reply ends: the last ")" followed only by extras,
found in linear time (the parser used to re-split the tail at every ")": quadratic)."""

from __future__ import annotations

import time

import pytest

from ivr.agi.protocol import parse_200
from ivr.errors import AgiError


@pytest.mark.parametrize("piece", [") a=b", ")", ") a", "a=)", ")a=b "])
def test_a_long_reply_full_of_parentheses_parses_in_linear_time(piece: str) -> None:
    line = "200 result=1 (" + piece * (32768 // len(piece)) + " !"
    began = time.perf_counter()
    with pytest.raises(AgiError):
        parse_200(line)  # ends in a token that is not an extra: no ")" can end the data
    assert time.perf_counter() - began < 0.5  # ~4 s with the quadratic search



def test_a_result_too_long_for_a_number_is_an_agi_error_that_quotes_it_briefly() -> None:
    reply = parse_200("200 result=" + "9" * 5000)  # found by bench/fuzz.py: the message held all 5000 digits
    with pytest.raises(AgiError) as info:
        reply.result_int  # noqa: B018 - the property raises
    assert len(str(info.value)) < 100

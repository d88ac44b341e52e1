"""Property tests of every parser: any input parses or gets the parser's own clear error (lab.fuzz.targets),
plus round trips and the comparison rules of conditions."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ivr.agi.protocol import parse_200, parse_env
from ivr.errors import AgiError
from ivr.flows.conditions import compile_condition, evaluate
from ivr.flows.prompt_ref import render
from lab.fuzz import strategies as s
from lab.fuzz import targets


@given(s.env_blocks)
def test_agi_environment_block(lines: list[str]) -> None:
    targets.agi_env(lines)


@given(s.reply_blocks)
def test_agi_replies(lines: list[str]) -> None:
    targets.agi_replies(lines)


@given(s.agi_commands)
def test_agi_commands_stay_one_line_and_split_back(command: tuple[str, list[str | int]]) -> None:
    targets.agi_command(*command)


@given(s.condition_texts, s.variable_values)
def test_conditions(text: str, variables: dict[str, str]) -> None:
    targets.condition(text, variables)


@given(s.template_texts, s.variable_values)
def test_templates(text: str, variables: dict[str, str]) -> None:
    targets.template(text, variables)


@given(s.prompt_values)
def test_prompt_values(raw: Any) -> None:
    targets.prompt(raw)


@given(st.one_of(s.flow_texts(), s.schedule_texts()))
def test_yaml_errors_carry_file_and_line(text: str) -> None:
    targets.yaml_document(text)


@given(s.flow_texts())
def test_flow_files(text: str) -> None:
    targets.flow_file(text)


@given(s.schedule_texts())
def test_schedule_files(text: str) -> None:
    targets.schedules_file(text)


# --- round trips and rules ------------------------------------------------------------------------

env_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=12)
env_values = st.text(st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\u2028\u2029\x85"),
                     max_size=40)


@given(st.dictionaries(env_names, env_values, max_size=10))
def test_an_environment_block_parses_back(env: dict[str, str]) -> None:
    # one optional space after the colon belongs to the format; keep values from starting with one
    env = {k: v.lstrip(" ") for k, v in env.items()}
    assert parse_env([f"agi_{k}: {v}" for k, v in env.items()]) == env


extra_key = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)
extra_value = st.text(alphabet="abc0123456789=-.", max_size=8)  # Asterisk: endpos=1234


@given(st.integers(-1, 10**6).map(str), st.none() | st.text(alphabet="abc 0123456789()#*-", max_size=20),
       st.dictionaries(extra_key, extra_value, max_size=3))
def test_a_200_reply_parses_back(result: str, data: str | None, extras: dict[str, str]) -> None:
    line = f"200 result={result}" + (f" ({data})" if data is not None else "")
    line += "".join(f" {k}={v}" for k, v in extras.items())
    reply = parse_200(line)
    assert (reply.result, reply.data, reply.extras) == (result, data, extras)


numbers = st.one_of(st.integers(-10**6, 10**6).map(str),
                    st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str))
not_numbers = st.sampled_from(("", "abc", "nan", "inf", "1e5", "0x10", "1_000", "12,5", "--1", "5-"))
ORDER = {"<": Decimal.__lt__, "<=": Decimal.__le__, ">": Decimal.__gt__, ">=": Decimal.__ge__}


@given(numbers, numbers, st.sampled_from(sorted(ORDER)))
def test_numbers_order_as_numbers(a: str, b: str, op: str) -> None:
    assert evaluate(compile_condition(f"x {op} y"), {"x": a, "y": b}) is ORDER[op](Decimal(a), Decimal(b))
    literal = compile_condition(f"x {op} {b}")  # the same with a literal, negative ones included
    assert evaluate(literal, {"x": a}) is ORDER[op](Decimal(a), Decimal(b))


@given(not_numbers, numbers, st.sampled_from(sorted(ORDER)))
def test_ordering_a_value_that_is_not_a_number_is_false(a: str, b: str, op: str) -> None:
    assert evaluate(compile_condition(f"x {op} {b}"), {"x": a}) is False
    assert evaluate(compile_condition(f"{b} {op} x"), {"x": a}) is False


@given(st.text(max_size=10), st.text(max_size=10))
def test_equality_between_variables_is_exact_text(a: str, b: str) -> None:
    assert evaluate(compile_condition("x == y"), {"x": a, "y": b}) is (a == b)
    assert evaluate(compile_condition("x != y"), {"x": a, "y": b}) is (a != b)


@given(st.lists(st.tuples(st.text(alphabet="abc {}", max_size=6).filter(lambda t: "{" not in t and "}" not in t),
                          st.sampled_from(s.VARIABLE_NAMES[:5])), max_size=5),
       st.dictionaries(st.sampled_from(s.VARIABLE_NAMES[:5]), st.text(max_size=6)))
def test_a_template_renders_each_field_once_and_unknown_ones_empty(
    pieces: list[tuple[str, str]], variables: dict[str, str],
) -> None:
    template = "".join(f"{text}{{{name}}}" for text, name in pieces)
    assert render(template, variables) == "".join(text + variables.get(name, "") for text, name in pieces)


def _reference_data_end(rest: str) -> int:
    """The former algorithm, kept as the specification: the rightmost ")" whose tail is all extras."""
    close = len(rest)
    while True:
        close = rest.rfind(")", 0, close)
        if close < 0 or all(re.match(r"^[a-z_]+=\S*$", t) for t in rest[close + 1:].split()):
            return close



@given(st.text(alphabet="()= ab_x1\t\x1c\u00a0", max_size=40))
def test_the_data_of_a_reply_ends_where_the_former_parser_said(tail: str) -> None:
    rest = "(" + tail
    close = _reference_data_end(rest)
    try:
        reply = parse_200("200 result=1 " + rest)
    except AgiError:
        assert close < 0 or any(not re.match(r"^[a-z_]+=\S*$", t) for t in rest[close + 1:].split())
        return
    assert close >= 0 and reply.data == rest[1:close]

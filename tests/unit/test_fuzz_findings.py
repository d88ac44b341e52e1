"""What bench/fuzz.py found in the loaders: each input used to crash `ivr check` (or flood it); now a finding."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.diagnostics import MAX_MESSAGE
from ivr.flows.loader import load_flow
from ivr.flows.prompt_ref import template_fields
from ivr.nodes import NODE_TYPES
from ivr.ops.schedule import load_schedules
from lab.fuzz.strategies import alias_bomb


def flow_findings(text: str) -> list[tuple[int, str]]:
    flow, found = load_flow(Path("f.yaml"), text, node_types=NODE_TYPES)
    assert flow is None
    return [(d.line, d.message) for d in found]


def node(yaml_node: str) -> str:
    return f"flow: t\nstart: a\nnodes:\n  a: {yaml_node}\n  b: {{type: hangup}}\n"


@pytest.mark.parametrize("zone", ["America", "a" * 300])
def test_a_timezone_that_is_a_directory_or_too_long_is_a_finding(zone: str) -> None:
    _, found = load_schedules(Path("s.yaml"), text=f"schedules:\n  o:\n    timezone: {zone}\n")
    assert [(d.line, d.message[:40]) for d in found] == [(3, "schedule 'o': timezone: unknown timezone")]
    assert flow_findings(node(f"{{type: callback, timezone: {zone}, next: b}}"))[0][1].startswith(
        "node 'a': unknown timezone")


def test_a_recurring_date_with_a_huge_month_is_a_finding() -> None:
    text = "schedules:\n  o:\n    timezone: UTC\n    recurring:\n      - {date: 99999999999999999999-1, closed: true}\n"
    _, found = load_schedules(Path("s.yaml"), text=text)
    assert [d.line for d in found] == [5] and "MM-DD" in found[0].message


@pytest.mark.parametrize("pattern", ["a{4294967296}", "(" * 1000])
def test_a_gather_pattern_python_cannot_compile_is_a_finding(pattern: str) -> None:
    found = flow_findings(node(f"{{type: gather, prompt: p, var: v, pattern: '{pattern}', next: b}}"))
    assert found[0][0] == 4 and found[0][1].startswith("node 'a': pattern:")


def test_a_finding_quotes_an_alias_expanded_value_briefly() -> None:
    found = flow_findings(alias_bomb(6, 6))  # 6**6 values: under the limit, far too many to print
    message = next(m for _, m in found if "prompt" in m)
    assert len(message) < 300 and message.startswith("node 'a': prompt: a prompt is a name")


def test_a_long_key_is_quoted_briefly() -> None:
    found = flow_findings("flow: t\nstart: a\nnodes:\n  a:\n    type: hangup\n    " + "x" * 1000 + ": 1\n")
    assert len(found[0][1]) < 400 and "unknown parameter 'xxxx" in found[0][1]


def test_a_finding_that_quotes_a_huge_value_twice_is_cut_short() -> None:
    # found by bench/fuzz.py on a mutated dialplans/main.yaml: a 10,097-character finding
    phrase = "9" * 5000
    found = flow_findings(node(f'{{type: menu, prompt: p, options: {{"1": b}}, say: {{"1": ["{phrase}"]}}, '
                               "next: {invalid: b, timeout: b}}"))
    assert found[0][1].startswith("node 'a': say: choice 'k1': phrase '9999")
    assert len(found[0][1]) <= MAX_MESSAGE and found[0][1].endswith("…")


def test_a_bad_template_field_is_quoted_briefly() -> None:
    with pytest.raises(ValueError) as info:
        template_fields("Hello {" + "a" * 3000 + "!r}")
    assert len(str(info.value)) < 200 and str(info.value).startswith("bad template field {aaaa")

"""YAML reading: every problem is a FlowError with file and line, whatever the text (found by bench/fuzz.py)."""

from __future__ import annotations

import time

import pytest

from ivr.errors import FlowError
from ivr.yamlsrc import MAX_DEPTH, MAX_VALUES, load_yaml
from lab.fuzz.strategies import alias_bomb


def refused(text: str) -> FlowError:
    with pytest.raises(FlowError) as info:
        load_yaml(text, "f.yaml")
    assert info.value.file == "f.yaml"
    return info.value


def test_a_control_character_is_a_flow_error_on_its_line() -> None:
    err = refused("flow: t\nstart: a\nnodes: \x14\n")
    assert err.line == 3 and "unacceptable character #x0014" in err.reason


@pytest.mark.parametrize(("opener", "closer"), [("[", "]"), ("{a: ", "}"), ("- ", "x")])
def test_nesting_past_the_limit_is_refused_not_a_recursion_error(opener: str, closer: str) -> None:
    for depth in (MAX_DEPTH + 5, 5000):
        text = f"nodes:\n  {opener * depth}{closer * (1 if closer == 'x' else depth)}\n"
        err = refused(text)
        assert "nested" in err.reason and err.line == 2


def test_nesting_within_the_limit_loads() -> None:
    data = load_yaml("a: " + "[" * (MAX_DEPTH - 2) + "1" + "]" * (MAX_DEPTH - 2), "f.yaml")
    assert data["a"]


def test_an_alias_bomb_is_refused_quickly_with_the_line_of_the_alias() -> None:
    began = time.perf_counter()
    err = refused(alias_bomb(9, 9))  # 9**9 values once expanded
    assert time.perf_counter() - began < 2.0
    assert f"more than {MAX_VALUES:,} values" in err.reason and 3 <= err.line <= 12


def test_a_recursive_alias_is_refused() -> None:
    err = refused("a: &b [1, *b]\n")
    assert err.line == 1 and "recursive" in err.reason


def test_aliases_and_merge_keys_still_work() -> None:
    data = load_yaml("base: &d {retries: 2}\nmenu: {<<: *d, timeout: 4}\nlist: &l [1, 2]\nagain: *l\n", "f.yaml")
    assert data["menu"] == {"retries": 2, "timeout": 4} and data["again"] == [1, 2]
    assert data["menu"].line_of("timeout") == 2


def test_deep_brackets_are_refused_before_the_scanner_gets_slow() -> None:
    began = time.perf_counter()
    err = refused("nodes: " + "[" * 5000)  # PyYAML's scanner is quadratic in bracket depth: ~1 s here before
    assert time.perf_counter() - began < 0.3
    assert err.line == 1 and f"nested deeper than {MAX_DEPTH} levels" in err.reason


@pytest.mark.parametrize("value", ["!!timestamp foo", "!!bool maybe", "!!map [1]", "!!timestamp 2026-01-01x",
                                   "2026-02-30 10:00:00"])
def test_a_value_its_tag_cannot_read_is_a_flow_error_on_its_line(value: str) -> None:
    # found by bench/fuzz.py: PyYAML's constructors raised AttributeError, KeyError, TypeError
    err = refused(f"flow: t\nstart: {value}\nnodes: {{}}\n")
    assert err.line == 2 and err.reason.startswith("bad value")

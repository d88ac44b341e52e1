"""Branch conditions: the grammar, numeric comparisons, and clear errors for what makes no sense."""

from __future__ import annotations

import warnings

import pytest

from ivr.flows.conditions import MAX_CONDITION_LENGTH, compile_condition, evaluate


def holds(text: str, **variables: str) -> bool:
    return evaluate(compile_condition(text), variables)


@pytest.mark.parametrize(
    ("text", "variables", "expected"),
    [
        ("balance > -5", {"balance": "1"}, True),
        ("balance > -5", {"balance": "-7.50"}, False),
        ("balance >= -5.5", {"balance": "-5.50"}, True),
        ("balance < +3", {"balance": "2"}, True),
        ("-5 < balance", {"balance": "0"}, True),
        ("balance in (-1, -2)", {"balance": "-2"}, True),
        ("0 < balance <= 100", {"balance": "100.00"}, True),
        ("0 < balance <= 100", {"balance": "100.01"}, False),
        ("balance == 100", {"balance": "100.0"}, True),
        ("balance != 100", {"balance": "100.0"}, False),
        ("balance > 9", {"balance": "10"}, True),  # numbers, not text: "10" > "9" would be false
        ('balance > "9"', {"balance": "10"}, True),
        # literals are exact as written (found by tests/fuzz: as a float the last digit was lost)
        ("balance < 9475913175531.481", {"balance": "9475913175531.480"}, True),
        ("balance == 0.1", {"balance": "0.10"}, True),
        ("balance < 1e999", {"balance": "9" * 400}, True),
        ("balance == 1_000.5", {"balance": "1000.5"}, True),
    ],
)
def test_numbers_compare_as_numbers(text: str, variables: dict[str, str], expected: bool) -> None:
    assert evaluate(compile_condition(text), variables) is expected


@pytest.mark.parametrize("value", ["", "abc", "nan", "inf", "1e5", "0x10", "1_000", "12,5", "--1"])
def test_an_ordering_comparison_with_a_value_that_is_not_a_number_is_false(value: str) -> None:
    # both sides of the question are false, so the branch falls through to `else`
    assert not holds("balance > 5", balance=value)
    assert not holds("balance <= 5", balance=value)
    assert not holds("balance == 5", balance=value)
    assert holds("balance != 5", balance=value)


def test_text_equality_is_exact_and_in_lists_and_substrings() -> None:
    assert holds('tier == "vip" and language in ("it", "es")', tier="vip", language="es")
    assert not holds('customer_id == "007"', customer_id="7")  # text, not numbers
    assert holds('customer_id != ""', customer_id="7")
    assert holds('customer_id == ""')  # an unknown variable is empty
    assert holds('"vip" in tags', tags="gold,vip")
    assert holds('language not in ("it", "es")', language="en")
    assert holds("digit in (1, 2, 3)", digit="2")
    assert holds("a == b", a="x", b="x")


def test_booleans_and_bare_variables() -> None:
    assert holds("customer_id", customer_id="42")
    assert not holds("customer_id")
    assert holds("not customer_id or tier == 'vip'", tier="vip")
    assert holds("(a or b) and not c", b="1")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('"abc" > "100"', "'abc' is not a number"),
        ('tier > "gold"', "'gold' is not a number"),
        ("balance < (1, 2)", "needs numbers"),
        ("x in 5", "`in` needs a list"),
        ("(1, 2) == x", "a list is only allowed after `in`"),
        ("x == None", "None is not allowed"),
        ("x == True", "True is not allowed"),
        ("x > 1j", "1j is not allowed"),
        ("x == b'a'", "b'a' is not allowed"),
        ("x in (1, y)", "list items must be texts or numbers"),
        ("-x > 1", "a sign only goes before a number"),
        ("- -1 < x", "a sign only goes before a number"),
        ('__import__("os").system("x")', "Call is not allowed"),
        ("x.y", "Attribute is not allowed"),
        ("x + 1 > 2", "BinOp is not allowed"),
        ("x >", "invalid syntax"),
        ("x == 'a\x00'", "null"),
        ("", "empty"),
        ("x > " + "9" * 5000, f"longer than {MAX_CONDITION_LENGTH}"),
    ],
)
def test_what_makes_no_sense_is_refused_when_the_flow_loads(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match="condition") as info:
        compile_condition(text)
    assert reason in str(info.value)


def test_evaluate_accepts_values_that_are_not_text() -> None:
    tree = compile_condition("balance > 5 and tier == 'vip'")
    assert evaluate(tree, {"balance": 7, "tier": "vip"})  # type: ignore[dict-item]


@pytest.mark.parametrize(("text", "reason"), [("x == 1and y", "invalid decimal literal"),
                                               ('x == "\\d"', "invalid escape sequence")])
def test_what_python_only_warns_about_is_refused_without_a_warning(text: str, reason: str) -> None:
    # found by bench/fuzz.py: ast.parse printed SyntaxWarnings to stderr and accepted the condition
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match=reason):
            compile_condition(text)
    assert seen == []

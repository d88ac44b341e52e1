"""Safe conditions for `branch`: comparisons over call variables, and/or/not, no function calls.

    tier == "vip" and language == "it"
    balance > -5
    0 < balance <= 100
    customer_id != ""
    language in ("it", "es")

Grammar (a subset of Python expressions, checked when the flow loads):

    condition  := condition "or" condition | condition "and" condition | "not" condition
                | "(" condition ")" | comparison | operand
    comparison := operand (op operand)+            chained like 0 < x < 10
    op         := == | != | < | <= | > | >= | in | not in
    operand    := variable | "text" | 'text' | number | -number | +number
    after in   := a variable or text (substring test), or a list (..) / [..] of texts and numbers

Rules:
- A variable is text (an unknown one is empty). A *number* is an unquoted literal (`5`, `-2.5`)
  or a text that reads as a plain decimal number (`"12"`, `"-3.50"`; not `1e5`, `nan`, `1_000`).
- `<`, `<=`, `>`, `>=` compare numbers. A literal that is not a number there is refused at load
  time; a variable that does not hold a number makes the comparison **false** at run time
  (so `balance < 0` and `balance >= 0` are both false while `balance` is unknown: wire `else`).
- `==` and `!=` compare numbers when one side is a number literal (`balance == 100` holds for
  "100.0"; a value that is not a number is unequal), otherwise text exactly (`"007" != "7"`).
- `in` with a list is `==` against each item; with a variable or text it is a substring test.
- A bare operand is true when it is a non-empty text or a non-zero number.
"""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ivr.diagnostics import brief

MAX_CONDITION_LENGTH = 1000
_NUMBER = re.compile(r"\s*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*")
_ORDER = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_MEMBER = (ast.In, ast.NotIn)
_OPS = (ast.Eq, ast.NotEq, *_ORDER, *_MEMBER)
_EXACT = "ivr_exact"  # attribute of a float literal's node: its Decimal value as written


class Number:
    """A number literal (signed ones folded), kept apart from text literals."""

    __slots__ = ("value",)

    def __init__(self, value: Decimal) -> None:
        self.value = value


def compile_condition(text: str) -> ast.Expression:
    """Parse and check a condition; ValueError says what is wrong (never echoes variable values)."""
    if len(text) > MAX_CONDITION_LENGTH:
        raise ValueError(f"condition is longer than {MAX_CONDITION_LENGTH} characters")
    if not text.strip():
        raise ValueError("condition is empty")
    try:
        with warnings.catch_warnings():  # "1and x", "\\d": refused, not printed to stderr and accepted
            warnings.simplefilter("error", SyntaxWarning)
            warnings.simplefilter("error", DeprecationWarning)
            tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"condition {brief(text)}: {exc.msg}") from exc
    except (ValueError, RecursionError, MemoryError, Warning) as exc:  # null bytes; absurd nesting
        raise ValueError(f"condition {brief(text)}: {exc or 'nested too deeply'}") from exc
    for n in ast.walk(tree):  # a float loses digits: keep the literal as written
        if isinstance(n, ast.Constant) and type(n.value) is float:
            segment = ast.get_source_segment(text, n)
            if segment is not None and _as_number(segment.replace("_", "")) is not None:
                setattr(n, _EXACT, Decimal(segment.replace("_", "")))
    try:
        _check(tree.body)
    except _Refused as exc:
        raise ValueError(f"condition {brief(text)}: {exc}") from None
    except RecursionError:
        raise ValueError(f"condition {brief(text)}: nested too deeply") from None
    return tree


class _Refused(Exception):
    pass


def _check(n: ast.AST) -> None:
    if isinstance(n, ast.BoolOp):
        for v in n.values:
            _check(v)
    elif isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.Not):
        _check(n.operand)
    elif isinstance(n, ast.Compare):
        operands = [n.left, *n.comparators]
        for i, op in enumerate(n.ops):
            left, right = operands[i], operands[i + 1]
            if type(op) not in _OPS:
                raise _Refused(f"{type(op).__name__} is not allowed")
            if isinstance(left, ast.Tuple | ast.List):
                raise _Refused("a list is only allowed after `in`")
            _operand(left)
            if isinstance(op, _MEMBER):
                if isinstance(right, ast.Tuple | ast.List):
                    for e in right.elts:
                        if not isinstance(_literal(e), str | Number):
                            raise _Refused("list items must be texts or numbers")
                elif isinstance(_operand(right), Number):
                    raise _Refused("`in` needs a list, a variable or a text after it")
                continue
            if isinstance(right, ast.Tuple | ast.List):
                raise _Refused("a list is only allowed after `in`" if not isinstance(op, _ORDER)
                               else f"{_SYMBOL[type(op)]} needs numbers, not a list")
            _operand(right)
            if isinstance(op, _ORDER):
                for side in (left, right):
                    value = _literal(side)
                    if isinstance(value, str) and _as_number(value) is None:
                        raise _Refused(f"{_SYMBOL[type(op)]} needs numbers: {value!r} is not a number")
    else:
        _operand(n)


_SYMBOL: dict[type[ast.cmpop], str] = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}


def _operand(n: ast.AST) -> str | Number | None:
    """Check a variable or literal; the literal's value, None for a variable."""
    if isinstance(n, ast.Name):
        return None
    value = _literal(n)
    if value is None:
        raise _Refused(f"{type(n).__name__} is not allowed")
    return value


def _literal(n: ast.AST) -> str | Number | None:
    """A text or number literal (refusing other constants by name); None when not a literal."""
    negative = False
    if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub | ast.UAdd):
        inner = n.operand
        if not (isinstance(inner, ast.Constant) and type(inner.value) in (int, float)):
            raise _Refused("a sign only goes before a number")
        negative, n = isinstance(n.op, ast.USub), inner
    if not isinstance(n, ast.Constant):
        if isinstance(n, ast.UnaryOp):
            raise _Refused(f"{type(n.op).__name__} is not allowed")
        return None
    v = n.value
    if type(v) is str:
        return v
    if type(v) in (int, float):
        exact = getattr(n, _EXACT, None)
        d = exact if isinstance(exact, Decimal) else Decimal(v if type(v) is int else repr(v))
        # copy_negate, not -d: no rounding to the context's 28 digits
        return Number(d.copy_negate() if negative else d)
    raise _Refused(f"{v!r} is not allowed (use a text in quotes or a number)")


def _as_number(text: str) -> Decimal | None:
    return Decimal(text) if _NUMBER.fullmatch(text) else None


def evaluate(tree: ast.Expression, variables: Mapping[str, Any]) -> bool:
    """Whether a condition from `compile_condition` holds; never raises for such a condition."""
    return _truth(_eval(tree.body, variables))


def _truth(v: str | Number | bool) -> bool:
    if isinstance(v, Number):
        return v.value != 0
    return bool(v)


def _eval(n: ast.AST, env: Mapping[str, Any]) -> str | Number | bool:
    if isinstance(n, ast.BoolOp):
        values = (_truth(_eval(v, env)) for v in n.values)
        return all(values) if isinstance(n.op, ast.And) else any(values)
    if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.Not):
        return not _truth(_eval(n.operand, env))
    if isinstance(n, ast.Compare):
        operands = [n.left, *n.comparators]
        for i, op in enumerate(n.ops):
            if not _compare(op, operands[i], operands[i + 1], env):
                return False
        return True
    return _value(n, env)


def _value(n: ast.AST, env: Mapping[str, Any]) -> str | Number:
    if isinstance(n, ast.Name):
        v = env.get(n.id)
        return "" if v is None else v if isinstance(v, str) else str(v)
    literal = _literal(n)
    if literal is None:
        raise ValueError(f"cannot evaluate {type(n).__name__}")
    return literal


def _compare(op: ast.cmpop, left_node: ast.AST, right_node: ast.AST, env: Mapping[str, Any]) -> bool:
    left = _value(left_node, env)
    if isinstance(op, _MEMBER):
        if isinstance(right_node, ast.Tuple | ast.List):
            found = any(_equal(left, _value(e, env)) for e in right_node.elts)
        else:
            right = _value(right_node, env)
            found = _text(left) in _text(right)
        return found if isinstance(op, ast.In) else not found
    right = _value(right_node, env)
    if isinstance(op, ast.Eq | ast.NotEq):
        return _equal(left, right) == isinstance(op, ast.Eq)
    a, b = _number(left), _number(right)
    if a is None or b is None:
        return False  # documented: ordering a value that is not a number is false
    if isinstance(op, ast.Lt):
        return a < b
    if isinstance(op, ast.LtE):
        return a <= b
    if isinstance(op, ast.Gt):
        return a > b
    if isinstance(op, ast.GtE):
        return a >= b
    raise ValueError(f"cannot evaluate {type(op).__name__}")


def _equal(a: str | Number, b: str | Number) -> bool:
    if isinstance(a, Number) or isinstance(b, Number):
        x, y = _number(a), _number(b)
        return x is not None and y is not None and x == y
    return a == b


def _number(v: str | Number) -> Decimal | None:
    return v.value if isinstance(v, Number) else _as_number(v)


def _text(v: str | Number) -> str:
    return v if isinstance(v, str) else str(v.value)

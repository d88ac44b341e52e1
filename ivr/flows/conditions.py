"""Safe conditions for `branch`: comparisons over call variables, and/or/not, no function calls.

    tier == "vip" and language == "it"
    balance > 100
    customer_id != ""
    language in ("it", "es")
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from typing import Any

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}


_ALLOWED = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.Compare, ast.Name,
            ast.Load, ast.Constant, ast.Tuple, ast.List)


def compile_condition(text: str) -> ast.Expression:
    """Parse and check a condition; ValueError names what is not allowed."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"condition {text!r}: {exc.msg}") from exc
    for n in ast.walk(tree):
        ok = isinstance(n, _ALLOWED) or type(n) in _COMPARE
        if not ok:
            raise ValueError(f"condition {text!r}: {type(n).__name__} is not allowed")
    return tree


def evaluate(tree: ast.Expression, variables: Mapping[str, str]) -> bool:
    return bool(_eval(tree.body, variables))


def _num(v: Any) -> Any:
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return v
    return v


def _eval(n: ast.AST, env: Mapping[str, str]) -> Any:
    if isinstance(n, ast.BoolOp):
        values = (_eval(v, env) for v in n.values)
        return all(values) if isinstance(n.op, ast.And) else any(values)
    if isinstance(n, ast.UnaryOp):
        return not _eval(n.operand, env)
    if isinstance(n, ast.Compare):
        left = _eval(n.left, env)
        for op, right_node in zip(n.ops, n.comparators, strict=True):
            right = _eval(right_node, env)
            a, b = left, right
            if not isinstance(op, ast.In | ast.NotIn):
                a, b = _num(a), _num(b)
                if type(a) is not type(b):
                    a, b = str(left), str(right)
            if not _COMPARE[type(op)](a, b):
                return False
            left = right
        return True
    if isinstance(n, ast.Name):
        return env.get(n.id, "")
    if isinstance(n, ast.Constant):
        return n.value
    if isinstance(n, ast.Tuple | ast.List):
        return [str(_eval(e, env)) for e in n.elts]
    raise ValueError(f"cannot evaluate {type(n).__name__}")

"""The node contract: a frozen dataclass of parameters (checked from YAML) with `async run(ctx) -> edge`.

A node type declares the edges it may take. `edges` must all be wired in the flow file;
`optional_edges` fall back to the node's `fallback` (or the flow's) when not wired. `run` returns
an edge name, `END` when this flow is over, or `STOP` when the call is over.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, Union

from ivr.diagnostics import brief
from ivr.flows.prompt_ref import PromptRef

if TYPE_CHECKING:
    from ivr.flows.context import NodeContext

END = "__end__"  # this flow is over (a sub-flow returns to its caller)
STOP = "__stop__"  # the call is over, whatever flow it is in


class Node:
    """Base of every node type (subclasses are frozen dataclasses)."""

    type_name: ClassVar[str] = ""
    edges: ClassVar[tuple[str, ...]] = ("next",)
    optional_edges: ClassVar[tuple[str, ...]] = ()
    terminal: ClassVar[bool] = False  # may end the call (no edge needed)
    error_edge: ClassVar[str] = "failed"  # taken (if wired) when a backend or Redis fails in this node

    def targets(self) -> dict[str, str]:
        """Edges defined by parameters (menu options, branch cases): edge → node id."""
        return {}

    def problems(self) -> list[str]:
        """Parameter checks beyond types; each message becomes a `file:line` error."""
        return []

    def prompts(self) -> list[PromptRef]:
        """Every prompt this node may play (checked against the catalogue)."""
        return [v for v in vars(self).values() if isinstance(v, PromptRef)]

    def flow_refs(self) -> list[str]:
        """Other flows this node enters (goto/subflow)."""
        return []

    def check_refs(self, flows: Any) -> list[str]:
        """Checks against the whole loaded set (a schedule or queue rule that must exist ...)."""
        return []

    async def run(self, ctx: NodeContext) -> str:
        raise NotImplementedError


NODE_TYPES: dict[str, type[Node]] = {}
N = TypeVar("N", bound=type[Node])


def node_type(name: str) -> Callable[[N], N]:
    """Register a node class under its YAML `type:` name."""

    def register(cls: N) -> N:
        cls.type_name = name
        NODE_TYPES[name] = cls
        return cls

    return register


# --- parameters from YAML -------------------------------------------------------------------


def build_params(cls: type[Node], raw: Mapping[str, Any]) -> tuple[Node | None, list[tuple[str, str]]]:
    """Make a node from its YAML keys. Returns (node or None, [(key, message)])."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    found: list[tuple[str, str]] = []
    values: dict[str, Any] = {}
    for key, value in raw.items():
        name = str(key).replace("-", "_")
        name = {"else": "else_", "if": "if_"}.get(name, name)
        if name not in fields:
            known = ", ".join(sorted(f for f in fields)) or "none"
            found.append((key, f"unknown parameter {brief(key)} for {cls.type_name} (known: {known})"))
            continue
        try:
            values[name] = coerce(value, hints[name])
        except (TypeError, ValueError) as exc:
            found.append((key, f"{key}: {exc}"))
    for name, f in fields.items():
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required and name not in values and not any(k == name for k, _ in found):
            found.append((name, f"{cls.type_name} needs `{name}`"))
    if found:
        return None, found
    node = cls(**values)
    return node, [(k, m) for m in node.problems() for k in [""]]


def coerce(value: Any, hint: Any) -> Any:
    """Check a YAML value against a type hint; convert lists to tuples, keys to str."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg)
            except (TypeError, ValueError) as exc:
                errors.append(str(exc))
        raise ValueError(errors[0] if len(errors) == 1 else f"expected {_name(hint)}, got {brief(value)}")
    if hint is PromptRef:
        return PromptRef.parse(value)
    if hint is Any:
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise TypeError(f"expected true/false, got {brief(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected a whole number, got {brief(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"expected a number, got {brief(value)}")
        return float(value)
    if hint is str:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise TypeError(f"expected text, got {brief(value)}")
        return str(value)
    if origin in (tuple, list):
        if not isinstance(value, list):
            raise TypeError(f"expected a list, got {brief(value)}")
        return tuple(coerce(v, args[0]) for v in value)
    if origin in (dict, Mapping, typing.Mapping):
        if not isinstance(value, dict):
            raise TypeError(f"expected a mapping, got {brief(value)}")
        return {str(k): coerce(v, args[1]) for k, v in value.items()}
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if not isinstance(value, dict):
            raise TypeError(f"expected a mapping, got {brief(value)}")
        sub_hints = typing.get_type_hints(hint)
        names = {f.name for f in dataclasses.fields(hint)}
        kwargs = {}
        for k, v in value.items():
            name = "else_" if k == "else" else "if_" if k == "if" else str(k)
            if name not in names:
                raise ValueError(f"unknown key {brief(k)} (known: {', '.join(sorted(names))})")
            kwargs[name] = coerce(v, sub_hints[name])
        try:
            return hint(**kwargs)
        except TypeError as exc:
            raise ValueError(str(exc)) from exc
    raise TypeError(f"unsupported parameter type {brief(hint)}")


def _name(hint: Any) -> str:
    return getattr(hint, "__name__", str(hint))

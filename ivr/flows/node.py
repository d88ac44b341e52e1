"""The node contract: a frozen dataclass of parameters (checked from YAML) with `async run(ctx) -> edge`.

A node type declares the edges it may take. `edges` must all be wired in the flow file;
`optional_edges` fall back to the node's `fallback` (or the flow's) when not wired. `run` returns
an edge name, `END` when this flow is over, or `STOP` when the call is over.

`node_type` files a class in `NODE_TYPES` (importing `ivr.nodes` files every built-in type). Nothing
in `ivr.flows` reads that table: whoever loads flows passes the node types in (`NodeTypes`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from ivr.flows.prompt_ref import PromptRef
from ivr.validation import Checked, Loc, rename_keys, validate

if TYPE_CHECKING:
    from ivr.flows.context import NodeContext

END = "__end__"  # this flow is over (a sub-flow returns to its caller)
STOP = "__stop__"  # the call is over, whatever flow it is in


class Node(Checked):
    """Base of every node type (subclasses are frozen dataclasses, validated by `ivr.validation`).

    A field's docstring (the string below it) is its description in `ivr schema`.
    """

    type_name: ClassVar[str] = ""
    edges: ClassVar[tuple[str, ...]] = ("next",)
    optional_edges: ClassVar[tuple[str, ...]] = ()
    terminal: ClassVar[bool] = False  # may end the call (no edge needed)
    error_edge: ClassVar[str] = "failed"  # taken (if wired) when a backend or Redis fails in this node

    def targets(self) -> dict[str, str]:
        """Edges defined by parameters (menu options, branch cases): edge → node id."""
        return {}

    def problems(self) -> list[str]:
        """Parameter rules beyond types (run by the validator); each message becomes a `file:line` error."""
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


NodeTypes = Mapping[str, type[Node]]  # YAML `type:` name → node class, as the loader is given it
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


def build_params(cls: type[Node], raw: Mapping[str, Any]) -> tuple[Node | None, list[tuple[Loc, str]]]:
    """Make a node from its YAML keys (checked by `ivr.validation`) → (node or None, [(place, message)]).

    The place is the path of keys and list indexes as written (`("cases", 1, "goto")`; `()` for the
    node as a whole), for `ivr.validation.line_of`.
    """
    values, original = rename_keys(raw, lambda k: k.replace("-", "_"))
    node, found = validate(cls, values, what=cls.type_name)
    out: list[tuple[Loc, str]] = []
    for p in found:
        loc = p.loc
        if loc and isinstance(loc[0], str):
            loc = (original.get(loc[0], loc[0]), *loc[1:])
        out.append((loc, p.message))
    return node, out

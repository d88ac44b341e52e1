"""The flow file's own keys as models: the document (`flow`, `start`, `nodes` ...) and what every node has.

A node's parameters are its node type's dataclass (ivr/nodes/); these models hold the rest. The
loader validates with them and `ivr schema` describes them, so both read the same declaration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field

from ivr.validation import Checked

NodeId = Annotated[str, Field(min_length=1)]


@dataclass(frozen=True)
class FlowDoc(Checked):
    """A call flow: `flow` (its name, the AGI script name), `start`, `nodes`."""

    start: NodeId
    """the first node"""
    nodes: Annotated[Mapping[str, Any], Field(min_length=1)]
    """node id → node"""
    flow: str | None = None
    """the flow's name (the AGI script name); default: the file name"""
    fallback: NodeId | None = None
    """where a failing node goes (else: apology + the default queue)"""
    description: str = ""


@dataclass(frozen=True)
class NodeDoc(Checked):
    """What every node has beside its parameters."""

    type: str
    """the node type (menu, gather, queue ...)"""
    next: NodeId | Mapping[str, NodeId] | None = None
    """the next node, or edge → node"""
    fallback: NodeId | None = None
    """where this node goes when it fails"""
    note: str = ""
    """a comment for people reading the flow"""


NODE_KEYS = frozenset(NodeDoc.__dataclass_fields__)

"""Immutable flows: a reload builds new objects, so a live call keeps the flow it started with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ivr.flows.node import Node


@dataclass(frozen=True)
class FlowNode:
    """A node of a flow: its parameters (the node object), wired edges and source line."""

    id: str
    node: Node
    edges: Mapping[str, str]
    fallback: str | None
    line: int

    @property
    def type(self) -> str:
        return self.node.type_name


@dataclass(frozen=True)
class Flow:
    """One flow file: where to start, its nodes, its error handler."""

    name: str
    file: str
    start: str
    nodes: Mapping[str, FlowNode]
    fallback: str | None = None
    description: str = ""
    digest: str = ""


@dataclass(frozen=True)
class FlowSet:
    """Every flow loaded together (they may refer to each other), with the schedules and queue rules
    beside them in the flows directory (`schedules.yaml`, `queues.yaml`); swapped as one."""

    flows: Mapping[str, Flow] = field(default_factory=dict)
    version: str = ""
    schedules: Mapping[str, Any] = field(default_factory=dict)  # name → ivr.ops.schedule.Schedule
    routing: Any = None  # ivr.queueing.routing.RoutingRules

    def get(self, name: str) -> Flow | None:
        return self.flows.get(name)

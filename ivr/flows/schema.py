"""The JSON Schema of a flow file, generated from the node models (`ivr schema`; editors and the console use it).

Nodes are a union discriminated by `type`: each node type's parameters come from its dataclass
(descriptions from its docstring and its fields' docstrings), wrapped in what every node has
(`type`, `next` with the edges that type takes, `fallback`, `note`). The graph checks (dead edges,
unreachable nodes, missing prompts ...) stay with `ivr check`: a schema cannot see them.
"""

from __future__ import annotations

import inspect
from typing import Any, Literal

from pydantic import TypeAdapter

from ivr.flows.node import Node, NodeTypes
from ivr.flows.spec import FlowDoc, NodeDoc
from ivr.validation import adapter

NODE_ID = {"type": "string", "minLength": 1, "description": "a node id of this flow"}  # an edge's target


def flow_schema(node_types: NodeTypes) -> dict[str, Any]:
    """The schema of one flow file (JSON Schema draft 2020-12) with `node_types` (ivr.nodes.NODE_TYPES)."""
    mode: Literal["validation"] = "validation"
    keyed = [(name, mode, adapter(cls)) for name, cls in sorted(node_types.items())]
    per_type, wrapped = TypeAdapter.json_schemas(keyed, ref_template="#/$defs/{model}")
    defs: dict[str, Any] = dict(wrapped.get("$defs", {}))
    variants: dict[str, Any] = {}
    tops = set()
    for (name, _), schema in per_type.items():
        ref = schema.get("$ref", "").rsplit("/", 1)[-1]
        tops.add(ref)
        variants[f"node-{name}"] = _node_schema(name, node_types[name], defs[ref] if ref else schema)
    defs = {k: v for k, v in defs.items() if k not in tops}  # nested models (a branch's Case) stay
    defs.update(variants)
    defs["node"] = {
        "description": "One step of the call: a `type`, its parameters, and `next`.",
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"enum": sorted(node_types)}},
        "oneOf": [{"$ref": f"#/$defs/node-{name}"} for name in sorted(node_types)],
        "discriminator": {"propertyName": "type",
                          "mapping": {n: f"#/$defs/node-{n}" for n in sorted(node_types)}},
    }
    doc = adapter(FlowDoc).json_schema()
    doc["properties"]["nodes"]["additionalProperties"] = {"$ref": "#/$defs/node"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **doc,
        "title": "ivr flow",
        "$defs": defs,
    }


def _node_schema(name: str, cls: type[Node], params: dict[str, Any]) -> dict[str, Any]:
    props = dict(params.get("properties", {}))
    edges = [*cls.edges, *(e for e in cls.optional_edges if e not in cls.edges)]
    required_edges = [] if cls.terminal else list(cls.edges)
    edge_map: dict[str, Any] = {
        "type": "object", "additionalProperties": False,
        "properties": {e: {**NODE_ID, "description": f"edge `{e}`"} for e in edges},
    }
    if required_edges and edges != ["next"]:
        edge_map["required"] = required_edges
    choices: list[dict[str, Any]] = [edge_map] if edges else []
    if "next" in edges:
        choices.insert(0, {**NODE_ID, "description": "the next node"})
    envelope = adapter(NodeDoc).json_schema()["properties"]
    props = {
        "type": {**envelope["type"], "const": name},
        **props,
        "next": {**envelope["next"], "description": f"edges: {', '.join(edges) or 'none'}", "anyOf": choices}
        if choices else {"not": {}, "description": f"{name} has no `next`"},
        "fallback": envelope["fallback"],
        "note": envelope["note"],
    }
    required = ["type", *params.get("required", [])]
    if required_edges:
        required.append("next")
    return {
        "title": name,
        "description": inspect.getdoc(cls) or name,
        "type": "object",
        "additionalProperties": False,
        "properties": props,
        "required": required,
    }


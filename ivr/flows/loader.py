"""Flow YAML → Flow objects, with every finding reported as `file:line: reason`.

Checks: YAML syntax, unknown node types and parameters, wrong types, edges to unknown nodes,
unwired required edges (a menu without invalid/timeout), unreachable nodes, nodes from which no
end can be reached (a loop that would strand a caller), prompts missing in every language,
references to unknown flows, duplicate flow names.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

from ivr.diagnostics import Diagnostic, brief
from ivr.errors import FlowError
from ivr.flows.model import Flow, FlowNode, FlowSet
from ivr.flows.node import NodeTypes, build_params
from ivr.flows.spec import NODE_KEYS, FlowDoc, NodeDoc
from ivr.validation import describe, line_of, validate
from ivr.yamlsrc import LineDict, load_yaml

RESERVED = {"schedules.yaml", "queues.yaml"}  # beside the flows, loaded by their own loaders


class PromptIndex(Protocol):
    """What the loader needs from the prompt catalogue."""

    def has(self, name: str, language: str) -> bool: ...


def load_flow(path: Path, text: str | None = None, *, node_types: NodeTypes) -> tuple[Flow | None, list[Diagnostic]]:
    """One flow file → (Flow or None, findings). Graph checks inside the file included.

    `node_types` maps each YAML `type:` to its class (the service passes `ivr.nodes.NODE_TYPES`)."""
    file = str(path)
    found: list[Diagnostic] = []

    def err(line: int, msg: str) -> None:
        found.append(Diagnostic(file, line, msg))

    try:
        text = path.read_text(encoding="utf-8") if text is None else text
        doc = load_yaml(text, file)
    except FlowError as exc:
        return None, [Diagnostic(exc.file, exc.line, exc.reason)]
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Diagnostic(file, 1, f"cannot read: {exc}")]
    if not isinstance(doc, LineDict):
        return None, [Diagnostic(file, 1, "a flow file is a mapping with `flow`, `start` and `nodes`")]
    spec, problems = validate(FlowDoc, doc)
    for p in problems:
        err(line_of(doc, p.loc, doc.line), describe(p))
    name = str(doc.get("flow") or path.stem)
    raw_nodes = doc.get("nodes")
    if not isinstance(raw_nodes, LineDict) or not raw_nodes:
        return None, found
    start = spec.start if spec is not None else None
    fallback = spec.fallback if spec is not None else None

    nodes: dict[str, FlowNode] = {}
    for node_id, raw in raw_nodes.items():
        line = raw_nodes.line_of(node_id)
        built = _node(str(node_id), raw, line, err, node_types)
        if built is not None:
            nodes[built.id] = built
    if found or start is None:
        return None, found
    _check_graph(nodes, start, fallback, raw_nodes, doc, err)
    if found:
        return None, found
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    return Flow(name, file, start, nodes, fallback, str(doc.get("description", "")), digest), found


def _node(node_id: str, raw: object, line: int, err: _Err, node_types: NodeTypes) -> FlowNode | None:
    if not isinstance(raw, LineDict):
        err(line, f"node {brief(node_id)} must be a mapping with a `type`")
        return None
    type_name = raw.get("type")
    cls = node_types.get(str(type_name))
    if cls is None:
        err(raw.line_of("type"), f"node {brief(node_id)}: unknown type {brief(type_name)} "
            f"(known: {', '.join(sorted(node_types))})")
        return None
    params = {k: v for k, v in raw.items() if k not in NODE_KEYS}
    node, problems = build_params(cls, params)
    for loc, message in problems:
        err(line_of(raw, loc, line), f"node {brief(node_id)}: {message}")
    meta, meta_problems = validate(NodeDoc, {k: v for k, v in raw.items() if k in NODE_KEYS})
    for p in meta_problems:
        err(line_of(raw, p.loc, line), f"node {brief(node_id)}: {describe(p)}")
    if node is None or problems or meta is None:
        return None
    edges: dict[str, str] = {}
    allowed = set(cls.edges) | set(cls.optional_edges)
    if isinstance(meta.next, str):
        if "next" not in allowed:
            err(raw.line_of("next"), f"node {brief(node_id)}: {cls.type_name} takes `next` as a mapping of "
                f"{', '.join(sorted(allowed))}")
        edges["next"] = meta.next
    elif meta.next is not None:
        for edge, target in meta.next.items():
            if edge not in allowed:
                err(raw.line_of("next"), f"node {brief(node_id)}: {cls.type_name} has no edge {brief(edge)} "
                    f"(edges: {', '.join(sorted(allowed)) or 'none'})")
            else:
                edges[edge] = target
    edges.update(node.targets())
    missing = [e for e in cls.edges if e not in edges]
    if missing and not cls.terminal:
        err(line, f"node {brief(node_id)}: {cls.type_name} needs {' and '.join(repr(m) for m in missing)} "
            f"in `next`")
    return FlowNode(node_id, node, edges, meta.fallback, line)


class _Err(Protocol):
    def __call__(self, line: int, msg: str) -> None: ...


def _check_graph(
    nodes: dict[str, FlowNode], start: str, fallback: str | None, raw_nodes: LineDict, doc: LineDict,
    err: _Err,
) -> None:
    if start not in nodes:
        err(doc.line_of("start"), f"`start` names unknown node {brief(start)}")
        return
    if fallback is not None and fallback not in nodes:
        err(doc.line_of("fallback"), f"`fallback` names unknown node {brief(fallback)}")
    broken = False
    for n in nodes.values():
        raw = raw_nodes[n.id]
        for edge, target in n.edges.items():
            if target not in nodes:
                broken = True
                err(raw.line_of("next") if "next" in raw else raw.line,
                    f"node {brief(n.id)}: edge {brief(edge)} goes to unknown node {brief(target)}")
        if n.fallback is not None and n.fallback not in nodes:
            broken = True
            err(raw.line_of("fallback"), f"node {brief(n.id)}: fallback goes to unknown node {brief(n.fallback)}")
    if broken:
        return  # reachability findings would only repeat the dead edges

    def successors(node_id: str) -> Iterable[str]:
        n = nodes[node_id]
        yield from (t for t in n.edges.values() if t in nodes)
        for fb in (n.fallback, fallback):
            if fb in nodes:
                yield fb

    roots = [start] + [x for x in (fallback, *(n.fallback for n in nodes.values())) if x in nodes]
    reached = _closure(roots, successors)
    for node_id in nodes:
        if node_id not in reached:
            err(raw_nodes.line_of(node_id), f"node {brief(node_id)} is unreachable from `start`")
    # a node from which no terminal node can be reached strands the caller in a loop
    preds: dict[str, set[str]] = {k: set() for k in nodes}
    for k, n in nodes.items():
        for t in n.edges.values():
            if t in preds:
                preds[t].add(k)
    ends = [k for k, n in nodes.items() if n.node.terminal]
    can_end = _closure(ends, lambda k: preds[k])
    for node_id in nodes:
        if node_id in reached and node_id not in can_end:
            err(raw_nodes.line_of(node_id), f"node {brief(node_id)} has no way out: every path from it loops "
                "without reaching an end (queue, hangup, goto ...)")


def _closure(roots: Sequence[str], step: object) -> set[str]:
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        k = todo.pop()
        if k in seen:
            continue
        seen.add(k)
        todo.extend(step(k))  # type: ignore[operator]
    return seen


def load_flows(
    directory: Path, *, node_types: NodeTypes, prompts: PromptIndex | None = None,
    languages: Sequence[str] = ("en",),
) -> tuple[FlowSet, list[Diagnostic]]:
    """Every `*.yaml` under `directory` → a FlowSet (only meaningful when no errors were found)."""
    found: list[Diagnostic] = []
    flows: dict[str, Flow] = {}
    files = sorted(p for p in [*directory.glob("*.yaml"), *directory.glob("*.yml")] if p.name not in RESERVED) \
        if directory.is_dir() else []
    if not files:
        found.append(Diagnostic(str(directory), 0, "no flow files (*.yaml) found"))
    for path in files:
        flow, diags = load_flow(path, node_types=node_types)
        found.extend(diags)
        if flow is None:
            continue
        if flow.name in flows:
            found.append(Diagnostic(flow.file, 1, f"flow {brief(flow.name)} is also defined in "
                                    f"{flows[flow.name].file}"))
            continue
        flows[flow.name] = flow
    for flow in flows.values():
        for n in flow.nodes.values():
            for ref in n.node.flow_refs():
                if ref not in flows:
                    found.append(Diagnostic(flow.file, n.line, f"node {brief(n.id)}: unknown flow {brief(ref)}"))
            if prompts is not None:
                for pref in n.node.prompts():
                    for name in pref.names():
                        for lang in languages:
                            if not prompts.has(name, lang):
                                found.append(Diagnostic(flow.file, n.line, f"node {brief(n.id)}: prompt {brief(name)} "
                                             f"exists in neither recordings nor texts for language {brief(lang)}"))
    version = hashlib.sha256("".join(f.digest for f in flows.values()).encode()).hexdigest()[:12]
    return FlowSet(flows, version), found

"""`ivr check` for speech: phrases the recogniser cannot hear, and languages with no model (keypad only)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ivr.diagnostics import Diagnostic
from ivr.errors import FlowError
from ivr.flows.model import Flow, FlowNode, FlowSet
from ivr.speech.grammar import Grammar, normalize
from ivr.speech.registry import SpeechSettings, build_registry
from ivr.yamlsrc import LineDict, LineList, load_yaml


def listening(node: FlowNode) -> Grammar | None:
    """The grammar of a node that listens (a menu with `say`, a gather with `speech: true`), else None."""
    from ivr.nodes.gather import Gather
    from ivr.nodes.menu import Menu

    try:
        if isinstance(node.node, Menu) and node.node.listens:
            return node.node.grammar()
        if isinstance(node.node, Gather) and node.node.speech and not node.node.secure:
            return node.node.grammar()
    except ValueError:
        return None  # reported as an error by the node's own checks
    return None


def speech_findings(flows: FlowSet, languages: Sequence[str], section: Mapping[str, Any]) -> list[Diagnostic]:
    """Warnings for nodes that listen. Raises ConfigError for a bad `[speech]` section. Blocking (loads models)."""
    settings = SpeechSettings.from_mapping(section)
    nodes = [(flow, n, g) for flow in flows.flows.values() for n in flow.nodes.values()
             if (g := listening(n)) is not None]
    if not nodes or settings.mode == "off":
        return []
    registry = build_registry(settings)
    found: list[Diagnostic] = []
    try:
        for lang in registry.missing(languages):
            flow, first, _ = nodes[0]
            found.append(Diagnostic(flow.file, first.line, (
                f"node {first.id!r}: no speech recogniser for language {lang!r}: callers in {lang!r} hear "
                "'speech-use-keypad' and use the keypad (install a vosk model: speech.vosk_model_dir)"), "warning"))
        for flow, node, grammar in nodes:
            for lang in languages:
                rec = registry.for_language(lang)
                if rec is None or grammar.digits:
                    continue
                missing = set(rec.missing_words(grammar))
                for key, phrase, line in _phrases(flow, node):
                    bad = sorted(w for w in normalize(phrase).split() if w in missing)
                    if bad:
                        found.append(Diagnostic(flow.file, line, (
                            f"node {node.id!r}: say {key!r}: phrase {phrase!r} can never be recognised "
                            f"({rec.name} does not know {', '.join(bad)})"), "warning"))
    finally:
        registry.close()
    return sorted(set(found))


def _phrases(flow: Flow, node: FlowNode) -> list[tuple[str, str, int]]:
    """(option key, phrase, line) for each phrase of a menu's `say`, with the line where it is written."""
    from ivr.nodes.menu import Menu

    assert isinstance(node.node, Menu)
    raw: Any = None
    try:
        doc = load_yaml(Path(flow.file).read_text(encoding="utf-8"), flow.file)
        raw = doc["nodes"][node.id]["say"]
    except (OSError, FlowError, KeyError, TypeError):
        pass
    out: list[tuple[str, str, int]] = []
    for key, phrases in node.node.say.items():
        lines: list[int] = []
        if isinstance(raw, LineDict):
            written: Any = key if key in raw else int(key) if key.isdigit() and int(key) in raw else key
            items = raw.get(written)
            if isinstance(items, LineList):
                lines = items.item_lines
            lines = lines or [raw.line_of(written)] * len(phrases)
        for i, phrase in enumerate(phrases):
            out.append((key, phrase, lines[i] if i < len(lines) else node.line))
    return out

"""YAML reading that remembers line numbers, so every finding can say `file:line`."""

from __future__ import annotations

from typing import Any

import yaml

from ivr.errors import FlowError


class LineDict(dict[Any, Any]):
    """A mapping from YAML with the line of the mapping and of each key (1-based)."""

    line: int = 0
    key_lines: dict[Any, int]

    def line_of(self, key: Any) -> int:
        return self.key_lines.get(key, self.line)


class LineList(list[Any]):
    """A sequence from YAML with its line (1-based) and each item's line."""

    line: int = 0
    item_lines: list[int]


class _Loader(yaml.SafeLoader):
    filename = "<string>"


def _mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    out = LineDict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key, str | int | float | bool):
            raise FlowError(loader.filename, line, "mapping keys must be plain values")
        if key in out:
            raise FlowError(loader.filename, line, f"duplicate key {key!r}")
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = line
    return out


def _sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    out = LineList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [child.start_mark.line + 1 for child in node.value]
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)


def load_yaml(text: str, filename: str) -> Any:
    """Parse one YAML document; syntax errors become FlowError(file, line, reason)."""
    loader = _Loader(text)
    loader.filename = filename
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise FlowError(filename, line, f"YAML syntax: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise FlowError(filename, 1, f"YAML: {exc}") from exc
    except ValueError as exc:  # a value YAML itself rejects, e.g. the date 2026-13-01
        mark = loader.get_mark()
        raise FlowError(filename, mark.line + 1 if mark else 1, f"bad value: {exc}") from exc
    finally:
        loader.dispose()

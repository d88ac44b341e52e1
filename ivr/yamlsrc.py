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


class _BadValue(yaml.MarkedYAMLError):
    """A scalar its tag cannot read (`!!timestamp foo`, 2026-02-30), at the node's own mark."""


class _Loader(yaml.SafeLoader):
    filename = "<string>"

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, AttributeError, KeyError, TypeError, IndexError) as exc:
            # PyYAML's own constructors fail like this on explicit tags: !!timestamp foo, !!bool maybe
            problem = str(exc) if isinstance(exc, ValueError) else f"not a valid {node.tag.rsplit(':', 1)[-1]}"
            raise _BadValue(None, None, f"bad value: {problem}", node.start_mark) from exc

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:  # noqa: N803 - PyYAML's name
        # PyYAML's scanner is quadratic in the depth of [ { nesting: stop before it gets slow
        if self.flow_level >= MAX_DEPTH:
            raise yaml.scanner.ScannerError(None, None, f"nested deeper than {MAX_DEPTH} levels", self.get_mark())
        super().fetch_flow_collection_start(TokenClass)

    def add_indent(self, column: int) -> bool:
        # the same for block nesting (- - - x, or ever deeper indentation): the composer recurses per level
        if len(self.indents) >= MAX_DEPTH and self.indent < column:
            raise yaml.scanner.ScannerError(None, None, f"nested deeper than {MAX_DEPTH} levels", self.get_mark())
        return bool(super().add_indent(column))


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


MAX_DEPTH = 64  # nesting of mappings and lists; deeper is refused before it can exhaust the stack
MAX_VALUES = 200_000  # values once aliases are expanded ("billion laughs" is refused)


def load_yaml(text: str, filename: str) -> Any:
    """Parse one YAML document; every problem becomes FlowError(file, line, reason)."""
    loader: _Loader | None = None
    try:
        loader = _Loader(text)  # the reader already refuses control characters here
        loader.filename = filename
        node = loader.get_single_node()
        if node is None:
            return None
        _measure(node, filename)
        return loader.construct_document(node)
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise FlowError(filename, line, f"YAML: unacceptable character #x{exc.character:04x}"
                        if isinstance(exc.character, int) else f"YAML: {exc.reason}") from exc
    except _BadValue as exc:
        raise FlowError(filename, exc.problem_mark.line + 1 if exc.problem_mark else 1, str(exc.problem)) from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise FlowError(filename, line, f"YAML syntax: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise FlowError(filename, 1, f"YAML: {exc}") from exc
    except RecursionError as exc:  # the composer recurses per level, before _measure can count them
        raise FlowError(filename, _line(loader), f"YAML nested deeper than {MAX_DEPTH} levels") from exc
    except ValueError as exc:  # a value YAML itself rejects, e.g. the date 2026-13-01
        raise FlowError(filename, _line(loader), f"bad value: {exc}") from exc
    finally:
        if loader is not None:
            loader.dispose()


def _line(loader: _Loader | None) -> int:
    mark = loader.get_mark() if loader is not None else None
    return mark.line + 1 if mark else 1


def _measure(root: yaml.Node, filename: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH and documents that expand (through aliases) past MAX_VALUES."""
    memo: dict[int, tuple[int, int]] = {}  # id(node) -> (values once expanded, height)
    active: set[int] = set()

    def walk(node: yaml.Node, depth: int) -> tuple[int, int]:
        key = id(node)
        if key in active:  # a recursive alias: the constructor reports it with its line
            return 1, 1
        if key not in memo:
            if depth > MAX_DEPTH:
                raise FlowError(filename, node.start_mark.line + 1, f"YAML nested deeper than {MAX_DEPTH} levels")
            active.add(key)
            children = ([c for pair in node.value for c in pair] if isinstance(node, yaml.MappingNode)
                        else node.value if isinstance(node, yaml.SequenceNode) else [])
            size, height = 1, 1
            for child in children:
                s, h = walk(child, depth + 1)
                size, height = size + s, max(height, h + 1)
                if size > MAX_VALUES:
                    raise FlowError(filename, child.start_mark.line + 1,
                                    f"YAML aliases expand to more than {MAX_VALUES:,} values")
            active.discard(key)
            memo[key] = size, height
        size, height = memo[key]
        if depth + height - 1 > MAX_DEPTH:
            raise FlowError(filename, node.start_mark.line + 1, f"YAML nested deeper than {MAX_DEPTH} levels")
        return size, height

    walk(root, 1)

"""The invariant of each parser: any input parses or is answered by the parser's own clear error.

Each target takes one generated input, returns the error messages it was answered with (empty when
it parsed) and raises `Broken` when the answer itself is wrong (a FlowError without a line, a
Diagnostic for another file, a reply with an unknown code ...). Any other exception is a crash.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ivr.agi.protocol import ReplyParser, format_command, parse_env
from ivr.diagnostics import MAX_MESSAGE as MAX_FINDING
from ivr.diagnostics import Diagnostic, errors
from ivr.errors import AgiError, FlowError
from ivr.flows.conditions import compile_condition, evaluate
from ivr.flows.loader import load_flow
from ivr.flows.prompt_ref import PromptRef, render, template_fields
from ivr.nodes import NODE_TYPES
from ivr.ops.schedule import load_schedules
from ivr.yamlsrc import load_yaml

FLOW_PATH = Path("fuzz/flow.yaml")
SCHEDULES_PATH = Path("fuzz/schedules.yaml")
MAX_MESSAGE = 2000  # an error message must not echo a whole (alias-expanded) document
INSTANTS = (datetime(2027, 3, 28, 1, 30, tzinfo=UTC), datetime(2027, 12, 24, 11, 0, tzinfo=UTC))


class Broken(AssertionError):
    """A parser answered, but not the way its contract says."""


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise Broken(what)


def _message(exc: BaseException) -> str:
    text = str(exc)
    _check(bool(text.strip()), f"{type(exc).__name__} without a message")
    _check(len(text) <= MAX_MESSAGE, f"{type(exc).__name__} message of {len(text)} characters")
    return text


def agi_env(lines: Sequence[str]) -> list[str]:
    """The `agi_` environment block → a dict of names, or AgiError."""
    try:
        env = parse_env(lines)
    except AgiError as exc:
        return [_message(exc)]
    for key in env:
        _check(re.fullmatch(r"[a-z0-9_]+", key) is not None, f"env key {key!r}")
    return []


def agi_replies(lines: Sequence[str]) -> list[str]:
    """Reply lines fed one by one (HANGUP, 520- blocks ...) → Replies, or AgiError (the session then ends)."""
    parser = ReplyParser()
    for line in lines:
        try:
            reply = parser.feed(line)
        except AgiError as exc:
            return [_message(exc)]
        if reply is None:
            continue
        _check(reply.code in (200, 510, 511, 520), f"reply code {reply.code}")
        if reply.code == 200:
            try:
                reply.result_int  # noqa: B018 - the property raises or not
            except AgiError as exc:
                _message(exc)
    return []


def agi_command(command: str, args: Sequence[str | int]) -> list[str]:
    """A command and its arguments → one wire line that splits back into the same arguments."""
    try:
        line = format_command(command, *args)
    except AgiError as exc:
        return [_message(exc)]
    _check(not any(c in line for c in "\r\n\x00"), "a line break reached the wire")
    _check(line.startswith(command), "command word changed")
    _check(_split_args(line[len(command):]) == [str(a) for a in args], "arguments do not split back")
    return []


def _split_args(rest: str) -> list[str]:
    """Asterisk's view of `"a" "b\\"c" 5`: quoted strings with \\ escapes, or bare words."""
    out: list[str] = []
    i = 0
    while i < len(rest):
        if rest[i] == " ":
            i += 1
            continue
        if rest[i] != '"':
            j = rest.find(" ", i)
            j = len(rest) if j < 0 else j
            out.append(rest[i:j])
            i = j
            continue
        i += 1
        buf: list[str] = []
        while i < len(rest) and rest[i] != '"':
            if rest[i] == "\\" and i + 1 < len(rest):
                i += 1
            buf.append(rest[i])
            i += 1
        _check(i < len(rest), "unterminated quote on the wire")
        out.append("".join(buf))
        i += 1
    return out


def condition(text: str, variables: Mapping[str, str]) -> list[str]:
    """A `branch` condition → refused with ValueError at load time, or true/false for any variables."""
    try:
        tree = compile_condition(text)
    except ValueError as exc:
        message = _message(exc)
        _check(message.startswith("condition"), f"condition error does not say so: {message[:80]!r}")
        return [message]
    _check(isinstance(evaluate(tree, variables), bool), "evaluate is not true/false")
    return []


def template(text: str, variables: Mapping[str, str]) -> list[str]:
    """A `{var}` template → ValueError at load time, or a rendering that never fails a live call."""
    try:
        fields = template_fields(text)
    except ValueError as exc:
        return [_message(exc)]
    out = render(text, variables)
    _check(isinstance(out, str), "render did not give text")
    for name in fields:
        value = variables.get(name, "")
        _check(value in out, f"field {name!r} not filled")
    return []


def prompt(raw: Any) -> list[str]:
    """A node's `prompt:` value (any YAML shape) → PromptRef, or ValueError."""
    try:
        ref = PromptRef.parse(raw)
    except ValueError as exc:
        return [_message(exc)]
    for name in ref.names():
        _check(bool(name) and not any(c.isspace() for c in name), f"prompt name {name!r}")
    for text in ref.texts():
        template_fields(text)
    return []


def _lines(text: str) -> int:
    """Lines as YAML counts them (\x85, \u2028, \u2029 break lines too), plus one: a mark may sit after the end."""
    return len(_BREAKS.findall(text)) + 2


_BREAKS = re.compile("\r\n|[\n\r\x85\u2028\u2029]")


def _diagnostics(found: Sequence[Diagnostic], path: Path, text: str) -> list[str]:
    last = _lines(text)
    for d in found:
        _check(d.file == str(path), f"finding for another file: {d.file!r}")
        _check(isinstance(d.line, int) and 1 <= d.line <= last, f"finding without a line: {d}")
        _check(bool(d.message.strip()) and len(d.message) <= MAX_FINDING,
               f"finding message of {len(d.message)} characters")
    return [d.message for d in found]


def yaml_document(text: str) -> list[str]:
    """Any YAML text → data, or FlowError carrying this file and a line."""
    try:
        load_yaml(text, str(FLOW_PATH))
    except FlowError as exc:
        _check(exc.file == str(FLOW_PATH), f"FlowError for {exc.file!r}")
        _check(1 <= exc.line <= _lines(text), f"FlowError line {exc.line}")
        return [_message(exc)]
    return []


def flow_file(text: str) -> list[str]:
    """A flow file → a Flow, or `file:line: reason` findings (and then no Flow)."""
    flow, found = load_flow(FLOW_PATH, text, node_types=NODE_TYPES)
    messages = _diagnostics(found, FLOW_PATH, text)
    _check((flow is None) == bool(errors(list(found))), "a flow came back with errors, or none without")
    if flow is not None:
        _check(flow.start in flow.nodes, "start is not a node")
        for node in flow.nodes.values():
            for target in node.edges.values():
                _check(target in flow.nodes, f"edge to unknown node {target!r}")
    return messages


def schedules_file(text: str) -> list[str]:
    """schedules.yaml → schedules that answer `state_at`, or `file:line: reason` findings."""
    schedules, found = load_schedules(SCHEDULES_PATH, text=text)
    messages = _diagnostics(found, SCHEDULES_PATH, text)
    for sched in schedules.values():
        for when in INSTANTS:
            state = sched.state_at(when)
            _check(state.state in ("open", "closed", "holiday"), f"state {state.state!r}")
    return messages


TARGETS: dict[str, Callable[..., list[str]]] = {
    "agi_env": agi_env, "agi_replies": agi_replies, "agi_command": agi_command,
    "condition": condition, "template": template, "prompt": prompt,
    "yaml": yaml_document, "flow": flow_file, "schedules": schedules_file,
}

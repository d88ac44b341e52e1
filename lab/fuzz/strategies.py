"""Hypothesis strategies for near-valid parser input: mutated flow/schedule YAML, AGI blocks and replies,
conditions from their grammar, templates. Random text is only one of the ingredients.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import date
from typing import Any

import yaml
from hypothesis import strategies as st

from ivr.nodes import NODE_TYPES
from lab.fuzz import seeds

# --- text mutation --------------------------------------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn, texts: Sequence[str], tokens: Sequence[str]) -> str:
    """A seed text after 1-4 edits: lines deleted, doubled, swapped or re-indented; tokens put in;
    spans cut; the text truncated."""
    text = draw(st.sampled_from(texts))
    for _ in range(draw(st.integers(1, 4))):
        lines = text.split("\n")
        kind = draw(st.integers(0, 7))
        i = draw(st.integers(0, max(0, len(lines) - 1)))
        pos = draw(st.integers(0, len(text)))
        if kind == 0:
            del lines[i]
        elif kind == 1:
            lines.insert(i, lines[i])
        elif kind == 2:
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif kind == 3:
            lines[i] = draw(st.sampled_from(("", " ", "  ", "    ", "\t"))) + lines[i].lstrip(
                " " if draw(st.booleans()) else "")
        elif kind == 4:
            text = text[:pos] + draw(st.sampled_from(tokens)) + text[pos:]
            continue
        elif kind == 5:
            end = min(len(text), pos + draw(st.integers(1, 12)))
            text = text[:pos] + draw(st.sampled_from(tokens)) + text[end:]
            continue
        elif kind == 6:
            text = text[:pos] + text[min(len(text), pos + draw(st.integers(1, 40))):]
            continue
        else:
            text = text[:max(1, pos)]  # hypothesis favours 0: an empty text is only one case
            continue
        text = "\n".join(lines)
    return text


# Dangerous or odd values that parsers meet in files people (or attackers) write.
ODD_VALUES = (
    "", "~", "null", "true", "no", "-1", "0", "1e999", "-.inf", ".nan", "0x1f", "0o17", "1_000",
    "2026-13-01", "2026-02-30", "2027-04-30", "12-24", "02-29", "13-45", "99999999999999999999-1",
    "9" * 5000, "America", "Europe", "a" * 300, "Europe/Rome", "../etc", "/etc/passwd", "Mars/Base",
    "\x00", "\ufeff", "\u2028", "\x85", "é", "🙂", "a{4294967296}", "(" * 1000, "[z-a]",
    "'", '"', "\\", "{", "}", "{x}", "{0}", "{x!r}", "{x:>{y}}", "{{", "}}", "a b", "-", "#", "*", "1", "12",
)
YAML_TOKENS = (
    ":", ": ", "- ", "{", "}", "[", "]", ", ", "&a ", "*a", "&b [*b]", "<<: *a", "? ", "|\n", ">-\n",
    "'", '"', "#", "\t", "\n", "\n  ", "\n    ", "---\n", "...\n", "%YAML 1.1\n", "!!binary aGk=", "!!set {a, b}",
    "!!python/object/apply:os.system ['true']", "!!int ", "!!str ", "!!float ", "!!timestamp ", "!!omap ",
    "[" * 400, "{a: " * 200, "- " * 200, *ODD_VALUES,
)


def _param_names() -> list[str]:
    names = {"type", "next", "fallback", "note"}
    for cls in NODE_TYPES.values():
        names.update(f.name.rstrip("_") for f in dataclasses.fields(cls))  # type: ignore[arg-type]
        names.update(cls.edges + cls.optional_edges)
    return sorted(names)


NODE_TYPE_NAMES = tuple(sorted(NODE_TYPES))
PARAM_NAMES = tuple(_param_names())
FLOW_TOKENS = YAML_TOKENS + NODE_TYPE_NAMES + PARAM_NAMES
SCHEDULE_TOKENS = YAML_TOKENS + (
    "timezone", "weekly", "holidays", "exceptions", "recurring", "ical", "country", "subdiv", "language",
    "date", "hours", "closed", "reason", "mon", "mon-fri", "sat-sun", "fri-mon", "daily", "sun", "moon",
    "08:00-20:00", "24:00-25:00", "20:00-08:00", "00:00-24:00", "8:00-9:00", "IT", "US", "XX", "NY",
    "closures.ics",
)


# --- YAML-like values -----------------------------------------------------------------------------

scalars: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from(ODD_VALUES), st.text(max_size=12), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
    st.booleans(), st.none(), st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31)),
)
def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(PARAM_NAMES), st.text(max_size=6)), inner, max_size=4),
    )


values: st.SearchStrategy[Any] = st.recursive(scalars, _containers, max_leaves=12)
node_ids = st.one_of(st.sampled_from(("a", "b", "menu", "bye", "agent")), st.text(min_size=1, max_size=6))


@st.composite
def flow_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A flow as data: real node types with real parameter names, random values and edges."""
    ids = draw(st.lists(node_ids, min_size=1, max_size=6, unique=True))
    nodes: dict[str, Any] = {}
    for node_id in ids:
        type_name = draw(st.sampled_from(NODE_TYPE_NAMES))
        cls = NODE_TYPES[type_name]
        names = [f.name.rstrip("_") for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        node: dict[str, Any] = {"type": type_name}
        for name in draw(st.lists(st.sampled_from(names), max_size=4, unique=True)) if names else []:
            node[name] = draw(values)
        edges = list(cls.edges + cls.optional_edges)
        if draw(st.booleans()) and edges:
            wired: list[str] = draw(st.lists(st.sampled_from(edges), max_size=4, unique=True))
            node["next"] = {e: draw(st.sampled_from(ids)) for e in wired}
        elif draw(st.booleans()):
            node["next"] = draw(st.one_of(st.sampled_from(ids), values))
        nodes[node_id] = node
    doc: dict[str, Any] = {"flow": draw(st.one_of(st.just("fuzz"), values)), "start": draw(st.sampled_from(ids)),
                           "nodes": nodes}
    if draw(st.booleans()):
        doc[draw(st.sampled_from(("fallback", "description", "extra")))] = draw(
            st.one_of(st.sampled_from(ids), values))
    return doc


def dumped(docs: st.SearchStrategy[Any]) -> st.SearchStrategy[str]:
    """Documents written as YAML, in block, flow or mixed style."""
    return st.tuples(docs, st.sampled_from((None, False, True))).map(
        lambda d: yaml.safe_dump(d[0], allow_unicode=True, default_flow_style=d[1], sort_keys=False))


def alias_bomb(depth: int, width: int) -> str:
    """`billion laughs`: each level repeats the previous one `width` times."""
    lines = ["flow: t", "start: a", f"x0: &a0 [{', '.join(['l'] * width)}]"]
    lines += [f"x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, depth)]
    lines += ["nodes:", f"  a: {{type: say, prompt: *a{depth - 1}, next: b}}", "  b: {type: hangup}"]
    return "\n".join(lines) + "\n"


def nested(depth: int, opener: str, closer: str) -> str:
    """Nodes nested `depth` deep: [[[...]]], {a: {a: ...}} or - - - x."""
    return f"flow: t\nstart: a\nnodes:\n  {opener * depth}{closer * (depth if closer != 'x' else 1)}\n"


structural = st.one_of(
    st.builds(alias_bomb, st.integers(2, 9), st.integers(2, 9)),
    st.builds(nested, st.integers(50, 5000), st.sampled_from(("[", "{a: ", "- ")), st.sampled_from(("]", "}", "x"))),
)


def flow_texts() -> st.SearchStrategy[str]:
    return st.one_of(
        mutated(seeds.FLOWS, FLOW_TOKENS), mutated(seeds.FLOWS, FLOW_TOKENS),
        dumped(flow_documents()), dumped(flow_documents()).flatmap(lambda t: mutated([t], FLOW_TOKENS)),
        structural, st.text(max_size=200),
    )


@st.composite
def schedule_documents(draw: st.DrawFn) -> dict[str, Any]:
    hours = st.one_of(st.sampled_from(SCHEDULE_TOKENS[-14:]), scalars)
    body: dict[str, Any] = {
        "timezone": draw(st.one_of(st.sampled_from(("Europe/Rome", "UTC", "America/New_York", "America",
                                                    "Europe", "a" * 300, "../x", "\x00", "")), scalars)),
        "weekly": draw(st.dictionaries(st.sampled_from(SCHEDULE_TOKENS[-30:-14]),
                                       st.one_of(hours, st.lists(hours, max_size=3)), max_size=3)),
    }
    if draw(st.booleans()):
        body["holidays"] = draw(st.one_of(st.sampled_from(("IT", "US", "XX")), st.fixed_dictionaries(
            {"country": st.sampled_from(("IT", "US", "XX", ""))},
            optional={"subdiv": st.one_of(st.sampled_from(("NY", "RM", "XX")), scalars),
                      "language": st.one_of(st.sampled_from(("it", "en_US", "xx")), scalars)}), values))
    for key in ("exceptions", "recurring"):
        if draw(st.booleans()):
            body[key] = draw(st.lists(st.fixed_dictionaries({"date": scalars}, optional={
                "hours": st.lists(hours, max_size=2), "closed": st.booleans(), "reason": scalars}), max_size=3))
    return {"schedules": {draw(st.sampled_from(("office", "x", "24/7"))): body}}


def schedule_texts() -> st.SearchStrategy[str]:
    return st.one_of(
        mutated(seeds.SCHEDULES, SCHEDULE_TOKENS), mutated(seeds.SCHEDULES, SCHEDULE_TOKENS),
        dumped(schedule_documents()), st.text(max_size=200),
    )


# --- AGI ------------------------------------------------------------------------------------------

ENV_NAMES = ("request", "channel", "language", "type", "uniqueid", "version", "callerid", "calleridname",
             "callingpres", "dnid", "rdnis", "context", "extension", "priority", "enhanced", "accountcode",
             "threadid", "network", "network_script", "arg_1", "arg_2")
wire_text = st.one_of(st.text(max_size=30), st.sampled_from(ODD_VALUES),
                      st.text(alphabet="0123456789()=;,.- \t\r\\\"'abcdefgHANGUP", max_size=30))


@st.composite
def env_line(draw: st.DrawFn) -> str:
    name = draw(st.one_of(st.sampled_from(ENV_NAMES), st.text(max_size=8)))
    line = f"agi_{name}: {draw(wire_text)}"
    return draw(st.one_of(st.just(line), mutated([line], ("", ":", " ", "AGI_", "\r", "\x00", "é", "\n"))))


env_blocks = st.one_of(
    st.lists(env_line(), max_size=25),
    st.builds(lambda lines, n: lines * n, st.lists(env_line(), min_size=1, max_size=3), st.integers(50, 120)),
)

CANNED_REPLIES = (
    "HANGUP", "510 Invalid or unknown command", "511 Command Not Permitted on a dead channel or intercepted",
    "520-Invalid command syntax.  Proper usage follows:", " Usage: STREAM FILE <filename> <escape digits>",
    "520 End of proper usage.", "200 result=0", "200 result=1 (timeout)", "200 result=", "200 result=-1",
    "200 result=0 (a (nested) value) endpos=4000",
)


@st.composite
def reply_200(draw: st.DrawFn) -> str:
    result = draw(st.one_of(st.integers(-5, 300).map(str), st.sampled_from(("", "9" * 5000, "1.5", "x", "٣")),
                            st.text(max_size=5)))
    line = f"200 result={result}"
    if draw(st.booleans()):
        line += f" ({draw(wire_text)})"
    for _ in range(draw(st.integers(0, 3))):
        line += f" {draw(st.sampled_from(('endpos', 'timeout', 'x', '')))}={draw(wire_text)}"
    return line


reply_line = st.one_of(st.sampled_from(CANNED_REPLIES), reply_200(), wire_text,
                       reply_200().flatmap(lambda r: mutated([r], ("(", ")", " ", "=", "\r", "x=1", ") y=2"))),
                       st.sampled_from(CANNED_REPLIES).flatmap(lambda r: mutated([r], ("-", " ", "5", "\x00"))))
long_reply = st.builds(lambda piece, n, end: f"200 result=1 ({piece * n}{end}",
                       st.sampled_from((")", ") a=b", "a=)", " (x) ", "\\)")), st.integers(100, 2000),
                       st.sampled_from(("", " !", ") endpos=1", ")")))
reply_blocks = st.one_of(
    st.lists(reply_line, max_size=20), long_reply.map(lambda line: [line]),
    st.builds(lambda head, body, n: [head, *body * n], st.just(CANNED_REPLIES[3]),
              st.lists(reply_line, min_size=1, max_size=2), st.integers(1, 120)),
)
agi_commands = st.tuples(
    st.one_of(st.sampled_from(("STREAM FILE", "GET DATA", "SET VARIABLE", "EXEC", "WAIT FOR DIGIT")),
              st.text(max_size=12)),
    st.lists(st.one_of(st.integers(-10**9, 10**9), wire_text, st.text(max_size=1100, alphabet="ab\"\\ ")),
             max_size=4),
)

# --- conditions and templates ---------------------------------------------------------------------

VARIABLE_NAMES = ("balance", "tier", "language", "customer_id", "x", "tags", "None", "True")
number_text = st.one_of(
    st.integers(-10**6, 10**6).map(str), st.decimals(allow_nan=False, allow_infinity=False, places=2).map(str),
    st.sampled_from(("-5", "+3", " 5 ", "5.", ".5", "-0", "00012", "1e5", "nan", "inf", "1_000", "12,5", "--1",
                     "9" * 400)),
)
variable_values = st.dictionaries(st.sampled_from(VARIABLE_NAMES), st.one_of(number_text, wire_text), max_size=6)


def _quoted(s: str) -> str:
    return repr(s)


literal = st.one_of(
    st.integers(-1000, 10**6).map(str), st.floats(allow_nan=False).map(repr), number_text.map(_quoted),
    st.text(max_size=6).map(_quoted), st.sampled_from(("-5", "- 5", "+2.5", "1e999", "-x", "--1", "None", "True",
                                                        "1j", "b'a'", "...", "''", '"', "'abc'", '"100"')),
)
operand = st.one_of(st.sampled_from(VARIABLE_NAMES), literal)
listing = st.lists(st.one_of(literal, st.sampled_from(VARIABLE_NAMES)), max_size=4).map(
    lambda items: "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")")
OPS = ("==", "!=", "<", "<=", ">", ">=", "in", "not in", "=", "<>", "=>", "is", "+", "and")
comparison = st.one_of(
    st.builds(lambda a, op, b: f"{a} {op} {b}", operand, st.sampled_from(OPS), st.one_of(operand, listing)),
    st.builds(lambda a, op1, b, op2, c: f"{a} {op1} {b} {op2} {c}", operand, st.sampled_from(OPS[:6]), operand,
              st.sampled_from(OPS[:6]), operand),
    operand,
)
def _combined(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds(lambda a, op, b: f"{a} {op} {b}", inner, st.sampled_from(("and", "or")), inner),
        inner.map(lambda a: f"not {a}"), inner.map(lambda a: f"({a})"),
        st.builds(lambda f, a: f"{f}({a})", st.sampled_from(("len", "__import__", "int")), inner),
    )


condition_grammar = st.recursive(comparison, _combined, max_leaves=8)
condition_texts = st.one_of(
    condition_grammar, condition_grammar, condition_grammar,
    condition_grammar.flatmap(lambda c: mutated([c], ("(", ")", "-", "'", '"', " ", "not ", ".", "[0]", "\x00"))),
    st.integers(0, 9).flatmap(lambda i: st.text(min_size=1, max_size=40) if i else st.sampled_from((
        "not " * 240 + "x", "(" * 300 + "x" + ")" * 300, "x > " + "9" * 5000, "x > 1" + "0" * 900))),
)

template_piece = st.one_of(
    st.text(max_size=8), st.sampled_from(VARIABLE_NAMES).map(lambda n: "{" + n + "}"),
    st.sampled_from(("{", "}", "{{", "}}", "{0}", "{}", "{x!r}", "{x:>10}", "{x.y}", "{x[0]}", "{ x }", "{é}",
                     "{x:{y}}", "{x!}", "{!r}", "{:}", "{customer_name}", "{" + "a" * 3000 + "!r}")),
)
template_texts = st.lists(template_piece, max_size=8).map("".join)
prompt_values = st.one_of(
    values, template_texts.map(lambda t: {"text": t}),
    st.dictionaries(st.sampled_from(("en", "it", "*", 5)), template_texts, max_size=3).map(lambda d: {"text": d}),
    st.lists(st.one_of(st.sampled_from(("welcome", "main-menu", "a b", "")), template_texts.map(
        lambda t: {"text": t})), max_size=4),
)


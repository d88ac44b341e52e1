"""The one validation layer: typed models checked by pydantic, errors told as `key: reason` at a YAML line.

Every file format and settings section is declared once as a typed model (a frozen dataclass or a
pydantic model) and checked here. YAML values are taken as they are written: a number is never
read from text (`retries: "3"` is refused), true/false never from 0/1, but a number where text is
expected is that text (`options: {1: balance}`, `queue: 100`). Errors come back as
`Problem(path, message)` in the house's own words; `line_of` maps a path back to its YAML line.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import BeforeValidator, ConfigDict, Field, GetCoreSchemaHandler, TypeAdapter, ValidationError
from pydantic_core import PydanticCustomError, core_schema

from ivr.diagnostics import brief
from ivr.errors import ConfigError
from ivr.yamlsrc import LineDict, LineList

T = TypeVar("T")
Loc = tuple[str | int, ...]


def _alias(name: str) -> str:
    """Python's `if_`/`else_` are `if`/`else` in YAML."""
    return name[:-1] if name.endswith("_") else name


# The configuration every model shares (stdlib dataclasses carry it as `__pydantic_config__`).
MODEL_CONFIG = ConfigDict(extra="forbid", coerce_numbers_to_str=True, use_attribute_docstrings=True,
                          alias_generator=_alias, populate_by_name=True, arbitrary_types_allowed=True)


# Settings sections read from TOML, where text is always written as text: a number is not a name.
SECTION_CONFIG = ConfigDict(**MODEL_CONFIG)
SECTION_CONFIG["coerce_numbers_to_str"] = False


# What another system sends us (backend replies, records read back from Redis): keys we do not know
# are ignored (the other side may be newer), numbers are taken as text where text is expected.
REPLY_CONFIG = ConfigDict(extra="ignore", coerce_numbers_to_str=True, arbitrary_types_allowed=True)


def strict_scalars(schema: Any) -> Any:
    """Numbers and true/false exactly as written: no `"3"` → 3, no 1 → true (text stays lax for numbers)."""
    if isinstance(schema, dict):
        if schema.get("type") in ("int", "bool", "float"):
            schema["strict"] = True
        for value in schema.values():
            strict_scalars(value)
    elif isinstance(schema, list):
        for value in schema:
            strict_scalars(value)
    return schema


class Checked:
    """Mixin for model classes: strict scalars, and the class's own `problems()` run by the validator.

    `problems()` holds the rules one field's type cannot say (min <= max, a regex that compiles, a known
    timezone); each message it returns is one finding.
    """

    __pydantic_config__ = MODEL_CONFIG
    __strict_scalars__: ClassVar[bool] = True  # False: settings, where the environment gives text for all

    def problems(self) -> list[str]:
        return []

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        schema = handler(source)
        if cls.__strict_scalars__:
            strict_scalars(schema)
        return core_schema.no_info_after_validator_function(_run_problems, schema)


def _split_commas(value: Any) -> Any:
    items = value.split(",") if isinstance(value, str) else value
    if isinstance(items, list | tuple):
        return tuple(t for t in (i.strip() if isinstance(i, str) else i for i in items) if t != "")
    return value


# Numbers with a range, for models and the flow schema alike.
Positive = Annotated[float, Field(gt=0)]  # seconds, limits
NonNegative = Annotated[float, Field(ge=0)]
AtLeastOne = Annotated[int, Field(ge=1)]  # retries, attempts

# A list that the environment may give as "en, it".
CommaList = Annotated[tuple[str, ...], BeforeValidator(_split_commas)]


def _run_problems(obj: Any) -> Any:
    found = obj.problems()
    if found:
        raise PydanticCustomError("rules", "{problems}", {"problems": found})
    return obj


_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def adapter(kind: Any) -> TypeAdapter[Any]:
    """One cached TypeAdapter per model (building one costs milliseconds)."""
    found = _ADAPTERS.get(kind)
    if found is None:
        found = _ADAPTERS[kind] = TypeAdapter(kind)
    return found


@dataclass(frozen=True)
class Problem:
    """One finding: where in the document (keys and list indexes) and what is wrong.

    `message` is what a flow finding says (`retries: expected a whole number, got 'three'`);
    `reason` is the same without the place (`expected a whole number, got 'three'`).
    """

    loc: Loc
    message: str
    reason: str = ""

    @property
    def key(self) -> str:
        """`options.1`, `cases.0.if`: the path as a user reads it ('' for the whole thing)."""
        return ".".join(str(p) for p in self.loc)


def validate(kind: type[T], raw: Any, *, what: str = "") -> tuple[T | None, list[Problem]]:
    """Check `raw` against the model `kind` → (value or None, problems). `what` names it in messages."""
    try:
        return adapter(kind).validate_python(raw), []
    except ValidationError as exc:
        return None, explain(exc, kind, what)


def explain(exc: ValidationError, kind: Any = None, what: str = "") -> list[Problem]:
    """pydantic's errors in the house's words; the alternatives of one union become one problem."""
    out: list[Problem] = []
    groups: dict[Loc, list[Any]] = {}
    for err in exc.errors(include_url=False):
        loc = _clean_loc(err["loc"])
        if err["type"] == "rules":
            out += [Problem(loc, f"{_path(loc)}: {m}" if loc else str(m), str(m))
                    for m in err.get("ctx", {}).get("problems", [])]
        elif err["type"] in ("missing", "missing_argument", "unexpected_keyword_argument", "extra_forbidden"):
            out.append(_problem([err], kind, what, loc))
        else:
            groups.setdefault(loc, []).append(err)
    out += [_problem(errs, kind, what, loc) for loc, errs in groups.items()]
    return out


def quiet(p: Problem) -> str:
    """A problem without the value that was read (a reply or a record may carry a caller's data)."""
    where = p.key or "reply"
    return f"{where}: {(p.reason or p.message).split(', got ', 1)[0]}"


def describe(p: Problem) -> str:
    """A problem for a file finding, led by its top-level key: `priority_by_tier: vip: expected a whole number ...`."""
    if len(p.loc) <= 1:
        return p.message
    return f"{p.loc[0]}: {_path(p.loc[1:])}: {p.reason or p.message}"


def validate_section(kind: type[T], raw: Any, prefix: str) -> T:
    """A settings section (`[auth]`, `[speech]`) → its model; ConfigError names the bad key
    (`setting speech.endpoint.end_silence: expected a number, got 'long'`)."""
    value, found = validate(kind, raw)
    if value is None or found:
        p = at_key(found[0], kind) if found else Problem((), "invalid")
        where = ".".join([prefix, *map(str, p.loc)]) if prefix else ".".join(map(str, p.loc))
        reason = p.reason or p.message
        if p.loc and p.loc[0] in _hidden(kind):  # a token or secret: never its value in an error
            reason = reason.split(", got ", 1)[0]
        raise ConfigError(f"setting {where}: {reason}" if where else p.message)
    return value


def at_key(p: Problem, kind: Any = None) -> Problem:
    """A whole-model rule's `key: reason` (from `problems()`) is placed at that key (and its line)."""
    key, sep, rest = p.message.partition(": ")
    if p.loc or not sep or not key.isidentifier():
        return p
    if kind is not None and key not in getattr(kind, "__dataclass_fields__", {}):
        return p
    return Problem((key,), p.message, rest)


def _hidden(kind: Any) -> set[str]:
    """Fields kept out of repr (secrets): their values never appear in a message."""
    fields = getattr(kind, "__dataclass_fields__", {})
    return {name for name, f in fields.items() if not getattr(f, "repr", True)}


_BRANCHES = {"str", "int", "float", "bool", "none", "tuple", "list", "dict"}


def _clean_loc(loc: Sequence[int | str]) -> Loc:
    """Drop pydantic's names of union alternatives (`confirm.bool`, `prompt.function-plain[parse()]`)."""
    return tuple(p for p in loc if not (isinstance(p, str) and (
        "[" in p or p in _BRANCHES or p.startswith(("constrained-", "function-", "lax-", "json-or-python")))))


_WORDS = {
    "int_type": "expected a whole number", "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number", "float_type": "expected a number",
    "float_parsing": "expected a number", "bool_type": "expected true/false", "bool_parsing": "expected true/false",
    "string_type": "expected text", "dict_type": "expected a mapping", "mapping_type": "expected a mapping",
    "list_type": "expected a list", "tuple_type": "expected a list", "dataclass_type": "expected a mapping",
    "model_type": "expected a mapping", "model_attributes_type": "expected a mapping",
    "dataclass_args_type": "expected a mapping",
}


def _problem(errs: list[Any], kind: Any, what: str, loc: Loc) -> Problem:
    err = errs[0]
    t = err["type"]
    name = str(loc[-1]) if loc else ""
    top = len(loc) == 1
    if t in ("unexpected_keyword_argument", "extra_forbidden"):
        known = ", ".join(known_keys(kind, loc[:-1])) or "none"
        reason = f"unknown key: expected one of {known}"
        if what and top:
            return Problem(loc, f"unknown parameter {brief(name)} for {what} (known: {known})", reason)
        return Problem(loc, (f"{_path(loc[:-1])}: " if len(loc) > 1 else "")
                       + f"unknown key {brief(name)}: expected one of {known}", reason)
    if t in ("missing", "missing_argument"):
        told = f"{what} needs `{name}`" if what else f"needs `{name}`"
        return Problem(loc, told if top else f"{_path(loc[:-1])}: needs `{name}`", "missing")
    words = list(dict.fromkeys(_WORDS[e["type"]] for e in errs if e["type"] in _WORDS))
    if words:
        text = "expected " + " or ".join(w.removeprefix("expected ") for w in words) + f", got {err['input']!r}"
    elif t in _BOUNDS:
        text = _BOUNDS[t].format(**err.get("ctx", {})) + f", got {err['input']!r}"
    elif t == "literal_error":
        text = f"expected {err.get('ctx', {}).get('expected', 'one of the listed values')}, got {err['input']!r}"
    elif t == "value_error":
        text = str(err.get("ctx", {}).get("error", err["msg"]))
    else:
        text = err["msg"][:1].lower() + err["msg"][1:]
    return Problem(loc, f"{_path(loc)}: {text}" if loc else text, text)


_BOUNDS = {
    "greater_than": "must be above {gt}", "greater_than_equal": "must be at least {ge}",
    "less_than": "must be below {lt}", "less_than_equal": "must be at most {le}",
    "too_short": "needs at least {min_length} item(s)", "too_long": "takes at most {max_length} item(s)",
}


def _path(loc: Loc) -> str:
    return ".".join(str(p) for p in loc)


def known_keys(kind: Any, loc: Loc = ()) -> list[str]:
    """The keys a model (or the model nested at `loc`) accepts, as written in YAML."""
    for part in loc:
        if isinstance(part, int) or kind is None:
            continue
        hints = _hints(kind)
        kind = _model_in(hints.get(str(part)) or hints.get(f"{part}_"))
    implied = getattr(kind, "__implied_keys__", ())  # filled in by the loader, not written in the file
    return sorted(_alias(n) for n in _hints(kind) if n not in implied) if kind is not None else []


def _hints(kind: Any) -> dict[str, Any]:
    if not isinstance(kind, type):
        return {}
    names = getattr(kind, "__dataclass_fields__", None) or getattr(kind, "model_fields", None) or {}
    try:
        hints = typing.get_type_hints(kind)
    except (NameError, TypeError):
        hints = {}
    return {n: hints.get(n) for n in names}


def _model_in(hint: Any) -> Any:
    """The dataclass or model inside `tuple[Case, ...]`, `Mapping[str, Rule]`, `Rule | None` ..."""
    if isinstance(hint, type) and _hints(hint):
        return hint
    for arg in typing.get_args(hint):
        if (found := _model_in(arg)) is not None:
            return found
    return None


def line_of(raw: Any, loc: Loc, default: int) -> int:
    """The YAML line of the deepest key of `loc` that exists in `raw` (else `default`)."""
    line = default
    node = raw
    for part in loc:
        if isinstance(node, LineDict):
            key = part if part in node else next((k for k in node if str(k) == str(part)), None)
            if key is None:
                break
            line = node.line_of(key)
            node = node[key]
        elif isinstance(node, LineList) and isinstance(part, int) and 0 <= part < len(node):
            line = node.item_lines[part]
            node = node[part]
        else:
            break
    return line


def rename_keys(raw: Mapping[Any, Any], rename: Callable[[str], str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A mapping with its top-level keys renamed (`min-digits` → `min_digits`) → (renamed, new → original)."""
    out: dict[str, Any] = {}
    original: dict[str, Any] = {}
    for key, value in raw.items():
        name = rename(str(key))
        out[name] = value
        original[name] = key
    return out, original

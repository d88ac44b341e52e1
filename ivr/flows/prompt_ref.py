"""What a node says: prompt names from the catalogue and/or inline TTS text per language."""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ivr.diagnostics import brief


@dataclass(frozen=True)
class PromptItem:
    """One piece: a catalogue name, or inline text (by language; "*" = every language)."""

    name: str | None = None
    text: Mapping[str, str] | None = None

    def text_for(self, language: str, default_language: str) -> str | None:
        if self.text is None:
            return None
        for key in (language, "*", default_language):
            if key in self.text:
                return self.text[key]
        return next(iter(self.text.values()), None)


@dataclass(frozen=True)
class PromptRef:
    """An ordered list of pieces played one after another."""

    items: tuple[PromptItem, ...]

    @classmethod
    def parse(cls, raw: Any) -> PromptRef:
        """`welcome` | `[welcome, menu]` | `{text: "Hi {customer_name}"}` | `{text: {en: .., it: ..}}`."""
        raws = list(raw) if isinstance(raw, list) else [raw]
        if not raws:
            raise ValueError("a prompt needs at least one item")
        return cls(tuple(_item(r) for r in raws))

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        """Validated by `parse`; described to editors as the three shapes a prompt takes."""
        from pydantic_core import core_schema as cs

        text = cs.union_schema([cs.str_schema(), cs.dict_schema(cs.str_schema(), cs.str_schema(), min_length=1)])
        item = cs.union_schema([cs.str_schema(pattern=r"^\S+$"),
                                cs.typed_dict_schema({"text": cs.typed_dict_field(text)}, extra_behavior="forbid")])
        return cs.no_info_plain_validator_function(
            lambda raw: raw if isinstance(raw, PromptRef) else cls.parse(raw),
            json_schema_input_schema=cs.union_schema([item, cs.list_schema(item, min_length=1)]),
            ref="prompt", metadata={"pydantic_js_updates": {
                "description": "a catalogue name, a list of names played in turn, or inline TTS text: "
                               "{text: \"Hello {customer_name}\"} or {text: {en: Hello, it: Ciao}}"}})

    def names(self) -> list[str]:
        return [i.name for i in self.items if i.name]

    def texts(self) -> list[str]:
        return [t for i in self.items if i.text for t in i.text.values()]


def _item(raw: Any) -> PromptItem:
    if isinstance(raw, str):
        if not raw or any(c.isspace() for c in raw):
            raise ValueError(f"prompt name {brief(raw)} must be one word (use `text:` for inline speech)")
        return PromptItem(name=raw)
    if isinstance(raw, dict) and set(raw) == {"text"}:
        text = raw["text"]
        if isinstance(text, str):
            return PromptItem(text={"*": _checked(text)})
        if isinstance(text, dict) and text and all(isinstance(v, str) for v in text.values()):
            return PromptItem(text={str(k): _checked(v) for k, v in text.items()})
        raise ValueError("`text` must be a string or a mapping of language → string")
    raise ValueError(f"a prompt is a name, a list, or {{text: ...}}, not {brief(raw)}")


def _checked(text: str) -> str:
    template_fields(text)
    return text


def template_fields(text: str) -> set[str]:
    """The `{name}` fields of a template; ValueError on bad syntax."""
    fields: set[str] = set()
    for _, field, spec, conv in string.Formatter().parse(text):
        if field is not None:
            if not field.isidentifier() or spec or conv:
                raise ValueError(f"bad template field {{{field[:40]}}} in {brief(text)}")
            fields.add(field)
    return fields


class _Missing(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def render(template: str, variables: Mapping[str, str]) -> str:
    """Fill `{name}` fields; an unknown name renders empty (never fail a live call)."""
    return template.format_map(_Missing(variables))

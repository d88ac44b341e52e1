"""Findings about files (flows, prompts, config) reported as `file:line: severity: reason`."""

from __future__ import annotations

import reprlib
from dataclasses import dataclass
from typing import Any, Literal

Severity = Literal["error", "warning"]
MAX_MESSAGE = 1000  # a finding that quotes a huge value from the file is cut here


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One finding at a place in a file; errors block a load, warnings do not."""

    file: str
    line: int
    message: str
    severity: Severity = "error"

    def __post_init__(self) -> None:
        if len(self.message) > MAX_MESSAGE:
            object.__setattr__(self, "message", self.message[:MAX_MESSAGE - 1] + "…")

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.severity}: {self.message}"


def errors(found: list[Diagnostic]) -> list[Diagnostic]:
    """Only the findings that block loading."""
    return [d for d in found if d.severity == "error"]


class _Brief(reprlib.Repr):
    """repr() cut short at every level, so a finding never echoes a whole (alias-expanded) document."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel, self.maxstring, self.maxother, self.maxlong = 2, 60, 60, 40
        self.maxlist = self.maxtuple = self.maxdict = self.maxset = self.maxfrozenset = 4

    def repr_LineDict(self, x: dict[Any, Any], level: int) -> str:  # noqa: N802 - reprlib's naming
        return self.repr_dict(x, level)

    def repr_LineList(self, x: list[Any], level: int) -> str:  # noqa: N802
        return self.repr_list(x, level)


def brief(value: Any) -> str:
    """A value as a finding quotes it: repr(), at most ~60 characters per text, 4 items per list."""
    return _Brief().repr(value)

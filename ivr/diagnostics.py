"""Findings about files (flows, prompts, config) reported as `file:line: severity: reason`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One finding at a place in a file; errors block a load, warnings do not."""

    file: str
    line: int
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.severity}: {self.message}"


def errors(found: list[Diagnostic]) -> list[Diagnostic]:
    """Only the findings that block loading."""
    return [d for d in found if d.severity == "error"]

"""The lock files pin every dependency pyproject.toml names, within its bounds (run scripts/lock after a change)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]


def _pins(name: str) -> dict[str, str]:
    text = (ROOT / name).read_text()
    return {canonicalize_name(m.group(1)): m.group(2) for m in re.finditer(r"(?m)^([A-Za-z0-9_.-]+)==(\S+)", text)}


def _wanted(extras: list[str] | None) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    groups = project["optional-dependencies"]
    for extra in groups if extras is None else extras:
        reqs += [Requirement(r) for r in groups[extra]]
    env = {"python_version": "3.11", "sys_platform": "linux", "platform_system": "Linux"}
    return [r for r in reqs if r.marker is None or r.marker.evaluate(env)]


def test_every_dependency_is_pinned_within_its_bounds() -> None:
    for lock, extras in (("requirements.lock", None), ("requirements-service.lock", ["demo"])):
        pins = _pins(lock)
        for req in _wanted(extras):
            name = canonicalize_name(req.name)
            assert name in pins, f"{lock} has no pin for {req.name}: run scripts/lock"
            assert req.specifier.contains(pins[name], prereleases=True), \
                f"{lock} pins {req.name}=={pins[name]}, outside {req.specifier}: run scripts/lock"

"""`ivr schema`: the JSON Schema of a flow file takes every shipped and good flow, and refuses bad ones."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from ivr.cli import main
from ivr.flows.loader import RESERVED
from ivr.flows.schema import flow_schema
from ivr.nodes import NODE_TYPES

ROOT = Path(__file__).resolve().parents[2]
FLOWS = sorted(p for p in (ROOT / "dialplans").glob("*.yaml") if p.name not in RESERVED) + \
    sorted((ROOT / "tests" / "flows" / "good").glob("*.yaml"))
BAD = ROOT / "tests" / "flows" / "bad"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = flow_schema(NODE_TYPES)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _doc(path: Path) -> object:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", FLOWS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_shipped_and_good_flow_is_valid(validator: jsonschema.Draft202012Validator, path: Path) -> None:
    problems = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(_doc(path))]
    assert problems == []


@pytest.mark.parametrize("name", ["unknown_param", "unknown_type", "wrong_type", "menu_without_timeout"])
def test_bad_files_are_refused(validator: jsonschema.Draft202012Validator, name: str) -> None:
    assert not validator.is_valid(_doc(BAD / f"{name}.yaml"))


@pytest.mark.parametrize("node", [
    {"type": "say", "prompt": "welcome"},  # no next
    {"type": "say", "prompt": "two words", "next": "b"},  # a prompt name is one word
    {"type": "say", "prompt": {"txt": "hello"}, "next": "b"},
    {"type": "menu", "prompt": "m", "options": {"1": "b"}, "next": {"invalid": "b", "timeout": "b", "other": "b"}},
    {"type": "gather", "prompt": "p", "var": "v", "secure": "yes", "next": "b"},
    {"type": "hangup", "next": "b"},
    {"type": "branch", "cases": [{"if": "x == 1", "goto": "b", "then": "c"}], "else": "b"},
])
def test_bad_nodes_are_refused(validator: jsonschema.Draft202012Validator, node: dict[str, object]) -> None:
    doc = {"flow": "t", "start": "a", "nodes": {"a": node, "b": {"type": "hangup"}}}
    assert not validator.is_valid(doc)


def test_every_node_type_is_in_the_union_with_its_description() -> None:
    defs = flow_schema(NODE_TYPES)["$defs"]
    assert sorted(defs["node"]["discriminator"]["mapping"]) == sorted(NODE_TYPES)
    for name, cls in NODE_TYPES.items():
        assert defs[f"node-{name}"]["properties"]["type"]["const"] == name
        assert defs[f"node-{name}"]["description"] == inspect.getdoc(cls)


def test_ivr_schema_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == flow_schema(NODE_TYPES)

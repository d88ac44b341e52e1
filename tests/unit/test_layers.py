"""Import layering: flows/ never pulls in the node types, schedules and queue rules never pull in the flow loader."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


def _loaded_after(*modules: str) -> set[str]:
    """The `ivr` modules a fresh interpreter has loaded after importing `modules`."""
    code = ("import importlib, json, sys\n"
            f"for m in {list(modules)!r}: importlib.import_module(m)\n"
            "print(json.dumps(sorted(m for m in sys.modules if m == 'ivr' or m.startswith('ivr.'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    return set(json.loads(out.stdout))


def test_the_flow_package_does_not_import_the_node_types() -> None:
    loaded = _loaded_after("ivr.flows.context", "ivr.flows.model", "ivr.flows.node", "ivr.flows.loader",
                           "ivr.flows.registry", "ivr.flows.engine", "ivr.flows.schema", "ivr.flows.spec")
    assert sorted(m for m in loaded if m.startswith("ivr.nodes")) == []


@pytest.mark.parametrize("module", ["ivr.ops.schedule", "ivr.queueing.routing"])
def test_schedules_and_queue_rules_read_yaml_without_the_flow_loader(module: str) -> None:
    loaded = _loaded_after(module)
    assert "ivr.yamlsrc" in loaded
    assert sorted(m for m in loaded if m.startswith(("ivr.flows", "ivr.nodes"))) == []


def test_the_loader_knows_only_the_node_types_it_is_given(tmp_path: Path) -> None:
    from ivr.flows.loader import load_flow
    from ivr.nodes import NODE_TYPES

    doc = "flow: f\nstart: a\nnodes:\n  a: {type: hangup}\n"
    flow, found = load_flow(tmp_path / "f.yaml", doc, node_types=NODE_TYPES)
    assert flow is not None and found == []
    flow, found = load_flow(tmp_path / "f.yaml", doc, node_types={"say": NODE_TYPES["say"]})
    assert flow is None
    assert [str(d) for d in found] == [f"{tmp_path / 'f.yaml'}:4: error: node 'a': unknown type 'hangup' (known: say)"]

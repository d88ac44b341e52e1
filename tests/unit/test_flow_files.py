"""Every bad flow file carries its expected `line: reason`; every good one loads cleanly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ivr.flows.loader import load_flows
from ivr.nodes import NODE_TYPES
from ivr.testing import FakePrompts

HERE = Path(__file__).parent.parent / "flows"
KNOWN_PROMPTS = {"welcome", "main-menu", "goodbye", "invalid", "no-input", "apology", "transfer-agent",
                 "coming-soon"}


@pytest.mark.parametrize("path", sorted((HERE / "bad").glob("*.yaml")), ids=lambda p: p.stem)
def test_bad_flow_is_rejected_with_file_line_reason(path: Path, tmp_path: Path) -> None:
    expect = re.match(r"# expect: (\d+): (.+)", path.read_text().splitlines()[0])
    assert expect, f"{path} needs a first line '# expect: LINE: reason'"
    (tmp_path / path.name).write_text(path.read_text())
    _, found = load_flows(tmp_path, node_types=NODE_TYPES, prompts=FakePrompts(KNOWN_PROMPTS), languages=("en", "it"))
    rendered = [str(d) for d in found if d.severity == "error"]
    want_line, want_text = int(expect.group(1)), expect.group(2)
    assert any(d.line == want_line and want_text in d.message and d.file.endswith(path.name)
               for d in found), rendered


def test_good_flows_load_without_errors() -> None:
    flows, found = load_flows(HERE / "good", node_types=NODE_TYPES, prompts=FakePrompts(KNOWN_PROMPTS),
                              languages=("en", "it"))
    assert [str(d) for d in found] == []
    assert set(flows.flows) == {"small"}


def test_the_demo_line_checks_clean_against_its_real_prompts() -> None:
    from ivr.cli import main

    root = Path(__file__).resolve().parents[2]
    assert main(["check", str(root)]) == 0

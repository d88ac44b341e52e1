"""Runs every scripted caller in tests/flows/calls/*.yaml against the real service over AGI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ivr.testing import FakeAsterisk
from tests.appkit import running

CALLS = Path(__file__).parent / "calls"
DOCS = {f: yaml.safe_load(f.read_text()) for f in sorted(CALLS.glob("*.yaml"))}
CASES = [(doc["flow"], c) for doc in DOCS.values() for c in doc["calls"]]


@pytest.mark.parametrize(("flow", "case"), CASES, ids=[c["name"] for _, c in CASES])
async def test_scripted_caller(flow: str, case: dict[str, Any], tmp_path: Path) -> None:
    async with running(tmp_path, extra={"speech": {"mode": "typed"}}) as app:  # say:"..." tokens are speech
        await FakeAsterisk(case["keys"], env=case.get("env", {})).call("127.0.0.1", app.agi.port, flow)
        journey = app.journeys.recent[-1]
    expect = case["expect"]
    events = journey["journey"]
    assert journey["outcome"] == expect["outcome"]
    if "visits" in expect:
        assert [e["node"] for e in events if e["kind"] == "enter"] == expect["visits"]
    if "says" in expect:
        said = [p for e in events if e["kind"] == "prompt" for p in e["prompts"]]
        remaining = iter(said)  # `says` must appear in this order (other prompts may come between)
        assert all(p in remaining for p in expect["says"]), said
    if "language" in expect:
        assert journey["language"] == expect["language"]

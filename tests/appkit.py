"""Start the real service (App) on free ports with a private copy of the flows and prompts."""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from ivr.app import App
from ivr.config import Settings

ROOT = Path(__file__).resolve().parent.parent
PROMPT_CACHE = Path("/tmp/ivr-test-prompt-cache")  # content-addressed: safe to share between runs


ALWAYS_OPEN = 'schedules:\n  office:\n    timezone: UTC\n    weekly: {daily: "00:00-24:00"}\n'


def project_copy(tmp: Path, *, anytime: bool = False) -> tuple[Path, Path]:
    """A private copy of dialplans/ and prompts/. `anytime`: the demo office is open around the clock and
    its queues are joined even with no agent logged in, so a test about something else does not depend on
    the time of day or on agents (tests of hours and overflow leave it off and pin their own)."""
    flows, prompts = tmp / "dialplans", tmp / "prompts"
    shutil.copytree(ROOT / "dialplans", flows)
    shutil.copytree(ROOT / "prompts", prompts)
    if anytime:
        (flows / "schedules.yaml").write_text(ALWAYS_OPEN)
        rules = flows / "queues.yaml"
        rules.write_text(re.sub(r"when_no_agents: \w+", "when_no_agents: join", rules.read_text()))
    return flows, prompts


def settings_for(tmp: Path, **over: Any) -> Settings:
    """Settings on free ports; without a copy in `tmp` yet, an `anytime` copy of the demo is made."""
    have = (tmp / "dialplans").exists()
    flows, prompts = (tmp / "dialplans", tmp / "prompts") if have else project_copy(tmp, anytime=True)
    base: dict[str, Any] = dict(agi_port=0, http_port=0, ami_enabled=False, reload_watch=False,
                                flows_dir=flows, prompts_dir=prompts, prompts_cache=PROMPT_CACHE,
                                journeys_file=tmp / "journeys.jsonl", drain_seconds=2.0)
    base.update(over)
    return Settings(**base)


@asynccontextmanager
async def running(tmp: Path, **over: Any) -> AsyncIterator[App]:
    app = App(settings_for(tmp, **over))
    await app.start()
    try:
        yield app
    finally:
        await app.stop()

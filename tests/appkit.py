"""Start the real service (App) on free ports with a private copy of the flows and prompts."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from ivr.app import App
from ivr.config import Settings

ROOT = Path(__file__).resolve().parent.parent
PROMPT_CACHE = Path("/tmp/ivr-test-prompt-cache")  # content-addressed: safe to share between runs


def project_copy(tmp: Path) -> tuple[Path, Path]:
    flows, prompts = tmp / "dialplans", tmp / "prompts"
    shutil.copytree(ROOT / "dialplans", flows)
    shutil.copytree(ROOT / "prompts", prompts)
    return flows, prompts


def settings_for(tmp: Path, **over: Any) -> Settings:
    flows, prompts = project_copy(tmp) if not (tmp / "dialplans").exists() else (tmp / "dialplans", tmp / "prompts")
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

"""The service side of bench/agi_bench.py: the real ivr App serving bench/flows, without AMI or HTTP."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from ivr.app import App
from ivr.config import Settings

ROOT = Path(__file__).resolve().parent.parent


async def main(port: int) -> None:
    logging.basicConfig(level=logging.WARNING)
    app = App(Settings(agi_port=port, http_port=0, ami_enabled=False, reload_watch=False,
                       flows_dir=ROOT / "bench" / "flows", prompts_dir=ROOT / "prompts",
                       prompts_cache=Path("/tmp/ivr-bench-prompts"), journeys_file=None))
    await app.start()
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))

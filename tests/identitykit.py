"""The identity stack for tests: the reference backend (with its fault switch), the SMS sink, and the
service wired to them and to a real redis-server."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from ivr.app import App
from ivr.demo import refbackend, smssink
from ivr.demo.smssink import SINK, SmsSink
from tests.appkit import settings_for

ALICE = "+12025550101"   # 1001, VIP, English, PIN 2468, USD 12345.67
GIULIA = "+390212345678"  # 1002, Italian, PIN 1357, EUR 1234.50
BOB = "+12025550103"     # 1003, standard, PIN 9753, USD 87.10


@dataclass
class Identity:
    app: App
    backend_url: str
    sink: SmsSink

    async def faults(self, **faults: Any) -> None:
        async with aiohttp.ClientSession() as s, s.put(f"{self.backend_url}/_faults", json=faults) as r:
            assert r.status == 200, await r.text()

    def last_code(self, phone: str) -> str:
        texts = [m["text"] for m in self.sink.received(phone)]
        assert texts, f"no SMS to {phone}"
        code = re.search(r"\b(\d{6})\b", texts[-1])
        assert code, "no code in the SMS"
        return code.group(1)


@asynccontextmanager
async def identity_stack(tmp: Path, redis_url: str, **over: Any) -> AsyncIterator[Identity]:
    sink = await smssink.serve()
    backend = await refbackend.serve(str(tmp / "ref.sqlite"), sms_url=f"{sink.url}/messages", faults=True)
    wiring: dict[str, Any] = dict(redis_url=redis_url, backends_url=backend.url, sms_url=f"{sink.url}/messages",
                                  auth_otp_key="test-key-0123456789abcdef", backends_filler_after=0.5)
    settings = settings_for(tmp, **{**wiring, **over})
    app = App(settings)
    await app.start()
    try:
        yield Identity(app, backend.url, sink.app[SINK])
    finally:
        await app.stop()
        await backend.close()
        await sink.close()

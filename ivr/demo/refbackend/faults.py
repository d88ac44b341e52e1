"""Fault injection for tests: make the reference backend slow, failing or garbled on demand.

Enabled only with `--faults` (or `create_app(faults=True)`); then `PUT /_faults` with a JSON body
`{"delay_ms": 3000, "status": 500, "malformed": true, "path_prefix": "/customers", "count": 2}`
(every field optional) applies to the matching requests, `count` times (default: until cleared);
`GET /_faults` shows the setting, `DELETE /_faults` clears it. `/_faults` and `/openapi.yaml`
themselves are never faulted.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

EXEMPT = ("/_faults", "/openapi.yaml")


@dataclass
class Faults:
    delay_ms: int = 0
    status: int | None = None  # answer with this HTTP status instead of the real reply
    malformed: bool = False  # answer 200 with a body that is not JSON
    path_prefix: str = "/"
    count: int | None = None  # how many more requests to affect; None: until cleared

    @classmethod
    def parse(cls, data: Any) -> Faults:
        if not isinstance(data, dict) or set(data) - set(cls.__dataclass_fields__):
            raise ValueError("expected an object with delay_ms, status, malformed, path_prefix, count")
        faults = cls(**data)
        if not isinstance(faults.delay_ms, int) or not 0 <= faults.delay_ms <= 120_000:
            raise ValueError("delay_ms must be an integer 0..120000")
        if faults.status is not None and (not isinstance(faults.status, int) or not 400 <= faults.status < 600):
            raise ValueError("status must be an HTTP error status 400..599")
        if not isinstance(faults.path_prefix, str) or not faults.path_prefix.startswith("/"):
            raise ValueError("path_prefix must start with /")
        if faults.count is not None and (not isinstance(faults.count, int) or faults.count < 1):
            raise ValueError("count must be a positive integer")
        return faults

    @property
    def active(self) -> bool:
        return bool(self.delay_ms or self.status or self.malformed)

    def take(self, path: str) -> bool:
        """True when this request is to be faulted (and counts it)."""
        if not self.active or path.startswith(EXEMPT) or not path.startswith(self.path_prefix):
            return False
        if self.count is not None:
            self.count -= 1
            if self.count <= 0:
                self.count = 0
        return True


@dataclass
class FaultSwitch:
    """The app's mutable slot (an app's items must not be reassigned once it runs)."""

    current: Faults = field(default_factory=Faults)


FAULTS = web.AppKey("faults", FaultSwitch)


@web.middleware
async def fault_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    switch = request.app[FAULTS]
    faults = switch.current
    if not faults.take(request.path):
        return await handler(request)
    delay, status, malformed = faults.delay_ms, faults.status, faults.malformed
    if faults.count == 0:
        switch.current = Faults()
    if delay:
        await asyncio.sleep(delay / 1000)
    if status is not None:
        return web.json_response({"error": "injected fault"}, status=status)
    if malformed:
        return web.Response(text='{"this is": not json', content_type="application/json")
    return await handler(request)


async def get_faults(request: web.Request) -> web.Response:
    return web.json_response(asdict(request.app[FAULTS].current))


async def put_faults(request: web.Request) -> web.Response:
    try:
        faults = Faults.parse(await request.json())
    except (ValueError, TypeError) as exc:
        return web.json_response({"error": str(exc)}, status=400)
    request.app[FAULTS].current = faults
    return web.json_response(asdict(faults))


async def delete_faults(request: web.Request) -> web.Response:
    request.app[FAULTS].current = Faults()
    return web.json_response(asdict(request.app[FAULTS].current))


def add_fault_routes(app: web.Application) -> None:
    app[FAULTS] = FaultSwitch()
    app.middlewares.append(fault_middleware)
    app.router.add_get("/_faults", get_faults)
    app.router.add_put("/_faults", put_faults)
    app.router.add_delete("/_faults", delete_faults)

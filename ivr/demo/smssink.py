"""A stand-in SMS gateway for the demo and tests: accepts messages and serves them back (DEMO ONLY).

`POST /messages` takes `{"id", "to", "from", "text"}` (what `ivr.identity.sms.HttpSmsGateway` sends; a repeated
`id` is accepted once), `GET /messages?to=+12025550101` lists what that number received (oldest
first), `DELETE /messages` forgets all. It keeps the last `MAX_KEPT` messages in memory and, with
`--jsonl PATH`, appends each to a file. It holds one-time codes in clear: never expose it.
Run: `python -m ivr.demo.smssink --port 8082 [--jsonl var/sms.jsonl]`; with IVR_SMS_TOKEN set in the
environment, every request but /health must carry `Authorization: Bearer <token>`, and without it
the sink refuses to listen beyond loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import logging
import os
import signal
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from ivr.demo.refbackend.app import Running, require_safe_exposure, start_site
from ivr.errors import ConfigError
from ivr.identity.secret import Secret, install
from ivr.identity.sms import E164, mask_phone

log = logging.getLogger("ivr.smssink")

MAX_KEPT = 1000


class SmsSink:
    """The messages received so far, plus the aiohttp application that receives them."""

    def __init__(self, jsonl: Path | None = None, token: Secret | None = None) -> None:
        self.messages: deque[dict[str, Any]] = deque(maxlen=MAX_KEPT)
        self.jsonl = jsonl
        self.token = token

    def received(self, to: str | None = None) -> list[dict[str, Any]]:
        return [m for m in self.messages if to is None or m["to"] == to]

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._token])
        app[SINK] = self
        app.router.add_post("/messages", self._post)
        app.router.add_get("/messages", self._list)
        app.router.add_delete("/messages", self._clear)
        app.router.add_get("/health", self._health)
        return app

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "messages": len(self.messages)})

    @web.middleware
    async def _token(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """With a token, every request but /health needs it (the messages hold codes in clear)."""
        if self.token is not None and request.path != "/health":
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, f"Bearer {self.token.reveal()}".encode()):
                return web.json_response({"error": "unauthorized"}, status=401)
        return await handler(request)

    async def _post(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not all(isinstance(body.get(k), str) for k in ("id", "to", "text")):
            return web.json_response({"error": "expected id, to and text"}, status=400)
        if not E164.match(body["to"]):
            return web.json_response({"error": "to must be an E.164 number"}, status=400)
        if any(m["id"] == body["id"] for m in self.messages):
            return web.json_response({"id": body["id"], "status": "duplicate"})
        message = {"id": body["id"], "to": body["to"], "from": str(body.get("from", "")),
                   "text": body["text"], "received": time.time()}
        self.messages.append(message)
        log.info("SMS %s received for %s", message["id"], mask_phone(message["to"]))
        if self.jsonl is not None:
            await asyncio.to_thread(self._append, message)
        return web.json_response({"id": message["id"], "status": "accepted"}, status=202)

    def _append(self, message: dict[str, Any]) -> None:
        assert self.jsonl is not None
        self.jsonl.parent.mkdir(parents=True, exist_ok=True)
        with self.jsonl.open("a", encoding="utf-8") as f:
            f.write(json.dumps(message, ensure_ascii=False) + "\n")

    async def _list(self, request: web.Request) -> web.Response:
        to = request.query.get("to")
        if to is not None and to.startswith(" "):  # an unencoded "+" in a query string arrives as a space
            to = "+" + to[1:]
        return web.json_response({"messages": self.received(to)})

    async def _clear(self, request: web.Request) -> web.Response:
        self.messages.clear()
        return web.json_response({"messages": []})


SINK = web.AppKey("sink", SmsSink)


async def serve(host: str = "127.0.0.1", port: int = 0, *, jsonl: Path | None = None,
                token: Secret | None = None) -> Running:
    """Start a sink (port 0: a free one); `running.app[SINK]` is the `SmsSink`. Beyond loopback it needs
    `token` (ConfigError otherwise)."""
    require_safe_exposure(host, token, "IVR_SMS_TOKEN")
    return await start_site(SmsSink(jsonl, token).app(), host, port)


async def _run(args: argparse.Namespace) -> None:
    token = os.environ.get("IVR_SMS_TOKEN")
    running = await serve(args.host, args.port, jsonl=args.jsonl, token=Secret(token) if token else None)
    log.info("SMS sink on %s/messages", running.url)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await running.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m ivr.demo.smssink", description="A demo SMS gateway sink.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8082)
    p.add_argument("--jsonl", type=Path, default=None, help="also append each message to this file")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install()
    try:
        asyncio.run(_run(p.parse_args(argv)))
    except ConfigError as exc:
        print(f"python -m ivr.demo.smssink: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()

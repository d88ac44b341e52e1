"""The reference backend's HTTP service (contract: openapi.yaml, served at /openapi.yaml)."""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import date, timedelta
from importlib import resources
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from ivr.demo.refbackend.db import Database
from ivr.demo.refbackend.faults import add_fault_routes
from ivr.errors import BackendError, ConfigError
from ivr.identity.secret import Secret
from ivr.identity.sms import HttpSmsGateway, mask_phone

log = logging.getLogger("ivr.refbackend")

RESET_VALID = timedelta(minutes=15)
RESET_TEXTS = {
    "en": "Reset your password within 15 minutes: https://example.invalid/reset/{token}",
    "it": "Reimposta la password entro 15 minuti: https://example.invalid/reset/{token}",
}
PUBLIC = ("/health", "/openapi.yaml")


@dataclass
class Backend:
    db: Database
    sms: HttpSmsGateway | None
    token: Secret | None


BACKEND = web.AppKey("backend", Backend)


def _found(data: dict[str, Any] | None, what: str) -> web.Response:
    if data is None:
        return web.json_response({"error": f"{what} not found"}, status=404)
    return web.json_response(data)


async def _fields(request: web.Request, *names: str) -> dict[str, str]:
    """The named short string fields of a JSON object body, or a 400."""
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not all(isinstance(body.get(n), str) and len(body[n]) <= 64 for n in names):
        error = f"expected a JSON object with string fields {', '.join(names)} (at most 64 characters)"
        raise web.HTTPBadRequest(text=json.dumps({"error": error}), content_type="application/json")
    return {n: body[n] for n in names}


@web.middleware
async def token_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    token = request.app[BACKEND].token
    if token is not None and request.path not in PUBLIC:
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, f"Bearer {token.reveal()}".encode()):
            return web.json_response({"error": "unauthorized"}, status=401)
    return await handler(request)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def openapi(request: web.Request) -> web.Response:
    text = resources.files("ivr.demo.refbackend").joinpath("openapi.yaml").read_text("utf-8")
    return web.Response(text=text, content_type="application/yaml")


async def customer_by_phone(request: web.Request) -> web.Response:
    return _found(await request.app[BACKEND].db.customer_by_phone(request.match_info["phone"]), "customer")


async def customer(request: web.Request) -> web.Response:
    return _found(await request.app[BACKEND].db.customer(request.match_info["customer_id"]), "customer")


async def verify_pin(request: web.Request) -> web.Response:
    pin = (await _fields(request, "pin"))["pin"]
    ok = await request.app[BACKEND].db.verify_pin(request.match_info["customer_id"], pin)
    return _found(None if ok is None else {"verified": ok}, "customer")


async def verify_card(request: web.Request) -> web.Response:
    body = await _fields(request, "last4", "dob")
    try:
        dob = date.fromisoformat(body["dob"]).isoformat()
    except ValueError:
        return web.json_response({"error": "dob must be YYYY-MM-DD"}, status=400)
    ok = await request.app[BACKEND].db.verify_card(request.match_info["customer_id"], body["last4"], dob)
    return _found(None if ok is None else {"verified": ok}, "customer")


async def balance(request: web.Request) -> web.Response:
    return _found(await request.app[BACKEND].db.balance(request.match_info["customer_id"]), "account")


async def order(request: web.Request) -> web.Response:
    db = request.app[BACKEND].db
    return _found(await db.order(request.match_info["customer_id"], request.match_info["number"]), "order")


async def password_reset(request: web.Request) -> web.Response:
    backend = request.app[BACKEND]
    found = await backend.db.customer(request.match_info["customer_id"])
    if found is None:
        return _found(None, "customer")
    if backend.sms is None:
        return web.json_response({"error": "no SMS gateway configured"}, status=503)
    ticket, token = "RST-" + secrets.token_hex(4).upper(), Secret(secrets.token_urlsafe(16))
    await backend.db.add_reset(found["id"], ticket, token.reveal(), RESET_VALID)
    text = RESET_TEXTS.get(found["language"], RESET_TEXTS["en"]).format(token=token.reveal())
    try:
        await backend.sms.send(found["phone"], Secret(text))
    except BackendError as exc:
        log.warning("password reset %s: SMS not sent: %s", ticket, exc)
        return web.json_response({"error": "SMS gateway unavailable"}, status=503)
    return web.json_response({"ticket": ticket, "sent_to": mask_phone(found["phone"])})


async def interactions(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except ValueError:
        body = None
    names = ("customer_id", "kind", "outcome")
    if not isinstance(body, dict) or not all(isinstance(body.get(n), str) and body[n] for n in names):
        return web.json_response({"error": "customer_id, kind and outcome are required"}, status=400)
    case_id = await request.app[BACKEND].db.add_case(
        body["customer_id"], body["kind"], body["outcome"], str(body.get("summary", ""))[:2000],
        str(body.get("call_id", ""))[:128])
    return web.json_response({"case_id": case_id}, status=201)


def create_app(db: Database, *, sms_url: str | None = None, sms_token: Secret | None = None,
               token: Secret | None = None, faults: bool = False) -> web.Application:
    """The service; it opens `db` on start-up and closes it (and the SMS client) on clean-up."""
    auth = None if sms_token is None else Secret("Bearer " + sms_token.reveal())
    sms = None if sms_url is None else HttpSmsGateway(sms_url, sender="RefBank", auth_header=auth)
    app = web.Application(middlewares=[token_middleware])
    app[BACKEND] = Backend(db, sms, token)
    if faults:
        add_fault_routes(app)

    async def start(app: web.Application) -> None:
        await db.open()

    async def stop(app: web.Application) -> None:
        if sms is not None:
            await sms.close()
        await db.close()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    r = app.router
    r.add_get("/health", health)
    r.add_get("/openapi.yaml", openapi)
    r.add_get("/customers/by-phone/{phone}", customer_by_phone)
    r.add_get("/customers/{customer_id}", customer)
    r.add_post("/customers/{customer_id}/pin/verify", verify_pin)
    r.add_post("/customers/{customer_id}/card/verify", verify_card)
    r.add_get("/customers/{customer_id}/balance", balance)
    r.add_get("/customers/{customer_id}/orders/{number}", order)
    r.add_post("/customers/{customer_id}/password-reset", password_reset)
    r.add_post("/interactions", interactions)
    return app


@dataclass
class Running:
    """A started aiohttp application: `url` has the real port; `close()` stops it."""

    app: web.Application
    runner: web.AppRunner
    url: str

    async def close(self) -> None:
        await self.runner.cleanup()


def exposure_problem(host: str, token: Secret | None, variable: str) -> str | None:
    """Why listening on `host` is refused: beyond loopback only with a token (it serves customer data)."""
    if token is not None or host == "localhost":
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:  # a host name or "" (every address): not known to be loopback
        pass
    return (f"refusing to listen on {host or 'every address'!r} without a token: set {variable} "
            "(clients must then send it as a bearer token), or listen on 127.0.0.1")


def require_safe_exposure(host: str, token: Secret | None, variable: str) -> None:
    """Raise ConfigError with `exposure_problem`'s reason, before anything listens."""
    if (problem := exposure_problem(host, token, variable)) is not None:
        raise ConfigError(problem)


async def start_site(app: web.Application, host: str = "127.0.0.1", port: int = 0) -> Running:
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    bound = runner.addresses[0]
    return Running(app, runner, f"http://{host}:{bound[1]}")


async def serve(db_path: str = ":memory:", *, host: str = "127.0.0.1", port: int = 0,
                sms_url: str | None = None, sms_token: Secret | None = None, token: Secret | None = None,
                faults: bool = False) -> Running:
    """Start the reference backend (port 0: a free one) and return it running; beyond loopback it
    needs `token` (ConfigError otherwise)."""
    require_safe_exposure(host, token, "IVR_REFBACKEND_TOKEN")
    app = create_app(Database(db_path), sms_url=sms_url, sms_token=sms_token, token=token, faults=faults)
    return await start_site(app, host, port)

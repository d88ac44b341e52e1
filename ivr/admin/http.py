"""The small HTTP side of the service: health, Prometheus metrics, live calls, journeys, KPIs, reload.

Who may see what: /health, /metrics and /flows are open and hold no caller data. Live calls, recent
journeys and KPIs (caller ids, keyed account numbers; KPIs are guarded with them) need
`Authorization: Bearer <token>` with `http.read_token` or the admin `http.token`; changing endpoints
need the admin token. Still bind it to loopback or a private segment.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from aiohttp import web

from ivr.errors import StoreUnavailable
from ivr.flows.registry import FlowRegistry
from ivr.journeys import label_value
from ivr.ops import emergency_admin
from ivr.services import Services

SERVICES: web.AppKey[Services] = web.AppKey("services", Services)
REGISTRY: web.AppKey[FlowRegistry] = web.AppKey("registry", FlowRegistry)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data, default=str, ensure_ascii=False, indent=1),
                        content_type="application/json", status=status)


async def health(request: web.Request) -> web.Response:
    svc, reg = request.app[SERVICES], request.app[REGISTRY]
    ami_up = svc.ami.connected if svc.ami is not None else None
    ok = bool(reg.current.flows) and ami_up is not False
    return _json({"status": "ok" if ok else "degraded", "ami": ami_up, "flows": sorted(reg.current.flows),
                  "flows_version": reg.current.version, "live_calls": len(svc.journeys.live)},
                 200 if ok else 503)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format. Labels are flow, node, outcome and queue names: never caller data; their
    values come from bounded sets (ivr.journeys) and are escaped."""
    svc, reg = request.app[SERVICES], request.app[REGISTRY]
    j, v = svc.journeys, label_value
    lines = ["# TYPE ivr_calls_started_total counter", f"ivr_calls_started_total {j.calls_started}",
             "# TYPE ivr_calls_live gauge", f"ivr_calls_live {len(j.live)}",
             "# TYPE ivr_calls_finished_total counter"]
    lines += [f'ivr_calls_finished_total{{outcome="{v(o)}"}} {n}' for o, n in sorted(j.outcomes.items())]
    lines.append("# TYPE ivr_node_visits_total counter")
    lines += [f'ivr_node_visits_total{{flow="{v(f)}",node="{v(n)}"}} {c}'
              for (f, n), c in sorted(j.node_visits.items())]
    lines.append("# TYPE ivr_node_errors_total counter")
    lines += [f'ivr_node_errors_total{{flow="{v(f)}",node="{v(n)}"}} {c}'
              for (f, n), c in sorted(j.errors.items())]
    lines += ["# TYPE ivr_flow_reloads_total counter", f"ivr_flow_reloads_total {reg.reloads}",
              "# TYPE ivr_ami_connected gauge",
              f"ivr_ami_connected {int(bool(svc.ami and svc.ami.connected))}"]
    return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")


async def live_calls(request: web.Request) -> web.Response:
    if (refused := _unreadable(request)) is not None:
        return refused
    svc = request.app[SERVICES]
    calls = [c.summary() for c in list(svc.journeys.live.values())]
    channels: Any = None
    if svc.ami is not None and svc.ami.connected:
        try:
            channels = [{k: ch.get(k) for k in ("Channel", "Uniqueid", "Application", "Duration", "State")}
                        for ch in await svc.ami.live_channels()]
        except Exception as exc:  # a view must not fail because AMI hiccuped
            channels = {"error": str(exc)}
    return _json({"calls": calls, "asterisk_channels": channels})


async def recent_calls(request: web.Request) -> web.Response:
    if (refused := _unreadable(request)) is not None:
        return refused
    raw = request.query.get("limit", "50")
    if not raw.isdigit() or not 1 <= int(raw) <= 10_000:
        return _json({"error": "limit must be a whole number from 1 to 10000"}, 400)
    return _json(list(request.app[SERVICES].journeys.recent)[-int(raw):])


async def kpis(request: web.Request) -> web.Response:
    if (refused := _unreadable(request)) is not None:
        return refused
    return _json(request.app[SERVICES].journeys.kpis())


async def flows(request: web.Request) -> web.Response:
    reg = request.app[REGISTRY]
    last = reg.last
    return _json({"version": reg.current.version,
                  "flows": {n: {"file": f.file, "nodes": len(f.nodes), "digest": f.digest}
                            for n, f in reg.current.flows.items()},
                  "last_reload": None if last is None else {
                      "applied": last.applied, "at": last.at, "findings": [str(d) for d in last.findings]}})


async def reload(request: web.Request) -> web.Response:
    if (refused := _refused(request)) is not None:
        return refused
    result = await request.app[REGISTRY].reload("http")
    return _json({"applied": result.applied, "version": result.version,
                  "findings": [str(d) for d in result.findings]}, 200 if result.applied else 422)


# --- who may read and change (constant-time token checks) ------------------------------------------

def _bearer_matches(request: web.Request, *tokens: str) -> bool:
    """True when the Authorization header is `Bearer <one of tokens>`; every token is compared in full."""
    given = request.headers.get("Authorization", "").encode()
    found = False
    for token in tokens:
        found |= bool(token) and hmac.compare_digest(given, f"Bearer {token}".encode())
    return found


def _unauthorized() -> web.Response:
    response = _json({"error": "missing or wrong bearer token (Authorization: Bearer ...)"}, 401)
    response.headers["WWW-Authenticate"] = 'Bearer realm="ivr"'
    return response


def _unreadable(request: web.Request) -> web.Response | None:
    """Views with caller data need `http.read_token` or `http.token`; without either they are off."""
    settings = request.app[SERVICES].settings
    if not (settings.http_read_token or settings.http_token):
        return _json({"error": "views with caller data are disabled: set http.read_token "
                               "(IVR_HTTP_READ_TOKEN) or http.token"}, 403)
    return None if _bearer_matches(request, settings.http_read_token, settings.http_token) else _unauthorized()

# --- emergency announcement (checks in ivr.ops.emergency_admin) ----------------------------------------

def _refused(request: web.Request) -> web.Response | None:
    """Changing endpoints need `Authorization: Bearer <http.token>`; without that setting they are off."""
    token = request.app[SERVICES].settings.http_token
    if not token:
        return _json({"error": "changing endpoints are disabled: set http.token (IVR_HTTP_TOKEN)"}, 403)
    return None if _bearer_matches(request, token) else _unauthorized()


# --- emergency announcement (checks in ivr.ops.emergency_admin) ----------------------------------------


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise emergency_admin.AdminError("the body must be JSON") from None
    if not isinstance(body, dict):
        raise emergency_admin.AdminError("the body must be a JSON object")
    return body


async def emergency(request: web.Request) -> web.Response:
    """GET: what callers hear now. PUT {prompt|text, minutes, by}: turn on. DELETE {by}: turn off."""
    svc = request.app[SERVICES]
    switch = svc.emergency
    if switch is None:
        return _json({"error": "the emergency switch needs Redis: set redis.url"}, 503)
    if request.method != "GET" and (refused := _refused(request)) is not None:
        return refused
    try:
        if request.method == "GET":
            return _json(emergency_admin.describe(await switch.get()))
        body = await _body(request)
        by = str(body.get("by") or request.query.get("by") or "http")
        if request.method == "DELETE":
            was = await emergency_admin.turn_off(switch, by)
            return _json({**emergency_admin.describe(None), "was": emergency_admin.describe(was)})
        catalog = getattr(svc.prompts, "catalog", None)
        known = catalog.names() if catalog is not None else set()
        checked = emergency_admin.check_on(body.get("prompt"), body.get("text"), body.get("minutes"), by, known)
        return _json(emergency_admin.describe(await emergency_admin.turn_on(switch, checked)))
    except emergency_admin.AdminError as exc:
        return _json({"error": str(exc)}, 400)
    except StoreUnavailable as exc:
        return _json({"error": f"Redis unavailable: {exc}", **emergency_admin.describe(switch.active())}, 503)


def make_app(services: Services, registry: FlowRegistry) -> web.Application:
    app = web.Application()
    app[SERVICES] = services
    app[REGISTRY] = registry
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/calls/live", live_calls)
    app.router.add_get("/calls/recent", recent_calls)
    app.router.add_get("/kpis", kpis)
    app.router.add_get("/flows", flows)
    app.router.add_post("/flows/reload", reload)
    for method in ("GET", "PUT", "DELETE"):
        app.router.add_route(method, "/emergency", emergency)
    return app

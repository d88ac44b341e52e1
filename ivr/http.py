"""The small HTTP side of the service: health, Prometheus metrics, live calls, journeys, KPIs, reload.

Bind it to loopback or a private segment: it shows callers' journeys (never secure digits).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ivr.flows.registry import FlowRegistry
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
    """Prometheus text format. Labels are flow, node, outcome and queue names: never caller data."""
    svc, reg = request.app[SERVICES], request.app[REGISTRY]
    j = svc.journeys
    lines = ["# TYPE ivr_calls_started_total counter", f"ivr_calls_started_total {j.calls_started}",
             "# TYPE ivr_calls_live gauge", f"ivr_calls_live {len(j.live)}",
             "# TYPE ivr_calls_finished_total counter"]
    lines += [f'ivr_calls_finished_total{{outcome="{o}"}} {n}' for o, n in sorted(j.outcomes.items())]
    lines.append("# TYPE ivr_node_visits_total counter")
    lines += [f'ivr_node_visits_total{{flow="{f}",node="{n}"}} {c}' for (f, n), c in sorted(j.node_visits.items())]
    lines.append("# TYPE ivr_node_errors_total counter")
    lines += [f'ivr_node_errors_total{{flow="{f}",node="{n}"}} {c}' for (f, n), c in sorted(j.errors.items())]
    lines += ["# TYPE ivr_flow_reloads_total counter", f"ivr_flow_reloads_total {reg.reloads}",
              "# TYPE ivr_ami_connected gauge",
              f"ivr_ami_connected {int(bool(svc.ami and svc.ami.connected))}"]
    return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")


async def live_calls(request: web.Request) -> web.Response:
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
    limit = int(request.query.get("limit", "50"))
    return _json(list(request.app[SERVICES].journeys.recent)[-limit:])


async def kpis(request: web.Request) -> web.Response:
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
    result = await request.app[REGISTRY].reload("http")
    return _json({"applied": result.applied, "version": result.version,
                  "findings": [str(d) for d in result.findings]}, 200 if result.applied else 422)


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
    return app

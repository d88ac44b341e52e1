"""The HTTP side: health, metrics, live calls, recent journeys, KPIs, flows and reload."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import aiohttp

from ivr.testing import FakeAsterisk
from tests.appkit import running


async def test_views_show_live_and_finished_calls(tmp_path: Path) -> None:
    async with running(tmp_path) as app, aiohttp.ClientSession(f"http://127.0.0.1:{app.http_port}") as http:
        async with http.get("/health") as r:
            assert r.status == 200 and "main" in (await r.json())["flows"]
        # one call waits in the language menu (live), one completes
        reader, writer = await asyncio.open_connection("127.0.0.1", app.agi.port)
        writer.write(b"agi_network: yes\nagi_uniqueid: live-7\nagi_network_script: main\nagi_callerid: 5551234\n\n")
        assert await reader.readline() == b"ANSWER\n"
        writer.write(b"200 result=0\n")
        await reader.readline()
        await FakeAsterisk("1 0").call("127.0.0.1", app.agi.port, "main")
        async with http.get("/calls/live") as r:
            live = (await r.json())["calls"]
        assert [c["uniqueid"] for c in live] == ["live-7"] and live[0]["journey"][-1]["kind"] == "prompt"
        async with http.get("/calls/recent") as r:
            recent = await r.json()
        assert recent[-1]["outcome"] == "queue:support"
        async with http.get("/kpis") as r:
            kpis = await r.json()
        assert kpis["calls_started"] == 2 and kpis["calls_finished"] == 1 and kpis["containment_rate"] == 0.0
        async with http.get("/metrics") as r:
            metrics = await r.text()
        assert 'ivr_calls_finished_total{outcome="queue:support"} 1' in metrics
        assert 'ivr_node_visits_total{flow="main",node="main_menu"} 1' in metrics
        assert "ivr_calls_live 1" in metrics
        writer.close()


async def test_reload_endpoint_reports_findings(tmp_path: Path) -> None:
    async with running(tmp_path, http_token="t0ken") as app, \
            aiohttp.ClientSession(f"http://127.0.0.1:{app.http_port}") as http:
        flow = tmp_path / "dialplans" / "main.yaml"
        flow.write_text(re.sub(r"(?m)^start: .*$", "start: nowhere", flow.read_text()))
        async with http.post("/flows/reload") as r:
            assert r.status == 401  # a reload changes what callers hear: it needs the token
        async with http.post("/flows/reload", headers={"Authorization": "Bearer t0ken"}) as r:
            assert r.status == 422
            body = await r.json()
        assert not body["applied"] and any("`start` names unknown node 'nowhere'" in f for f in body["findings"])
        async with http.get("/flows") as r:
            flows = await r.json()
        assert flows["last_reload"]["applied"] is False and "main" in flows["flows"]


async def test_health_is_degraded_while_ami_is_down(tmp_path: Path) -> None:
    from lab.redis_server import free_port

    async with running(tmp_path, ami_enabled=True, ami_port=free_port()) as app, \
            aiohttp.ClientSession(f"http://127.0.0.1:{app.http_port}") as http, http.get("/health") as r:
        assert r.status == 503 and (await r.json())["ami"] is False

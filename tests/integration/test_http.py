"""The HTTP side: health, metrics, live calls, recent journeys, KPIs, flows and reload."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import aiohttp
import pytest

from ivr.call import Call
from ivr.config import load_settings
from ivr.errors import ConfigError
from ivr.journeys import JourneyLog
from ivr.testing import FakeAsterisk
from tests.appkit import running

READ = {"Authorization": "Bearer r3ad-only-token"}
ADMIN = {"Authorization": "Bearer adm1n-token"}


async def test_views_show_live_and_finished_calls(tmp_path: Path) -> None:
    async with running(tmp_path, http_read_token="r3ad-only-token") as app, \
            aiohttp.ClientSession(f"http://127.0.0.1:{app.http_port}", headers=READ) as http:
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


async def test_caller_data_needs_a_token_a_read_only_one_is_enough(tmp_path: Path) -> None:
    async with running(tmp_path, http_read_token="r3ad-only-token", http_token="adm1n-token") as app, \
            aiohttp.ClientSession(f"http://127.0.0.1:{app.http_port}") as http:
        await FakeAsterisk("1 0", env={"callerid": "+12025550199"}).call("127.0.0.1", app.agi.port, "main")
        for path in ("/calls/live", "/calls/recent", "/kpis"):
            async with http.get(path) as r:
                assert r.status == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
                assert "+12025550199" not in await r.text()
            for wrong in ("Bearer wrong", "Bearer r3ad-only-token-", "r3ad-only-token", "Basic r3ad-only-token"):
                async with http.get(path, headers={"Authorization": wrong}) as r:
                    assert r.status == 401, (path, wrong)
            for good in (READ, ADMIN):
                async with http.get(path, headers=good) as r:
                    assert r.status == 200, path
        async with http.get("/calls/recent", headers=READ) as r:
            assert (await r.json())[-1]["caller_id"] == "+12025550199"
        for bad in ("abc", "-1", "0", "1e9", "99999999999999999999"):
            async with http.get("/calls/recent", params={"limit": bad}, headers=READ) as r:
                assert r.status == 400 and "limit" in (await r.json())["error"], bad
        async with http.post("/flows/reload", headers=READ) as r:
            assert r.status == 401  # the read-only token changes nothing
        for path in ("/health", "/metrics", "/flows"):  # open, and without caller data
            async with http.get(path) as r:
                assert r.status == 200 and "+12025550199" not in await r.text() and "5550199" not in await r.text()


async def test_without_a_read_token_caller_data_is_off(tmp_path: Path) -> None:
    async with running(tmp_path) as app, aiohttp.ClientSession(f"http://127.0.0.1:{app.http_port}") as http:
        async with http.get("/calls/recent", headers=READ) as r:
            assert r.status == 403 and "http.read_token" in (await r.json())["error"]
        async with running(tmp_path / "admin", http_token="adm1n-token") as admin, \
                http.get(f"http://127.0.0.1:{admin.http_port}/calls/recent", headers=ADMIN) as r:
            assert r.status == 200  # the admin token also reads


def test_token_settings_are_checked(tmp_path: Path) -> None:
    for key, bad in (("IVR_HTTP_READ_TOKEN", "has space"), ("IVR_HTTP_TOKEN", "tab\there"),
                     ("IVR_HTTP_READ_TOKEN", "caffè")):
        with pytest.raises(ConfigError, match=key.removeprefix("IVR_").lower()):
            load_settings(env={"IVR_CONFIG": str(tmp_path / "none.toml"), key: bad})


HOSTILE = ['evil"} 1\nivr_calls_live 99', 'back\\slash"', "x" * 300, "tab\there"]


async def test_hostile_script_names_keep_metrics_valid_and_bounded(tmp_path: Path) -> None:
    async with running(tmp_path) as app, aiohttp.ClientSession(f"http://127.0.0.1:{app.http_port}") as http:
        for name in HOSTILE:  # over real AGI: an unknown script is handed to a human
            await FakeAsterisk("").call("127.0.0.1", app.agi.port, name)
        gate = asyncio.Semaphore(50)

        async def peer(i: int) -> None:
            async with gate:
                await FakeAsterisk("", env={"uniqueid": f"h-{i}"}).call("127.0.0.1", app.agi.port, f'n{i}"\\{{')

        await asyncio.gather(*(peer(i) for i in range(10_000)))  # 10,000 different script names
        assert app.journeys.calls_started >= 10_000  # (the name with a newline breaks its AGI header)
        for i in range(2_000):  # hostile flow, node and outcome values, straight into the journey log
            call = Call(uniqueid=f"u{i}", flow=f'flow-{i}"\n{{x="1"}}', outcome=f'out-{i}"\\\n')
            call.record(f"node-{i}\n", "enter")
            call.record(f"node-{i}", "error", error="boom")
            app.journeys.finished(call)
        assert len(app.journeys.node_visits) + len(app.journeys.errors) + len(app.journeys.outcomes) < 300
        async with http.get("/metrics") as r:
            assert r.status == 200
            text = await r.text()
    samples = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert len(samples) < 300
    label = r'[a-z_]+="(?:[^"\\\n]|\\[\\"n])*"'
    sample = re.compile(rf"^[a-z_]+(?:\{{{label}(?:,{label})*\}})? [0-9]+$")
    bad = [line for line in samples if not sample.match(line)]
    assert not bad, bad[:3]
    assert "ivr_calls_live 0" in samples and 'flow="other"' in text and 'outcome="other"' in text
    assert "evil" not in text and "flow-9" not in text and 'n9\\"' not in text
    assert 'ivr_node_visits_total{flow="main"' not in text  # no call reached the main flow


def test_label_values_are_escaped() -> None:
    from ivr.journeys import label_value

    assert label_value('a"b\\c\nd') == 'a\\"b\\\\c\\nd'


def test_journey_counters_keep_known_flows_and_cap_the_rest() -> None:
    log = JourneyLog(None, known_flows=lambda: {"main"})
    for i in range(2000):
        for flow in ("main", f"f{i}"):
            call = Call(uniqueid=f"{flow}-{i}", flow=flow, outcome=f"queue:q{i}")
            call.record(f"n{i}", "enter")
            log.finished(call)
    flows = {f for f, _ in log.node_visits}
    assert flows == {"main", "other"} and len(log.node_visits) <= 1000 and len(log.outcomes) <= 200
    assert sum(log.node_visits.values()) == 4000 and sum(log.outcomes.values()) == 4000

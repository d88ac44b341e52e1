"""The reference backend itself: its OpenAPI contract, auth token, validation, faults and CLI."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

from ivr.demo.refbackend import Database, Running, create_app, serve, start_site
from ivr.identity.secret import Secret
from lab.redis_server import free_port

METHODS = {"get", "put", "post", "delete", "patch"}
ROOT = str(Path(__file__).resolve().parents[2])


def _routes(app: web.Application) -> set[tuple[str, str]]:
    found = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if route.method != "HEAD" and path:
            found.add((route.method.lower(), path))
    return found


def _documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(m, p) for p, item in doc["paths"].items() for m in item if m in METHODS}


@pytest.fixture
async def backend() -> AsyncIterator[Running]:
    running = await serve(faults=True)
    yield running
    await running.close()


async def _call(method: str, url: str, **kw: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http:
        async with http.request(method, url, **kw) as resp:
            text = await resp.text()
            try:
                return resp.status, json.loads(text)
            except ValueError:
                return resp.status, text


async def test_every_route_is_documented_and_vice_versa(backend: Running) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(backend.url + "/openapi.yaml") as resp:
            assert resp.status == 200
            doc = yaml.safe_load(await resp.text())
    assert doc["openapi"].startswith("3.")
    assert _routes(backend.app) == _documented(doc)
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                assert op.get("operationId") and op.get("responses"), (method, path)
    refs = set(re.findall(r"#/components/(\w+)/(\w+)", yaml.safe_dump(doc)))
    assert all(name in doc["components"][kind] for kind, name in refs)
    plain = create_app(Database(), faults=False)
    assert {p for _, p in _routes(plain)} == {p for _, p in _documented(doc)} - {"/_faults"}


async def test_token_is_required_except_for_public_paths() -> None:
    running = await serve(token=Secret("ref-token-123456"))
    try:
        assert (await _call("GET", running.url + "/health"))[0] == 200
        assert (await _call("GET", running.url + "/customers/1001"))[0] == 401
        bad = {"Authorization": "Bearer wrong"}
        assert (await _call("GET", running.url + "/customers/1001", headers=bad))[0] == 401
        good = {"Authorization": "Bearer ref-token-123456"}
        status, body = await _call("GET", running.url + "/customers/1001", headers=good)
        assert status == 200 and body["name"] == "Alice Morgan"
    finally:
        await running.close()


async def test_bad_requests_are_400(backend: Running) -> None:
    url = backend.url + "/customers/1001"
    assert (await _call("POST", url + "/pin/verify", data="not json"))[0] == 400
    assert (await _call("POST", url + "/pin/verify", json={"pin": 2468}))[0] == 400
    assert (await _call("POST", url + "/card/verify", json={"last4": "4242", "dob": "12/04/1980"}))[0] == 400
    assert (await _call("POST", backend.url + "/interactions", json={"kind": "x"}))[0] == 400
    assert (await _call("POST", backend.url + "/customers/C9999/pin/verify", json={"pin": "1234"}))[0] == 404


async def test_password_reset_needs_a_working_gateway(backend: Running) -> None:
    status, body = await _call("POST", backend.url + "/customers/1001/password-reset")
    assert status == 503 and "no SMS gateway" in body["error"]
    down = await serve(sms_url=f"http://127.0.0.1:{free_port()}/messages")
    try:
        assert (await _call("POST", down.url + "/customers/1001/password-reset"))[0] == 503
        assert (await _call("POST", down.url + "/customers/C9999/password-reset"))[0] == 404
    finally:
        await down.close()


async def test_faults_switch(backend: Running) -> None:
    status, body = await _call("PUT", backend.url + "/_faults", json={"status": 503, "count": 1})
    assert status == 200 and body["status"] == 503
    assert (await _call("GET", backend.url + "/health"))[0] == 503
    assert (await _call("GET", backend.url + "/health"))[0] == 200  # count used up
    assert (await _call("PUT", backend.url + "/_faults", json={"delay_ms": -1}))[0] == 400
    assert (await _call("PUT", backend.url + "/_faults", json={"bogus": 1}))[0] == 400
    await _call("PUT", backend.url + "/_faults", json={"status": 500})
    assert (await _call("GET", backend.url + "/openapi.yaml"))[0] == 200  # never faulted
    status, body = await _call("DELETE", backend.url + "/_faults")
    assert status == 200 and body["status"] is None
    assert (await _call("GET", backend.url + "/health"))[0] == 200
    plain = await start_site(create_app(Database()))
    try:
        assert (await _call("PUT", plain.url + "/_faults", json={"status": 500}))[0] in (404, 405)
    finally:
        await plain.close()


async def test_database_file_persists(tmp_path: Path) -> None:
    db = tmp_path / "ref.sqlite"
    first = await serve(str(db))
    status, body = await _call("POST", first.url + "/interactions",
                               json={"customer_id": "1001", "kind": "balance", "outcome": "ok"})
    await first.close()
    second = await serve(str(db))
    try:
        status2, body2 = await _call("POST", second.url + "/interactions",
                                     json={"customer_id": "1001", "kind": "balance", "outcome": "ok"})
        assert (status, status2) == (201, 201) and body["case_id"] != body2["case_id"]
        assert (await _call("GET", second.url + "/customers/1003"))[1]["open_cases"] == ["CASE-0001"]
    finally:
        await second.close()


async def _wait_healthy(url: str) -> None:
    for _ in range(100):
        try:
            if (await _call("GET", url + "/health"))[0] == 200:
                return
        except aiohttp.ClientError:
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never became healthy")


async def test_command_lines_run_backend_and_sink(tmp_path: Path) -> None:
    sink_port, ref_port = free_port(), free_port()
    env = {**os.environ, "PYTHONPATH": ROOT}
    sink = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ivr.demo.smssink", "--port", str(sink_port), "--jsonl", str(tmp_path / "sms.jsonl"),
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    ref = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ivr.demo.refbackend", "--port", str(ref_port), "--db", str(tmp_path / "ref.db"),
        "--sms-url", f"http://127.0.0.1:{sink_port}/messages",
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        await _wait_healthy(f"http://127.0.0.1:{sink_port}")
        await _wait_healthy(f"http://127.0.0.1:{ref_port}")
        status, _ = await _call("POST", f"http://127.0.0.1:{ref_port}/customers/1003/password-reset")
        assert status == 200
        assert "+12025550103" in (tmp_path / "sms.jsonl").read_text()
    finally:
        for proc in (ref, sink):
            proc.terminate()
            assert await asyncio.wait_for(proc.wait(), 10) == 0
    assert (tmp_path / "ref.db").exists()


async def test_oversized_secrets_are_refused_before_hashing(backend: Running) -> None:
    status, body = await _call("POST", backend.url + "/customers/1001/pin/verify", json={"pin": "1" * 65})
    assert status == 400 and "at most 64" in body["error"]


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "192.0.2.10", "backend.example"])
async def test_no_listening_beyond_loopback_without_a_token(host: str) -> None:
    from ivr.demo.smssink import serve as serve_sink
    from ivr.errors import ConfigError

    with pytest.raises(ConfigError, match="IVR_REFBACKEND_TOKEN"):
        await serve(host=host, port=free_port())
    with pytest.raises(ConfigError, match="IVR_SMS_TOKEN"):
        await serve_sink(host, free_port())


def test_exposure_rule() -> None:
    from ivr.demo.refbackend.app import exposure_problem

    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        assert exposure_problem(host, None, "IVR_REFBACKEND_TOKEN") is None
    assert exposure_problem("0.0.0.0", Secret("ref-token-123456"), "IVR_REFBACKEND_TOKEN") is None
    problem = exposure_problem("0.0.0.0", None, "IVR_REFBACKEND_TOKEN")
    assert problem is not None and "0.0.0.0" in problem and "127.0.0.1" in problem


async def test_command_lines_refuse_a_public_address_without_a_token() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("IVR_REFBACKEND_TOKEN", "IVR_SMS_TOKEN")}
    env["PYTHONPATH"] = ROOT
    for module, variable in (("ivr.demo.refbackend", "IVR_REFBACKEND_TOKEN"), ("ivr.demo.smssink", "IVR_SMS_TOKEN")):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, "--host", "0.0.0.0", "--port", str(free_port()), env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 2, (module, err)
        message = err.decode()
        assert variable in message and "0.0.0.0" in message and "Traceback" not in message, message

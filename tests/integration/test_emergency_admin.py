"""Turning the emergency announcement on and off as admins do: `ivr emergency` and `/emergency`, real Redis.

Two service instances on one Redis prove that a change reaches every instance (pub/sub) within a second.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp

from ivr.app import App
from lab.redis_server import free_port
from tests.appkit import project_copy, running

IVR = [sys.executable, "-m", "ivr.cli"]
TOKEN = "s3cret-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def ivr(*args: str, cwd: Path, redis_url: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    if redis_url is not None:
        env["IVR_REDIS_URL"] = redis_url
    return subprocess.run([*IVR, "emergency", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60)


async def seen_within(what: str, pred: Callable[[], bool], limit: float = 1.0) -> None:
    start = time.monotonic()
    while not pred():
        assert time.monotonic() - start < limit, f"{what}: not seen within {limit} s"
        await asyncio.sleep(0.01)


def switch(app: App) -> object:
    assert app.services.emergency is not None
    return app.services.emergency.active()


def test_cli_on_status_off_and_exit_codes(tmp_path: Path, redis_url: str) -> None:
    project_copy(tmp_path)
    done = ivr("status", cwd=tmp_path, redis_url=redis_url)
    assert (done.returncode, done.stdout.strip()) == (1, "emergency announcement: off")
    done = ivr("on", "--prompt", "emergency-closure", "--minutes", "30", "--by", "maria", cwd=tmp_path,
               redis_url=redis_url)
    assert done.returncode == 0, done.stderr
    assert "ON - emergency-closure; set by maria" in done.stdout and "(in 30 min)" in done.stdout
    done = ivr("status", "--json", cwd=tmp_path, redis_url=redis_url)
    info = json.loads(done.stdout)
    assert done.returncode == 0 and info["active"] and info["prompt"] == "emergency-closure"
    assert info["set_by"] == "maria" and 1790 <= info["remaining_seconds"] <= 1800
    done = ivr("on", "--text", "Flooding: the office is closed.", "--minutes", "10", cwd=tmp_path,
               redis_url=redis_url)
    assert done.returncode == 0 and "text 'Flooding: the office is closed.'" in done.stdout
    assert "set by " in done.stdout and "@" in done.stdout  # default: user@host
    done = ivr("off", "--by", "maria", cwd=tmp_path, redis_url=redis_url)
    assert (done.returncode, done.stdout.strip()) == (0, "emergency announcement: off")
    assert ivr("status", cwd=tmp_path, redis_url=redis_url).returncode == 1


def test_cli_refuses_bad_input_and_says_why(tmp_path: Path, redis_url: str) -> None:
    project_copy(tmp_path)
    cases = [
        (["on", "--prompt", "no-such-prompt", "--minutes", "5"], "no prompt 'no-such-prompt' in the catalogue"),
        (["on", "--prompt", "emergency-closure", "--minutes", "0"], "minutes: from 1 to 10080"),
        (["on", "--prompt", "emergency-closure", "--minutes", "20000"], "minutes: from 1 to 10080"),
        (["on", "--minutes", "5"], "give a prompt"),
        (["on", "--prompt", "../etc/passwd", "--minutes", "5"], "not a sound name or an absolute audio path"),
        (["on", "--prompt", "/nowhere/storm.wav", "--minutes", "5"], "no audio file at /nowhere/storm.wav"),
        (["on", "--prompt", "emergency-closure", "--minutes", "5", "--by", "x;rm -rf"], "who:"),
    ]
    for args, reason in cases:
        done = ivr(*args, cwd=tmp_path, redis_url=redis_url)
        assert done.returncode == 2 and reason in done.stderr, (args, done.stderr)
    assert ivr("status", cwd=tmp_path, redis_url=redis_url).returncode == 1  # nothing was stored
    recording = tmp_path / "storm.wav"
    recording.write_bytes(b"RIFF")
    done = ivr("on", "--prompt", str(recording), "--minutes", "5", cwd=tmp_path, redis_url=redis_url)
    assert done.returncode == 0 and f"ON - {tmp_path / 'storm'};" in done.stdout  # played without extension


def test_cli_without_redis(tmp_path: Path) -> None:
    project_copy(tmp_path)
    done = ivr("status", cwd=tmp_path, redis_url=None)
    assert done.returncode == 2 and "redis.url is not set" in done.stderr
    done = ivr("on", "--prompt", "emergency-closure", "--minutes", "5", cwd=tmp_path,
               redis_url=f"redis://127.0.0.1:{free_port()}/0")
    assert done.returncode == 3 and "Redis unavailable" in done.stderr and "nothing changed" in done.stderr


async def test_cli_change_reaches_a_running_service_within_a_second(tmp_path: Path, redis_url: str) -> None:
    async with running(tmp_path / "a", redis_url=redis_url) as app:
        assert switch(app) is None
        done = await asyncio.to_thread(ivr, "on", "--prompt", "emergency-outage", "--minutes", "5", "--by", "noc",
                                       cwd=tmp_path / "a", redis_url=redis_url)
        assert done.returncode == 0, done.stderr
        await seen_within("on", lambda: switch(app) is not None)
        done = await asyncio.to_thread(ivr, "off", cwd=tmp_path / "a", redis_url=redis_url)
        await seen_within("off", lambda: switch(app) is None)


async def test_http_put_get_delete_on_two_instances(tmp_path: Path, redis_url: str) -> None:
    async with running(tmp_path / "a", redis_url=redis_url, http_token=TOKEN) as a, \
            running(tmp_path / "b", redis_url=redis_url, http_token=TOKEN) as b, \
            aiohttp.ClientSession(f"http://127.0.0.1:{a.http_port}") as http_a, \
            aiohttp.ClientSession(f"http://127.0.0.1:{b.http_port}") as http_b:
        async with http_a.get("/emergency") as r:
            assert r.status == 200 and await r.json() == {"active": False}
        body = {"prompt": "emergency-closure", "text": "Closed today.", "minutes": 60, "by": "maria"}
        async with http_a.put("/emergency", json=body) as r:
            assert r.status == 401 and "bearer token" in (await r.json())["error"]
        async with http_a.put("/emergency", json=body, headers={"Authorization": "Bearer wrong"}) as r:
            assert r.status == 401
        async with http_a.put("/emergency", json=body, headers=AUTH) as r:
            on = await r.json()
            assert r.status == 200, on
        assert on["active"] and on["prompt"] == "emergency-closure" and on["set_by"] == "maria"
        assert on["text"] == "Closed today."
        await seen_within("the other instance", lambda: switch(b) is not None)
        async with http_b.get("/emergency") as r:
            seen = await r.json()
        assert seen["prompt"] == "emergency-closure" and seen["expires_at"] == on["expires_at"]
        async with http_b.delete("/emergency", json={"by": "maria"}, headers=AUTH) as r:
            off = await r.json()
        assert r.status == 200 and off["active"] is False and off["was"]["set_by"] == "maria"
        await seen_within("off on the first instance", lambda: switch(a) is None)


async def test_http_refuses_bad_requests(tmp_path: Path, redis_url: str) -> None:
    async with running(tmp_path, redis_url=redis_url, http_token=TOKEN) as app, \
            aiohttp.ClientSession(f"http://127.0.0.1:{app.http_port}") as http:
        for body, reason in [({"prompt": "nope", "minutes": 5}, "no prompt 'nope'"),
                             ({"prompt": "emergency-closure", "minutes": "soon"}, "minutes: a number"),
                             ({"prompt": "emergency-closure", "minutes": True}, "minutes: from 1"),
                             ({"text": "x" * 1001, "minutes": 5}, "longer than 1000"),
                             ({"minutes": 5}, "give a prompt"),
                             (["prompt"], "a JSON object")]:
            async with http.put("/emergency", json=body, headers=AUTH) as r:
                assert r.status == 400 and reason in (await r.json())["error"], body
        async with http.put("/emergency", data="{not json", headers=AUTH) as r:
            assert r.status == 400 and "JSON" in (await r.json())["error"]
        async with http.get("/emergency") as r:
            assert (await r.json())["active"] is False


async def test_http_changes_are_off_without_a_token_setting(tmp_path: Path, redis_url: str) -> None:
    async with running(tmp_path, redis_url=redis_url) as app, \
            aiohttp.ClientSession(f"http://127.0.0.1:{app.http_port}") as http:
        async with http.put("/emergency", json={"text": "hi", "minutes": 5}, headers=AUTH) as r:
            assert r.status == 403 and "http.token" in (await r.json())["error"]
        async with http.get("/emergency") as r:
            assert r.status == 200


async def test_http_without_redis_says_so(tmp_path: Path) -> None:
    async with running(tmp_path, http_token=TOKEN) as app, \
            aiohttp.ClientSession(f"http://127.0.0.1:{app.http_port}") as http, http.get("/emergency") as r:
        assert r.status == 503 and "redis.url" in (await r.json())["error"]


async def test_it_expires_by_itself_everywhere(tmp_path: Path, redis_url: str) -> None:
    async with running(tmp_path / "a", redis_url=redis_url) as a, \
            running(tmp_path / "b", redis_url=redis_url) as b, \
            aiohttp.ClientSession(f"http://127.0.0.1:{b.http_port}") as http:
        assert a.services.emergency is not None
        await a.services.emergency.set("emergency-closure", set_by="ops", ttl=1.0)  # admins: at least a minute
        await seen_within("on", lambda: switch(b) is not None)
        await seen_within("expired", lambda: switch(a) is None and switch(b) is None, limit=3.0)
        async with http.get("/emergency") as r:
            assert await r.json() == {"active": False}

"""The `ivr` command as users run it: check, simulate, prompts build, and serve with SIGHUP/SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from lab.redis_server import free_port
from tests.appkit import PROMPT_CACHE, project_copy

IVR = [sys.executable, "-m", "ivr.cli"]


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*IVR, *args], cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True,
                          text=True, timeout=120)


def test_check_reports_file_line_reason_and_exit_code(tmp_path: Path) -> None:
    project_copy(tmp_path)
    assert run("check", str(tmp_path), cwd=tmp_path).returncode == 0
    flow = tmp_path / "dialplans" / "main.yaml"
    flow.write_text(flow.read_text().replace("type: authenticate", "type: authenticat", 1))
    done = run("check", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 1
    line = next(n for n, text in enumerate(flow.read_text().splitlines(), 1) if "authenticat\n" in text + "\n")
    assert f"{flow}:{line}: error: node 'balance_auth': unknown type 'authenticat'" in done.stdout


def test_bad_setting_names_its_key(tmp_path: Path) -> None:
    done = run("check", cwd=tmp_path, env={"IVR_AGI_PORT": "forty"})
    assert done.returncode == 2 and "agi_port" in done.stderr


def test_simulate_prints_the_journey(tmp_path: Path) -> None:
    project_copy(tmp_path, anytime=True)  # the office open, whatever the time of day
    env = {"IVR_PROMPTS_CACHE": str(PROMPT_CACHE)}
    done = run("simulate", "main", "--keys", "2 0", "--json", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    journey = json.loads(done.stdout.strip().splitlines()[-1])
    assert journey["outcome"] == "queue:support-it" and journey["language"] == "it"
    assert "Per favore, usa la tastiera" in done.stdout   # the prompts, as text, on the way (in Italian)


def test_prompts_build_twice_renders_nothing_the_second_time(tmp_path: Path) -> None:
    project_copy(tmp_path)
    env = {"IVR_PROMPTS_CACHE": str(tmp_path / "cache")}
    first = run("prompts", "build", cwd=tmp_path, env=env)
    second = run("prompts", "build", cwd=tmp_path, env=env)
    assert first.returncode == second.returncode == 0
    assert "rendered=0" not in first.stdout and "rendered=0" in second.stdout, (first.stdout, second.stdout)


def _get(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=2) as r:
        result: dict[str, object] = json.load(r)
        return result


def test_serve_reloads_on_sighup_and_stops_on_sigterm(tmp_path: Path) -> None:
    project_copy(tmp_path)
    http = free_port()
    env = {**os.environ, "IVR_HTTP_PORT": str(http), "IVR_AGI_PORT": str(free_port()), "IVR_AMI_ENABLED": "false",
           "IVR_RELOAD_WATCH": "false", "IVR_PROMPTS_CACHE": str(PROMPT_CACHE)}
    proc = subprocess.Popen([*IVR, "serve"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                before = _get(f"http://127.0.0.1:{http}/flows")
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "ivr serve did not come up"
                time.sleep(0.2)
        flow = tmp_path / "dialplans" / "main.yaml"
        flow.write_text(flow.read_text().replace("retries: 3", "retries: 2", 1))
        proc.send_signal(signal.SIGHUP)
        for _ in range(100):
            if _get(f"http://127.0.0.1:{http}/flows")["version"] != before["version"]:
                break
            time.sleep(0.05)
        assert _get(f"http://127.0.0.1:{http}/flows")["version"] != before["version"]
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "flows loaded (SIGHUP)" in out and "stopping" in out


def test_auth_unlock_lifts_a_lock_and_says_who(tmp_path: Path, redis_url: str) -> None:
    import redis

    from ivr.store import AUTH_AUDIT, auth_failures, auth_lock

    r = redis.Redis.from_url(redis_url, decode_responses=True)
    r.set(auth_lock("1003"), "1", px=600_000)
    r.zadd(auth_failures("1003"), {"a": 1})
    env = {"IVR_REDIS_URL": redis_url}
    status = run("auth", "status", "1003", cwd=tmp_path, env=env)
    assert status.returncode == 1 and "locked for" in status.stdout
    done = run("auth", "unlock", "1003", "--by", "ops-desk", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "account 1003 unlocked by ops-desk (was locked)" in done.stderr
    assert not r.exists(auth_lock("1003")) and not r.exists(auth_failures("1003"))
    [(_, entry)] = r.xrange(AUTH_AUDIT)[-1:]
    assert entry["action"] == "unlock" and entry["account"] == "1003" and entry["by"] == "ops-desk"
    assert entry["at"].startswith("20") and entry["was_locked"] == "1"
    assert run("auth", "status", "1003", cwd=tmp_path, env=env).returncode == 0
    assert run("auth", "unlock", "10x3", cwd=tmp_path, env=env).returncode == 2

"""The demo: Asterisk 22 (from the sid chroot), the ivr service (`ivr serve`), Redis, the reference
backend and the SMS sink; then one real SIP call (SIPp) from a known customer who asks for the
balance with her PIN — and the call's journey printed from the service's HTTP endpoint. Outside the
demo office's hours (dialplans/schedules.yaml: Mon-Fri 08-20, Sat 09-13, Rome) she hears when the
office opens again and leaves a message instead.

Run by scripts/demo after scripts/setup. Everything runs on loopback and stops at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ivr.ops.schedule import load_schedules  # noqa: E402
from ivr.simulate import print_journey  # noqa: E402
from lab import AsteriskInstance, Dtmf, Hangup, Pause, Speak, Step, WaitHangup, espeak_wav, run_call  # noqa: E402,E501
from lab.ports import free_tcp_port  # noqa: E402
from lab.redis_server import start_redis  # noqa: E402

PY = str(ROOT / ".venv" / "bin" / "python")
IVR = str(ROOT / ".venv" / "bin" / "ivr")
CALLER = "+12025550101"  # Alice Morgan, VIP, PIN 2468 (demo data: ivr/demo/refbackend/seed.py)


def wait_http(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def wait_journey(url: str, token: str, seconds: float = 30) -> list[dict[str, object]]:
    """The finished call's journey: SIPp is done when the caller hangs up, the service a moment later."""
    deadline = time.monotonic() + seconds
    while True:
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=5) as r:
            journeys: list[dict[str, object]] = json.load(r)
        if journeys or time.monotonic() > deadline:
            return journeys
        time.sleep(0.25)


def office_open() -> tuple[bool, str]:
    schedules, _ = load_schedules(ROOT / "dialplans" / "schedules.yaml")
    state = schedules["office"].state_at(datetime.now(UTC))
    return state.state == "open", state.state


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="ivr-demo-"))
    token = secrets.token_urlsafe(24)  # the demo's admin token (it also reads journeys)
    procs: list[subprocess.Popen[bytes]] = []
    asterisk = AsteriskInstance()
    redis = start_redis()
    try:
        print("starting Asterisk 22 ...", flush=True)
        asterisk.start()
        sounds = asterisk.sounds_dir()
        sink_port, backend_port, http_port = free_tcp_port(), free_tcp_port(), free_tcp_port()
        log = (work / "services.log").open("wb")
        procs.append(subprocess.Popen([PY, "-m", "ivr.demo.smssink", "--port", str(sink_port)], stdout=log, stderr=log))
        procs.append(subprocess.Popen([PY, "-m", "ivr.demo.refbackend", "--port", str(backend_port), "--db",
                                       str(work / "ref.sqlite"), "--sms-url",
                                       f"http://127.0.0.1:{sink_port}/messages"], stdout=log, stderr=log))
        env = {**os.environ, "IVR_AGI_PORT": str(asterisk.agi_port), "IVR_HTTP_PORT": str(http_port),
               "IVR_AMI_PORT": str(asterisk.ami_port), "IVR_AMI_SECRET": asterisk.ami_secret,
               "IVR_PROMPTS_CACHE": str(sounds.host), "IVR_PROMPTS_ASTERISK_DIR": sounds.asterisk,
               "IVR_REDIS_URL": redis.url, "IVR_BACKENDS_URL": f"http://127.0.0.1:{backend_port}",
               "IVR_SMS_URL": f"http://127.0.0.1:{sink_port}/messages", "IVR_AUTH_OTP_KEY": "demo-only-key-0123456789",
               "IVR_JOURNEYS_FILE": str(work / "journeys.jsonl"), "IVR_HTTP_TOKEN": token}
        for what in ("voicemail", "announcements"):  # Asterisk records there: inside its chroot
            host = asterisk.workdir / what
            host.mkdir(parents=True, exist_ok=True)
            env[f"IVR_{what.upper()}_DIR"] = str(host)
            env[f"IVR_{what.upper()}_ASTERISK_DIR"] = asterisk.asterisk_path(host)
        print("starting the ivr service, Redis, the reference backend and the SMS sink ...", flush=True)
        procs.append(subprocess.Popen([IVR, "serve"], cwd=ROOT, env=env, stdout=log, stderr=log))
        wait_http(f"http://127.0.0.1:{backend_port}/health")
        wait_http(f"http://127.0.0.1:{http_port}/health")
        is_open, state = office_open()
        steps: list[Step]
        if is_open:
            print(f"calling the demo line as {CALLER} (Alice): balance, PIN 2468, then goodbye ...", flush=True)
            steps = [Pause(4500), Dtmf("1"), Pause(3500), Dtmf("2468#"), Pause(12000), Dtmf("9"), WaitHangup(20000)]
        else:
            print(f"the demo office is {state} now: calling as {CALLER} (Alice), who hears when it opens again "
                  "and leaves a message ...", flush=True)
            voice = espeak_wav("Hello, this is Alice Morgan. Please call me back about my order tomorrow. " * 3,
                               work / "message.wav")
            steps = [Pause(2000), Speak(voice), Hangup()]
        result = asyncio.run(run_call(asterisk.sip_port, steps, caller_id=CALLER, time_limit=60))
        if not result.ok:
            print(result.describe())
        journeys = wait_journey(f"http://127.0.0.1:{http_port}/calls/recent?limit=1", token)
        if not journeys:
            print("no journey recorded; service log:", (work / "services.log").read_text()[-3000:])
            return 1
        print_journey(journeys[-1])
        print(f"\n(logs: {work}/services.log; metrics: the service's /metrics while it runs)")
        return 0 if result.ok else 1
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        redis.stop()
        asterisk.stop()


if __name__ == "__main__":
    sys.exit(main())

"""The demo flow on real Asterisk: through the ivr service versus the same flow in native dialplan.

    .venv/bin/python bench/asterisk_bench.py [--calls 20] [--rate 2]

Both runs use the same prompts (the service's rendered audio), the same SIPp caller script
(English, then 0 for an agent, a few seconds in the queue, hang up) and the same call rate.
Reported: CPU seconds (user + system) of Asterisk + the service per call, as a ratio to native
dialplan (Asterisk alone), and the failed calls of each. Needs root and the chroot (scripts/setup).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ivr.media.prompts import PromptCatalog, PromptStore  # noqa: E402
from ivr.media.tts import TtsRenderer  # noqa: E402
from lab import AsteriskInstance, Dtmf, Hangup, Pause, run_call  # noqa: E402
from lab.ports import free_tcp_port  # noqa: E402

STEPS = [Pause(2500), Dtmf("1"), Pause(3000), Dtmf("0"), Pause(4000), Hangup()]
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


async def prompt_paths(sounds_host: Path, sounds_asterisk: str) -> dict[str, str]:
    catalog, _ = PromptCatalog.load(ROOT / "prompts", ("en", "it"), "en")
    renderer = TtsRenderer()
    try:
        store = PromptStore(catalog, sounds_host, renderer, asterisk_dir=sounds_asterisk)
        return {n: (await store.resolve(n, "en", {})).path for n in ("welcome", "main-menu", "transfer-agent")}
    finally:
        await renderer.close()


def native_context(p: dict[str, str]) -> str:
    """The demo's path for these callers, in dialplan: language menu, main menu, transfer, queue."""
    return f"""
[bench-native]
exten => 300,1,Answer()
 same => n,Read(LANG,{p['welcome']},1,,2,4)
 same => n,Set(CHANNEL(language)=${{IF($["${{LANG}}" = "2"]?it:en)}})
 same => n,Read(CHOICE,{p['main-menu']},1,,3,5)
 same => n,Set(__IVR_PATH=main_menu:${{CHOICE}})
 same => n,Playback({p['transfer-agent']})
 same => n,Queue(support)
 same => n,Hangup()
"""


def add_native(asterisk: AsteriskInstance, paths: dict[str, str]) -> None:
    conf = asterisk.workdir / "etc" / "extensions.conf"
    text = conf.read_text()
    text = text.replace("[ivr-inbound]", "[ivr-inbound]\nexten => 300,1,Goto(bench-native,300,1)", 1)
    conf.write_text(text + native_context(paths))
    asterisk.cli("dialplan reload")


def run(kind: str, asterisk: AsteriskInstance, calls: int, rate: float, service_pid: int | None) -> dict[str, float]:
    pids = [p for p in (asterisk.proc.pid if asterisk.proc else None, service_pid) if p]
    before = sum(cpu_seconds(p) for p in pids)
    start = time.monotonic()
    result = asyncio.run(run_call(asterisk.sip_port, STEPS, extension="300" if kind == "native" else "100",
                                  calls=calls, concurrent=calls, rate=rate, time_limit=60 + calls / rate * 2))
    wall = time.monotonic() - start
    cpu = sum(cpu_seconds(p) for p in pids) - before
    failed = calls if result.timed_out else _failed(result)
    return {"cpu_per_call": cpu / calls, "failed": failed, "wall_s": wall}


def _failed(result: object) -> int:
    screen = getattr(result, "screen_log", None)
    text = Path(screen).read_text(errors="replace") if screen and Path(screen).exists() else ""
    for line in text.splitlines():
        if "Failed call" in line:
            try:
                return int(line.split("|")[2].strip() or 0)
            except (IndexError, ValueError):
                break
    return 0 if getattr(result, "ok", False) else -1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--rate", type=float, default=2.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ivr-bench-"))
    asterisk = AsteriskInstance()
    service = None
    try:
        asterisk.start()
        sounds = asterisk.sounds_dir()
        paths = asyncio.run(prompt_paths(sounds.host, sounds.asterisk))
        add_native(asterisk, paths)
        http = free_tcp_port()
        env = {**os.environ, "IVR_AGI_PORT": str(asterisk.agi_port), "IVR_HTTP_PORT": str(http),
               "IVR_AMI_PORT": str(asterisk.ami_port), "IVR_AMI_SECRET": asterisk.ami_secret,
               "IVR_PROMPTS_CACHE": str(sounds.host), "IVR_PROMPTS_ASTERISK_DIR": sounds.asterisk,
               "IVR_JOURNEYS_FILE": str(work / "journeys.jsonl"), "IVR_LOG_LEVEL": "WARNING"}
        service = subprocess.Popen([str(ROOT / ".venv/bin/ivr"), "serve"], cwd=ROOT, env=env,
                                   stdout=subprocess.DEVNULL, stderr=(work / "ivr.log").open("wb"))
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{http}/health", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        native = run("native", asterisk, args.calls, args.rate, None)
        ivr = run("ivr", asterisk, args.calls, args.rate, service.pid)
        print(f"{args.calls} calls at {args.rate}/s, each: English, 0 for an agent, 4 s in the queue, hang up")
        print(f"{'':<22}{'native dialplan':>16}{'ivr service':>14}{'ratio':>8}")
        ratio = ivr["cpu_per_call"] / native["cpu_per_call"] if native["cpu_per_call"] else float("nan")
        print(f"{'CPU s per call':<22}{native['cpu_per_call']:>16.3f}{ivr['cpu_per_call']:>14.3f}{ratio:>8.2f}")
        print(f"{'failed calls':<22}{native['failed']:>16.0f}{ivr['failed']:>14.0f}")
        print(f"{'wall s':<22}{native['wall_s']:>16.1f}{ivr['wall_s']:>14.1f}")
        print("(CPU: Asterisk for native; Asterisk + the ivr process for the service)")
    finally:
        if service is not None:
            service.terminate()
            service.wait(20)
        asterisk.stop()


if __name__ == "__main__":
    main()

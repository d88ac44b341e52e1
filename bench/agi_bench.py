"""AGI server benchmark: N concurrent simulated calls against the ivr service and a bare asyncio loop.

    .venv/bin/python bench/agi_bench.py [--calls 1000] [--keys 20]

Each call sends an AGI environment, then answers every STREAM FILE with key 1 (`--keys` times) and
then 0. Reported for both servers, in the same run, and as ratios ivr / bare: commands per second
overall, p50/p99 latency from a reply sent to the next command received, and server memory per live
call (RSS with every call connected and mid-call, minus RSS before, divided by calls).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def one_call(port: int, i: int, keys: int, held: asyncio.Event, arrived: list[int],
                   all_in: asyncio.Event, calls: int, lat: list[float]) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"agi_network: yes\nagi_uniqueid: b-{i}\nagi_network_script: bench\nagi_callerid: unknown\n"
                 f"agi_language: en\n\n".encode())
    await writer.drain()
    commands, pressed, first = 0, 0, True
    sent_at = 0.0
    while line := await reader.readline():
        if sent_at:
            lat.append(time.perf_counter() - sent_at)
        commands += 1
        if first:
            first = False
            arrived.append(i)
            if len(arrived) == calls:
                all_in.set()
            await held.wait()   # every call is now live: the parent measures memory
        if line.startswith(b"STREAM FILE"):
            reply = b"200 result=49 endpos=1\n" if pressed < keys else b"200 result=48 endpos=1\n"
            pressed += 1
        elif line.startswith(b"HANGUP"):
            writer.write(b"200 result=1\n")
            await writer.drain()
            break
        else:
            reply = b"200 result=1\n"
        writer.write(reply)
        await writer.drain()
        sent_at = time.perf_counter()
    writer.close()
    return commands


def run(kind: str, calls: int, keys: int) -> dict[str, float]:
    port = free_port()
    script = HERE / ("bare_agi.py" if kind == "bare" else "ivr_agi.py")
    proc = subprocess.Popen([sys.executable, str(script), str(port)], stdout=subprocess.PIPE, text=True,
                            cwd=HERE.parent)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    try:
        return asyncio.run(drive(port, proc.pid, calls, keys))
    finally:
        proc.terminate()
        proc.wait()


async def drive(port: int, pid: int, calls: int, keys: int) -> dict[str, float]:
    idle = rss_kib(pid)
    held, all_in, arrived, lat = asyncio.Event(), asyncio.Event(), [], []  # type: ignore[var-annotated]
    tasks = [asyncio.create_task(one_call(port, i, keys, held, arrived, all_in, calls, lat)) for i in range(calls)]
    await all_in.wait()
    busy = rss_kib(pid)
    start = time.perf_counter()
    held.set()
    counts = await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    lat.sort()
    return {"commands_per_s": sum(counts) / elapsed, "p50_ms": 1000 * lat[len(lat) // 2],
            "p99_ms": 1000 * lat[int(len(lat) * 0.99)], "kib_per_call": (busy - idle) / calls,
            "mean_ms": 1000 * statistics.fmean(lat)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--keys", type=int, default=20)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.calls + 256)), hard))
    bare = run("bare", args.calls, args.keys)
    ivr = run("ivr", args.calls, args.keys)
    print(f"{args.calls} concurrent calls, {args.keys + 1} keys each")
    print(f"{'metric':<16}{'bare asyncio':>14}{'ivr':>12}{'ivr / bare':>12}")
    for key in ("commands_per_s", "p50_ms", "p99_ms", "mean_ms", "kib_per_call"):
        ratio = ivr[key] / bare[key] if bare[key] else float("nan")
        print(f"{key:<16}{bare[key]:>14.2f}{ivr[key]:>12.2f}{ratio:>12.2f}")


if __name__ == "__main__":
    main()

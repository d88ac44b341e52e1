"""Baseline for bench/agi_bench.py: a bare asyncio FastAGI loop doing the same protocol work, nothing else."""

from __future__ import annotations

import asyncio
import sys


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while (await reader.readline()).strip():
        pass  # the environment block
    while True:
        writer.write(b'STREAM FILE "/var/prompts/en/main-menu" "0123456789*#"\n')
        await writer.drain()
        reply = await reader.readline()
        if not reply or b"result=48" in reply:   # key 0: the caller is done
            break
    writer.write(b"HANGUP\n")
    await writer.drain()
    await reader.readline()
    writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=2048)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))

"""`python -m ivr.demo.refbackend --port N --db PATH --sms-url URL [--faults]`: run the reference backend."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from ivr.demo.refbackend.app import serve
from ivr.errors import ConfigError
from ivr.identity.secret import Secret, install


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m ivr.demo.refbackend", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8081)
    p.add_argument("--db", default=":memory:", help="SQLite file (created and seeded with demo data if new)")
    p.add_argument("--sms-url", default=None, help="SMS gateway endpoint, e.g. http://127.0.0.1:8082/messages")
    p.add_argument("--faults", action="store_true", help="enable the test-only /_faults endpoint")
    p.epilog = ("Tokens come from the environment: IVR_REFBACKEND_TOKEN (clients must send it as a "
                "bearer token; required to listen beyond loopback) and IVR_SMS_TOKEN (sent to the SMS gateway).")
    return p.parse_args(argv)


def _env_secret(name: str) -> Secret | None:
    value = os.environ.get(name)
    return Secret(value) if value else None


async def run(args: argparse.Namespace) -> None:
    running = await serve(args.db, host=args.host, port=args.port, sms_url=args.sms_url,
                          sms_token=_env_secret("IVR_SMS_TOKEN"), token=_env_secret("IVR_REFBACKEND_TOKEN"),
                          faults=args.faults)
    logging.getLogger("ivr.refbackend").info("reference backend on %s (db %s, faults %s)",
                                             running.url, args.db, "on" if args.faults else "off")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await running.close()


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install()
    try:
        asyncio.run(run(parse(argv)))
    except ConfigError as exc:
        print(f"python -m ivr.demo.refbackend: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()

"""The `ivr` command: serve | check | schema | prompts build | simulate | emergency | auth."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import getpass
import socket
import sys
from pathlib import Path

from ivr import logs
from ivr.config import Settings, load_settings
from ivr.diagnostics import errors
from ivr.errors import ConfigError


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {k: v for k, v in {
        "agi_port": getattr(args, "agi_port", None), "http_port": getattr(args, "http_port", None),
        "flows_dir": getattr(args, "flows", None), "log_level": getattr(args, "log_level", None),
    }.items() if v is not None}
    return load_settings(Path(args.config) if args.config else None, overrides=overrides)


def cmd_serve(args: argparse.Namespace) -> int:
    from ivr.app import App

    settings = _settings(args)
    logs.setup(settings.log_level, settings.log_format)

    async def main() -> None:
        app = App(settings)
        await app.start()
        await app.run_until_stopped()

    asyncio.run(main())
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from ivr.flows.registry import check_all

    settings = _settings(args)
    if args.path:
        root = Path(args.path)
        if (root / "dialplans").is_dir():
            settings = dataclasses.replace(settings, flows_dir=root / "dialplans", prompts_dir=root / "prompts")
        else:
            settings = dataclasses.replace(settings, flows_dir=root)
    from ivr.identity.wiring import auth_settings

    auth_settings(settings)  # a bad [auth] value is a ConfigError (exit 2) naming its key
    from ivr.nodes import NODE_TYPES

    flows, _, found = check_all(settings, NODE_TYPES)
    from ivr.speech.check import speech_findings

    found = sorted(set(found + speech_findings(flows, settings.languages, settings.extra.get("speech", {}))))
    for d in found:
        print(d)
    bad = errors(found)
    warnings = len(found) - len(bad)
    print(f"{len(flows.flows)} flow(s), {sum(len(f.nodes) for f in flows.flows.values())} node(s): "
          f"{len(bad)} error(s), {warnings} warning(s)", file=sys.stderr)
    return 1 if bad else 0


def cmd_prompts_build(args: argparse.Namespace) -> int:
    from ivr.media.prompts import PromptCatalog, PromptStore
    from ivr.media.tts import TtsRenderer

    settings = _settings(args)
    logs.setup("WARNING")
    catalog, found = PromptCatalog.load(settings.prompts_dir, settings.languages, settings.default_language)
    for d in found:
        print(d)
    if errors(found):
        return 1

    async def main() -> None:
        renderer = TtsRenderer()
        try:
            store = PromptStore(catalog, settings.prompts_cache, renderer,
                                asterisk_dir=settings.asterisk_prompts_dir())
            print(await store.build(settings.languages))
        finally:
            await renderer.close()

    asyncio.run(main())
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from ivr.simulate import ask_terminal, parse_at, print_journey, simulate

    try:
        at = parse_at(args.at) if args.at else None
    except ValueError as exc:
        print(f"ivr: --at: {exc}", file=sys.stderr)
        return 2
    settings = _settings(args)
    logs.setup(args.log_level or "WARNING")
    settings = dataclasses.replace(settings, journeys_file=Path(args.journeys) if args.journeys else None)
    _, journey = asyncio.run(simulate(settings, args.flow, args.keys, caller_id=args.caller_id,
                                      language=args.language, ask=ask_terminal, at=at))
    print_journey(journey, as_json=args.json)
    return 0


def cmd_emergency(args: argparse.Namespace) -> int:
    from ivr.ops.emergency_admin import command

    settings = _settings(args)
    logs.setup("ERROR")
    by = args.by or f"{getpass.getuser()}@{socket.gethostname()}"
    return asyncio.run(command(settings, args.emergency_command, prompt=getattr(args, "prompt", None),
                               text=getattr(args, "text", None), minutes=getattr(args, "minutes", None),
                               by=by, as_json=args.json))


def cmd_auth(args: argparse.Namespace) -> int:
    from ivr.identity.admin import command

    settings = _settings(args)
    logs.setup("WARNING")  # the unlock's own log line (who, what) is printed
    by = args.by or f"{getpass.getuser()}@{socket.gethostname()}"
    return asyncio.run(command(settings, args.auth_command, account=args.account or "",
                               caller_id=getattr(args, "caller", None) or "", by=by, as_json=args.json))


def cmd_schema(args: argparse.Namespace) -> int:
    import json

    from ivr.flows.schema import flow_schema
    from ivr.nodes import NODE_TYPES

    print(json.dumps(flow_schema(NODE_TYPES), indent=2, ensure_ascii=False))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ivr", description=__doc__)
    p.add_argument("--config", help="settings file (default: $IVR_CONFIG or ./ivr.toml)")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the FastAGI + AMI + HTTP service")
    s.add_argument("--agi-port", type=int)
    s.add_argument("--http-port", type=int)
    s.add_argument("--log-level")
    s.set_defaults(func=cmd_serve)
    c = sub.add_parser("check", help="validate flows, prompts and settings; prints file:line: reason")
    c.add_argument("path", nargs="?", help="a project dir (with dialplans/ and prompts/) or a flows dir")
    c.set_defaults(func=cmd_check)
    sc = sub.add_parser("schema", help="print the JSON Schema of a flow file (for editors: see the README)")
    sc.set_defaults(func=cmd_schema)
    pr = sub.add_parser("prompts", help="prompt tools")
    prs = pr.add_subparsers(dest="prompts_command", required=True)
    b = prs.add_parser("build", help="render text prompts and convert recordings to telephone audio")
    b.set_defaults(func=cmd_prompts_build)
    m = sub.add_parser("simulate", help="walk a flow at the terminal over real AGI (no phone needed)")
    m.add_argument("flow", help="flow name (the AGI script name), e.g. main")
    m.add_argument("--keys", help='scripted caller, e.g. "2 1 0" ("t" = silence, "h" = hang up, '
                   '\'say:"my balance"\' = speech at a prompt that listens); '
                   "without it, keys are asked for at the terminal")
    m.add_argument("--caller-id", default="")
    m.add_argument("--at", help='when the call happens, e.g. "2026-12-07 10:00 Europe/Rome" (default: now); '
                   "opening hours, holidays and callback slots follow it")
    m.add_argument("--language", default="")
    m.add_argument("--json", action="store_true", help="print the journey as JSON")
    m.add_argument("--journeys", help="also append the journey to this JSONL file")
    m.add_argument("--log-level")
    m.set_defaults(func=cmd_simulate)
    e = sub.add_parser("emergency", help="the emergency announcement every caller hears (Redis: redis.url)",
                       description="Exit codes: 0 done (status: on), 1 status: off, 2 bad input or "
                       "settings, 3 Redis unavailable.")
    es = e.add_subparsers(dest="emergency_command", required=True)
    on = es.add_parser("on", help="turn it on (replaces one in force)")
    on.add_argument("--prompt", help="a catalogue prompt (e.g. emergency-closure) or an absolute audio path")
    on.add_argument("--text", help="words to speak (TTS in the default language); with --prompt: spoken "
                    "only if the prompt cannot be played")
    on.add_argument("--minutes", type=float, required=True, help="it switches itself off after this (1 to 10080)")
    off = es.add_parser("off", help="turn it off everywhere")
    st = es.add_parser("status", help="show what callers hear now")
    for ep in (on, off, st):
        ep.add_argument("--by", help="who (recorded and logged; default: user@host)")
        ep.add_argument("--json", action="store_true", help="print JSON")
        ep.set_defaults(func=cmd_emergency)
    a = sub.add_parser("auth", help="PIN lockouts (Redis: redis.url)",
                       description="Exit codes: 0 done (status: not locked), 1 status: locked, 2 bad input or "
                       "settings, 3 Redis unavailable.")
    aus = a.add_subparsers(dest="auth_command", required=True)
    un = aus.add_parser("unlock", help="lift a lockout now (logged and audited with who and when)")
    un.add_argument("account", nargs="?", help="account number")
    un.add_argument("--caller", help="also (or only) lift the lock of this caller id")
    ast = aus.add_parser("status", help="is the account locked, and how many failures are in its window")
    ast.add_argument("account", help="account number")
    for ap in (un, ast):
        ap.add_argument("--by", help="who (recorded and logged; default: user@host)")
        ap.add_argument("--json", action="store_true", help="print JSON")
        ap.set_defaults(func=cmd_auth)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

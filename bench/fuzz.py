"""Fuzz the parsers with hypothesis: per target, cases run, crashes (must be 0), distinct error messages.

    python -m bench.fuzz                   # 100,000 cases in all (a few minutes on 2 cores)
    python -m bench.fuzz --cases 5000 --show 5 --only flow,condition

A crash is any exception other than the parser's own documented error, a broken invariant
(`lab.fuzz.targets`), or a case that runs longer than --timeout seconds. Exit status 1 on any crash.
"""

from __future__ import annotations

import argparse
import collections
import re
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from lab.fuzz import strategies as s
from lab.fuzz import targets

# target: (arguments, share of the cases)
PLAN: dict[str, tuple[st.SearchStrategy[tuple[Any, ...]], float]] = {
    "agi_env": (st.tuples(s.env_blocks), 0.13),
    "agi_replies": (st.tuples(s.reply_blocks), 0.13),
    "agi_command": (s.agi_commands, 0.08),
    "condition": (st.tuples(s.condition_texts, s.variable_values), 0.20),
    "template": (st.tuples(s.template_texts, s.variable_values), 0.10),
    "prompt": (st.tuples(s.prompt_values), 0.06),
    "yaml": (st.tuples(st.one_of(s.flow_texts(), s.schedule_texts())), 0.06),
    "flow": (st.tuples(s.flow_texts()), 0.14),
    "schedules": (st.tuples(s.schedule_texts()), 0.10),
}


class Hang(Exception):
    """A case ran past its time limit."""


@dataclass
class Tally:
    cases: int = 0
    crashes: list[tuple[str, str]] = field(default_factory=list)  # (error, input)
    messages: collections.Counter[str] = field(default_factory=collections.Counter)
    slowest: float = 0.0
    slowest_input: str = ""
    seconds: float = 0.0


def _kind(message: str) -> str:
    """A message with its quoted values and numbers blanked, to show the kinds of answers."""
    return re.sub(r"\d+", "N", re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", message))[:120]


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise Hang("case took too long")


def run(name: str, cases: int, timeout: float, rng_seed: int) -> Tally:
    strategy, _ = PLAN[name]
    check: Callable[..., list[str]] = targets.TARGETS[name]
    tally = Tally()

    @seed(rng_seed)
    @settings(max_examples=cases, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def case(args: tuple[Any, ...]) -> None:
        tally.cases += 1
        start = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            tally.messages.update(check(*args))
        except Exception as exc:  # noqa: BLE001 - every other exception is what we count
            tally.crashes.append((f"{type(exc).__name__}: {str(exc)[:200]}", repr(args)))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            took = time.perf_counter() - start
            if took > tally.slowest:
                tally.slowest, tally.slowest_input = took, repr(args)

    began = time.perf_counter()
    case()
    tally.seconds = time.perf_counter() - began
    return tally


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=100_000, help="cases in all, shared out over the targets")
    ap.add_argument("--only", default="", help="comma-separated targets (default: all)")
    ap.add_argument("--timeout", type=float, default=5.0, help="seconds one case may take")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--show", type=int, default=0, help="print the N commonest kinds of error per target")
    ap.add_argument("--save", type=Path, help="write each crash's input and the slowest case here, in full")
    args = ap.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(PLAN)
    unknown = [n for n in names if n not in PLAN]
    if unknown:
        ap.error(f"unknown target(s) {', '.join(unknown)} (known: {', '.join(PLAN)})")
    share = sum(PLAN[n][1] for n in names)
    signal.signal(signal.SIGALRM, _alarm)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000))
    total = crashes = 0
    print(f"{'target':<12} {'cases':>8} {'crashes':>8} {'errors':>8} {'distinct':>9} {'slowest s':>10} {'s':>7}")
    for name in names:
        n = max(1, round(args.cases * PLAN[name][1] / share))
        t = run(name, n, args.timeout, args.seed)
        answered = sum(t.messages.values())
        print(f"{name:<12} {t.cases:>8} {len(t.crashes):>8} {answered:>8} {len(t.messages):>9} "
              f"{t.slowest:>10.3f} {t.seconds:>7.1f}", flush=True)
        for error, given_input in t.crashes[:5]:
            print(f"    CRASH {error}\n          input {given_input[:300]}")
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            for i, (error, given_input) in enumerate(t.crashes):
                (args.save / f"{name}-crash-{i}.txt").write_text(f"{error}\n{given_input}\n", encoding="utf-8")
            (args.save / f"{name}-slowest.txt").write_text(f"{t.slowest:.3f} s\n{t.slowest_input}\n",
                                                           encoding="utf-8")
        for kind, count in collections.Counter(_kind(m) for m in t.messages.elements()).most_common(args.show):
            print(f"    {count:>7}  {kind}")
        total += t.cases
        crashes += len(t.crashes)
    print(f"{'all':<12} {total:>8} {crashes:>8}")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())

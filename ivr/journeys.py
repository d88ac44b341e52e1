"""What callers did: live calls, finished journeys (JSON lines + recent in memory), KPI counters.

The counters feed /metrics labels, so their keys come from a bounded set: a flow the registry knows
(any other AGI script name, which the peer chooses, counts as `other`), and at most MAX_SERIES keys per
counter (MAX_OUTCOMES outcomes); anything past that counts as `other`.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter, deque
from collections.abc import Callable, Collection, Hashable
from pathlib import Path
from typing import Any, TypeVar

from ivr.call import Call

log = logging.getLogger("ivr.journeys")

OTHER = "other"
MAX_SERIES = 1000  # distinct (flow, node) keys per counter
MAX_OUTCOMES = 200  # distinct outcomes
K = TypeVar("K", bound=Hashable)


class JourneyLog:
    """Records every call's journey. Events never hold secure digits (nodes only record safe data)."""

    def __init__(self, path: Path | None, keep: int = 500,
                 known_flows: Callable[[], Collection[str]] | None = None) -> None:
        self.path = path
        self.known_flows = known_flows  # None: every flow name counts (still capped)
        self.live: dict[str, Call] = {}
        self.recent: deque[dict[str, Any]] = deque(maxlen=keep)
        self.outcomes: Counter[str] = Counter()
        self.node_visits: Counter[tuple[str, str]] = Counter()
        self.errors: Counter[tuple[str, str]] = Counter()
        self.calls_started = 0
        self._lock = threading.Lock()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def started(self, call: Call) -> None:
        self.calls_started += 1
        self.live[call.uniqueid] = call

    def finished(self, call: Call) -> dict[str, Any]:
        self.live.pop(call.uniqueid, None)
        summary = call.summary()
        self.recent.append(summary)
        _count(self.outcomes, _outcome_kind(call.outcome), OTHER, MAX_OUTCOMES)
        known = self.known_flows is None or call.flow in self.known_flows()
        for e in call.journey:
            if e.kind in ("enter", "error"):
                key = (call.flow, e.node) if known else (OTHER, "-")  # unknown flow: one series
                _count(self.node_visits if e.kind == "enter" else self.errors, key, (OTHER, OTHER), MAX_SERIES)
        if self.path is not None:
            line = json.dumps(summary, ensure_ascii=False, default=str)
            with self._lock, self.path.open("a", encoding="utf-8") as f:
                f.write(line + "\n")
        return summary

    def kpis(self) -> dict[str, Any]:
        """Containment = calls that ended without reaching a queue (self-service done)."""
        total = sum(self.outcomes.values())
        queued = sum(v for k, v in self.outcomes.items() if k.startswith("queue"))
        return {
            "calls_started": self.calls_started, "calls_finished": total, "calls_live": len(self.live),
            "outcomes": dict(self.outcomes),
            "containment_rate": round((total - queued) / total, 3) if total else None,
        }


def _outcome_kind(outcome: str) -> str:
    """`queue:billing` stays as is (queue names are admin-defined, never caller data)."""
    return outcome or "unknown"


def _count(counter: Counter[K], key: K, other: K, limit: int) -> None:
    """Count `key`, or `other` once the counter holds `limit` keys (the last place is kept for `other`)."""
    if key not in counter and len(counter) >= limit - 1:
        key = other
    counter[key] += 1


def label_value(value: str) -> str:
    """A Prometheus label value, escaped per the text format (backslash, double quote, newline)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

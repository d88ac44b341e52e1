"""What callers did: live calls, finished journeys (JSON lines + recent in memory), KPI counters."""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter, deque
from pathlib import Path
from typing import Any

from ivr.call import Call

log = logging.getLogger("ivr.journeys")


class JourneyLog:
    """Records every call's journey. Events never hold secure digits (nodes only record safe data)."""

    def __init__(self, path: Path | None, keep: int = 500) -> None:
        self.path = path
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
        self.outcomes[_outcome_kind(call.outcome)] += 1
        for e in call.journey:
            if e.kind == "enter":
                self.node_visits[(call.flow, e.node)] += 1
            elif e.kind == "error":
                self.errors[(call.flow, e.node)] += 1
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

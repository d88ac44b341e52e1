"""Live queue state from AMI events and an estimated wait time (EWT) per position.

Asterisk's own estimate (QueueSummary `HoldTime`) is an exponential average of past waits: it ignores
how many agents are on shift now, how many callers are ahead, and who gives up. Here:

* Capacity. Handle time AHT = exponentially weighted mean (alpha 0.2, ~last 10 calls) of `AgentComplete`
  TalkTime plus the member's wrap-up time. Serving agents S = members logged in (device not
  unavailable/invalid) and not paused. Effective service rate mu = S / AHT.
* Abandonment. p = exponentially weighted share of callers leaving by abandon rather than being
  connected (`QueueCallerAbandon` = 1, `AgentConnect` = 0): each caller ahead needs an agent w.p. 1 - p.
* Position k (1 = head). With F agents free now, k <= F waits only the ring time; otherwise it needs
  n = 1 + (k - 1 - F)(1 - p) agents to free up: EWT_model = n / mu + mean ring time.
* Scarce data. Fallback: observed waits of recently connected callers (`AgentConnect` HoldTime) scaled
  by k / mean join position. Blend by credibility c = N / (N + 3), N = number of AHT samples decayed by
  exp(-age / 1 h); without own samples Asterisk's TalkTime/HoldTime averages stand in with c = 0.25.
* No agent logged in or all paused: no estimate (`method="no_agents"`); routing decides.

The board is pure (events in, numbers out) with an injectable clock; events carry `Timestamp` when
manager.conf has `timestampevents=yes`, else the clock stamps them. Call `refresh()` (a QueueStatus
dump) after each AMI (re)connect and periodically to correct any drift.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

Event = Mapping[str, Any]
_SUMMARY_KEYS = ("LoggedIn", "Available", "Callers", "HoldTime", "Holdtime", "TalkTime")
ALPHA = 0.2
HORIZON = 3600.0  # s: age at which a sample's weight has fallen to 1/e
PRIOR = 3.0  # samples needed before the capacity model gets half the weight
ASTERISK_CREDIBILITY = 0.25


@dataclass
class Ewma:
    """Exponentially weighted mean, with the time of its last sample for credibility decay."""

    value: float | None = None
    count: int = 0
    at: float = 0.0

    def add(self, x: float, at: float, alpha: float = ALPHA) -> None:
        self.value = x if self.value is None else self.value + alpha * (x - self.value)
        self.count, self.at = self.count + 1, at

    def weight(self, now: float) -> float:
        return self.count * math.exp(-max(0.0, now - self.at) / HORIZON) if self.count else 0.0


@dataclass
class Member:
    interface: str
    name: str = ""
    status: int = 0  # AST_DEVICE_*: 0 unknown, 1 not in use, 2 in use, 4 invalid, 5 unavailable ...
    paused: bool = False
    in_call: bool = False
    wrapup: float = 0.0

    @property
    def logged_in(self) -> bool:
        return self.status not in (4, 5)

    @property
    def serving(self) -> bool:
        return self.logged_in and not self.paused

    @property
    def available(self) -> bool:
        return self.serving and not self.in_call and self.status in (0, 1)


@dataclass
class QueueStats:
    """Everything known about one queue."""

    name: str
    members: dict[str, Member] = field(default_factory=dict)
    callers: dict[str, tuple[int, float]] = field(default_factory=dict)  # uniqueid → (position, joined)
    aht: Ewma = field(default_factory=Ewma)
    hold: Ewma = field(default_factory=Ewma)  # waits of connected callers
    ring: Ewma = field(default_factory=Ewma)
    abandon: Ewma = field(default_factory=Ewma)
    join_pos: Ewma = field(default_factory=Ewma)
    departures: int = 0  # callers that left the queue (connected, abandoned, timed out)
    members_known: bool = False
    summary: dict[str, float] = field(default_factory=dict)  # Asterisk's LoggedIn, HoldTime, TalkTime ...

    def counts(self) -> tuple[int, int, int]:
        """(logged in, serving, available): from member events, else from Asterisk's QueueSummary."""
        if not self.members_known:
            s = self.summary
            return int(s.get("loggedin", 0)), int(s.get("loggedin", 0)), int(s.get("available", 0))
        ms = self.members.values()
        return sum(m.logged_in for m in ms), sum(m.serving for m in ms), sum(m.available for m in ms)


@dataclass(frozen=True)
class QueueSnapshot:
    """A queue at one instant; `ewt` is for a caller joining now (position callers + 1)."""

    queue: str
    logged_in: int
    serving: int
    available: int
    callers: int
    longest_wait: float
    aht: float | None
    abandon_rate: float
    departures: int
    ewt: float | None
    method: str  # model | blend | observed | agent_free | no_agents | unknown


class QueueBoard:
    """Per-queue state fed by `apply(event)` (panoramisk Messages or dicts)."""

    def __init__(self, clock: Callable[[], float] = time.time, default_wrapup: float = 0.0) -> None:
        self.clock = clock
        self.default_wrapup = default_wrapup
        self.queues: dict[str, QueueStats] = {}

    def _q(self, event: Event) -> QueueStats:
        name = str(event.get("Queue", ""))
        return self.queues.setdefault(name, QueueStats(name))

    def apply(self, event: Event) -> None:
        """Update from one AMI event; unknown events and malformed fields are ignored."""
        kind = str(event.get("Event", ""))
        if not event.get("Queue") or not kind:
            return
        q, t = self._q(event), _float(event, "Timestamp", None) or self.clock()
        iface = str(event.get("Interface") or event.get("Location") or "")
        member = q.members.get(iface)
        if kind in ("QueueMemberStatus", "QueueMemberAdded", "QueueMemberPause", "QueueMember"):
            q.members_known = True
            m = member or q.members.setdefault(iface, Member(iface))
            m.name = str(event.get("MemberName") or event.get("Name") or m.name)
            m.status, m.wrapup = _int(event, "Status", m.status), float(_int(event, "Wrapuptime", 0))
            m.paused, m.in_call = _int(event, "Paused", m.paused) == 1, _int(event, "InCall", m.in_call) == 1
        elif kind == "QueueMemberRemoved":
            q.members_known = True
            q.members.pop(iface, None)
        elif kind in ("QueueCallerJoin", "QueueEntry"):
            pos = _int(event, "Position", len(q.callers) + 1)
            q.callers[str(event.get("Uniqueid", ""))] = (pos, t - _int(event, "Wait", 0))
            if kind == "QueueCallerJoin":
                q.join_pos.add(pos, t)
        elif kind == "QueueCallerLeave":
            gone = q.callers.pop(str(event.get("Uniqueid", "")), None)
            pos = gone[0] if gone else _int(event, "Position", 1)
            q.callers = {u: (p - (p > pos), j) for u, (p, j) in q.callers.items()}
            q.departures += 1
        elif kind == "QueueCallerAbandon":
            q.abandon.add(1.0, t)
        elif kind == "AgentConnect":
            q.hold.add(_int(event, "HoldTime", 0), t)
            q.ring.add(_int(event, "RingTime", 0), t)
            q.abandon.add(0.0, t)
            if member is not None:
                member.in_call = True
        elif kind == "AgentComplete":
            wrap = member.wrapup if member and member.wrapup else self.default_wrapup
            q.aht.add(_int(event, "TalkTime", 0) + wrap, t)
            if member is not None:
                member.in_call = False
        elif kind in ("QueueSummary", "QueueParams"):
            q.summary.update({k.lower(): float(_int(event, k, 0)) for k in _SUMMARY_KEYS if k in event})

    def resync(self, events: Iterable[Event]) -> None:
        """Replace members and callers of every queue in a QueueStatus response (QueueParams first)."""
        for event in events:
            if event.get("Event") == "QueueParams" and event.get("Queue"):
                q = self._q(event)
                q.members.clear()
                q.callers.clear()
                q.members_known = True
            self.apply(event)

    def estimate(self, queue: str, position: int, now: float | None = None) -> tuple[float | None, str]:
        """(seconds or None, method) for the caller at `position` (1 = next to be answered)."""
        now = self.clock() if now is None else now
        q = self.queues.get(queue) or QueueStats(queue)
        s = q.summary
        _, serving, free = q.counts()
        if serving == 0:
            return None, "no_agents" if q.members_known or "loggedin" in s else "unknown"
        ring = q.ring.value or 0.0
        if position <= free:
            return ring, "agent_free"
        needed = 1 + (position - 1 - free) * (1 - (q.abandon.value or 0.0))
        aht = q.aht.value or (s["talktime"] + self.default_wrapup if s.get("talktime") else None)
        model = needed * aht / serving + ring if aht else None
        credibility = q.aht.weight(now) / (q.aht.weight(now) + PRIOR) if q.aht.value else ASTERISK_CREDIBILITY
        waited = q.hold.value if q.hold.value is not None else s.get("holdtime")
        observed = waited * position / max(1.0, q.join_pos.value or 1.0) if waited else None
        if model is not None and observed is not None:
            return credibility * model + (1 - credibility) * observed, "blend"
        if model is not None:
            return model, "model"
        return (observed, "observed") if observed is not None else (None, "unknown")

    def snapshot(self, queue: str, now: float | None = None) -> QueueSnapshot:
        now = self.clock() if now is None else now
        q = self.queues.get(queue) or QueueStats(queue)
        callers = len(q.callers) if q.members_known or q.callers else int(q.summary.get("callers", 0))
        ewt, method = self.estimate(queue, callers + 1, now)
        return QueueSnapshot(
            queue, *q.counts(), callers=callers,
            longest_wait=max((now - j for _, j in q.callers.values()), default=0.0),
            aht=q.aht.value, abandon_rate=q.abandon.value or 0.0, departures=q.departures,
            ewt=ewt, method=method,
        )


def _float(event: Event, key: str, default: float | None) -> float | None:
    try:
        return float(event[key])
    except (KeyError, TypeError, ValueError):
        return default


def _int(event: Event, key: str, default: float) -> int:
    return int(_float(event, key, default) or 0)


class AmiActions(Protocol):
    """The part of ivr.ami.AmiClient used here (it maps failures and refusals to AmiError)."""

    async def action(self, name: str, *, as_list: bool = False, **fields: str) -> list[dict[str, str]]: ...


async def refresh(ami: AmiActions, board: QueueBoard, queue: str | None = None) -> None:
    """Resynchronise from a QueueStatus dump; raises AmiError when AMI fails or refuses."""
    events = await ami.action("QueueStatus", as_list=True, **({"Queue": queue} if queue else {}))
    board.resync(events)

"""Queue state and EWT from recorded AMI event sequences (tests/fixtures/ami/*.txt, raw `Key: Value` blocks)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from ivr.errors import AmiError
from ivr.queueing.queuestate import ASTERISK_CREDIBILITY, HORIZON, PRIOR, QueueBoard, refresh

FIXTURES = Path(__file__).parent.parent / "fixtures" / "ami"
T0 = 1767607200.0


def read_ami(name: str) -> list[dict[str, str]]:
    """Raw AMI text → one dict per block (blocks end with an empty line, lines are `Key: Value`)."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in (FIXTURES / name).read_text().replace("\r\n", "\n").split("\n"):
        if not line.strip():
            if current:
                blocks.append(current)
            current = {}
            continue
        key, _, value = line.partition(":")
        current[key.strip()] = value.strip()
    return blocks + ([current] if current else [])


def ewma(xs: list[float], alpha: float = 0.2) -> float:
    value = xs[0]
    for x in xs[1:]:
        value += alpha * (x - value)
    return value


def feed(board: QueueBoard, name: str) -> None:
    for event in read_ami(name):
        board.apply(event)


def test_morning_counts_and_statistics() -> None:
    board = QueueBoard(clock=lambda: T0 + 900)
    feed(board, "queue_support_morning.txt")
    snap = board.snapshot("support")
    assert (snap.logged_in, snap.serving, snap.available, snap.callers) == (3, 3, 0, 4)
    assert snap.departures == 9  # 8 connected + 1 abandoned
    assert snap.longest_wait == pytest.approx(900 - 830)
    assert snap.aht == pytest.approx(ewma([180 + 15, 240 + 15, 300 + 15, 360 + 15, 300 + 15]))
    assert snap.abandon_rate == pytest.approx(ewma([0, 0, 0, 1, 0, 0, 0, 0, 0]))
    assert sorted(p for p, _ in board.queues["support"].callers.values()) == [1, 2, 3, 4]


def test_morning_ewt_is_the_documented_blend() -> None:
    board = QueueBoard(clock=lambda: T0 + 900)
    feed(board, "queue_support_morning.txt")
    aht = ewma([195, 255, 315, 375, 315])
    p = ewma([0, 0, 0, 1, 0, 0, 0, 0, 0])
    ring = ewma([4, 4, 4, 4, 3, 4, 2, 3])
    model = (1 + 4 * (1 - p)) * aht / 3 + ring  # position 5, 3 agents serving, none free
    weight = 5 * math.exp(-(900 - 703) / HORIZON)
    c = weight / (weight + PRIOR)
    observed = ewma([5, 6, 4, 200, 3, 4, 2, 3]) * 5 / ewma([1, 1, 1, 1, 2, 1, 1, 1, 1, 1, 2, 3, 4])
    snap = board.snapshot("support")
    assert snap.method == "blend"
    assert snap.ewt == pytest.approx(c * model + (1 - c) * observed)
    waits = [board.estimate("support", k)[0] or 0.0 for k in range(1, 8)]
    assert waits == sorted(waits) and waits[0] > 0  # further back waits longer


def test_model_beats_a_plain_average_when_staffing_changes() -> None:
    board = QueueBoard(clock=lambda: T0 + 900)
    feed(board, "queue_support_morning.txt")
    before = board.snapshot("support").ewt or 0.0
    for n in (7, 8, 9):  # three more agents log in, free: the next caller is answered at once
        board.apply({"Event": "QueueMemberAdded", "Queue": "support", "Interface": f"PJSIP/agent{n}",
                     "Status": "1", "Paused": "0", "InCall": "0"})
    assert board.estimate("support", 1)[1] == "agent_free"
    after = board.snapshot("support")
    assert after.available == 3 and after.ewt is not None and after.ewt < before / 2
    # with more history the capacity model dominates (credibility -> 1)
    for i in range(30):
        board.apply({"Event": "AgentComplete", "Queue": "support", "Interface": "PJSIP/agent1",
                     "TalkTime": "285", "Timestamp": str(T0 + 890 + i * 0.1)})
    est, method = board.estimate("support", 10)
    assert est is not None
    q = board.queues["support"]
    model = (1 + (10 - 1 - 3) * (1 - (q.abandon.value or 0))) * (q.aht.value or 0) / 6 + (q.ring.value or 0)
    assert method == "blend" and q.aht.weight(T0 + 900) / (q.aht.weight(T0 + 900) + PRIOR) > 0.9
    assert model * 0.85 < est < model  # pulled a little towards the (short) observed waits


def test_abandonment_shortens_the_wait() -> None:
    calm, stormy = (QueueBoard(clock=lambda: T0 + 900) for _ in range(2))
    feed(calm, "queue_support_morning.txt")
    feed(stormy, "queue_support_morning.txt")
    for _ in range(5):
        stormy.apply({"Event": "QueueCallerAbandon", "Queue": "support", "HoldTime": "40"})
    assert stormy.snapshot("support").abandon_rate > 0.5
    assert (stormy.estimate("support", 4)[0] or 0) < (calm.estimate("support", 4)[0] or 0)


def test_credibility_decays_towards_observed_waits() -> None:
    now = [T0 + 900]
    board = QueueBoard(clock=lambda: now[0])
    feed(board, "queue_support_morning.txt")
    fresh = board.snapshot("support").ewt or 0.0
    now[0] += 24 * 3600  # a day later with no new calls: yesterday's AHT is no longer trusted
    stale = board.snapshot("support").ewt or 0.0
    observed = ewma([5, 6, 4, 200, 3, 4, 2, 3]) * 5 / ewma([1, 1, 1, 1, 2, 1, 1, 1, 1, 1, 2, 3, 4])
    assert abs(stale - observed) < 1.0 < abs(fresh - observed)


def test_no_agents_then_one_back() -> None:
    board = QueueBoard(clock=lambda: T0 + 100)
    feed(board, "queue_sales_no_agents.txt")
    snap = board.snapshot("sales")
    assert (snap.logged_in, snap.serving, snap.callers, snap.ewt, snap.method) == (1, 0, 2, None, "no_agents")
    assert set(board.queues["sales"].members) == {"PJSIP/agent4", "PJSIP/agent6"}
    feed(board, "queue_sales_agent_back.txt")
    snap = board.snapshot("sales")
    assert (snap.serving, snap.available) == (1, 1)
    assert board.estimate("sales", 1) == (0, "agent_free")
    assert (snap.ewt, snap.method) == (None, "unknown")  # nobody was ever served: no data at all


def test_summary_only_uses_asterisk_averages() -> None:
    board = QueueBoard(clock=lambda: T0)
    feed(board, "queue_billing_summary.txt")
    snap = board.snapshot("billing")
    assert (snap.logged_in, snap.available, snap.callers) == (2, 0, 3)
    model = 4 * 210 / 2
    observed = 95 * 4
    c = ASTERISK_CREDIBILITY
    assert snap.method == "blend" and snap.ewt == pytest.approx(c * model + (1 - c) * observed)
    assert board.snapshot("nowhere").method == "unknown"


def test_ignores_junk() -> None:
    board = QueueBoard(clock=lambda: T0)
    for event in ({}, {"Event": "QueueCallerJoin"}, {"Event": "Hangup", "Queue": "x"},
                  {"Event": "AgentComplete", "Queue": "x", "TalkTime": "lots"},
                  {"Event": "QueueCallerJoin", "Queue": "x", "Uniqueid": "1.1", "Position": "?"}):
        board.apply(event)
    assert board.snapshot("x").callers == 1 and board.snapshot("x").aht == 0.0


class FakeAmi:
    """Like ivr.ami.AmiClient.action: a list of messages, AmiError on refusal or a broken connection."""

    def __init__(self, reply: Any) -> None:
        self.reply = reply
        self.sent: list[dict[str, str]] = []

    async def action(self, name: str, *, as_list: bool = False, **fields: str) -> list[dict[str, str]]:
        self.sent.append({"Action": name, **fields})
        if isinstance(self.reply, Exception):
            raise AmiError(str(self.reply))
        if self.reply and self.reply[0].get("Response") == "Error":
            raise AmiError(self.reply[0].get("Message", ""))
        return list(self.reply)


async def test_refresh_resyncs_members_and_callers() -> None:
    board = QueueBoard(clock=lambda: T0 + 900)
    feed(board, "queue_support_morning.txt")
    board.apply({"Event": "QueueMemberAdded", "Queue": "support", "Interface": "PJSIP/ghost", "Status": "1"})
    dump = [e for e in read_ami("queue_support_morning.txt")[:6]]  # Response, QueueParams, 3 members, done
    dump.insert(5, {"Event": "QueueEntry", "Queue": "support", "Position": "1", "Uniqueid": "9.9", "Wait": "42"})
    ami = FakeAmi(dump)
    await refresh(ami, board, "support")
    assert ami.sent == [{"Action": "QueueStatus", "Queue": "support"}]
    snap = board.snapshot("support")
    assert (snap.logged_in, snap.available, snap.callers, snap.longest_wait) == (3, 3, 1, 42)
    with pytest.raises(AmiError):
        await refresh(FakeAmi([{"Response": "Error", "Message": "Permission denied"}]), board)
    with pytest.raises(AmiError):
        await refresh(FakeAmi(ConnectionResetError("gone")), board)

"""Helpers to run a flow in-process against a scripted FakeChannel."""

from __future__ import annotations

import textwrap
from pathlib import Path

from ivr.call import Call
from ivr.config import Settings
from ivr.flows.engine import Engine
from ivr.flows.loader import load_flow
from ivr.flows.model import FlowSet
from ivr.journeys import JourneyLog
from ivr.nodes import NODE_TYPES
from ivr.services import Services
from ivr.testing import FakeChannel, FakePrompts


def flowset(*docs: str) -> FlowSet:
    flows = {}
    for i, doc in enumerate(docs):
        flow, found = load_flow(Path(f"flow{i}.yaml"), textwrap.dedent(doc), node_types=NODE_TYPES)
        assert flow is not None, [str(d) for d in found]
        flows[flow.name] = flow
    return FlowSet(flows, "test")


def services(**settings: object) -> Services:
    return Services(Settings(**settings), FakePrompts(), JourneyLog(None))  # type: ignore[arg-type]


async def run(docs: str | list[str], script: str = "", flow: str = "", svc: Services | None = None,
              channel: FakeChannel | None = None, **env: str) -> tuple[Call, FakeChannel]:
    fs = flowset(*([docs] if isinstance(docs, str) else docs))
    channel = channel or FakeChannel.scripted(script, **env)
    engine = Engine(svc or services(), lambda: fs)
    call = await engine.handle(channel, flow or next(iter(fs.flows)))
    return call, channel


def visited(call: Call) -> list[str]:
    return [e.node for e in call.journey if e.kind == "enter"]


def prompts(channel: FakeChannel) -> list[str]:
    return [p.rsplit("/", 1)[-1] for p in channel.played]

"""Runs a call through its flow: node → returned edge → next node, with a safety net everywhere.

Failure policy: a node that raises follows its `failed`/`timeout` edge if wired, else its
`fallback`, else the flow's `fallback`, else the built-in handoff (apology + the default human
queue). A fallback that fails again goes straight to the handoff, and a handoff that fails hangs up.
A call therefore never ends in silence, and a crash in one call never touches another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping

from ivr.call import Call
from ivr.channel import Channel
from ivr.errors import AgiError, AgiSessionEnded, BackendError, BackendTimeout, CallEnded, StoreUnavailable
from ivr.flows.context import NodeContext
from ivr.flows.model import Flow, FlowSet
from ivr.flows.node import END, STOP
from ivr.flows.prompt_ref import PromptRef
from ivr.services import Services

log = logging.getLogger("ivr.engine")

MAX_STEPS = 200
MAX_DEPTH = 8
HANDOFF_PROMPT = PromptRef.parse("apology")


class _Handoff(Exception):
    """Internal: give up on the flow and hand the caller to a human."""


class Engine:
    """Stateless between calls; each call reads the FlowSet it started with."""

    def __init__(self, services: Services, flows: Callable[[], FlowSet]) -> None:
        self.services = services
        self._flows = flows

    async def handle(self, channel: Channel, flow_name: str) -> Call:
        """Run one whole call (the AGI handler's body)."""
        settings = self.services.settings
        env = channel.env
        language = env.get("language", "") or settings.default_language
        call = Call(
            uniqueid=channel.uniqueid, flow=flow_name, caller_id=_caller_id(env.get("callerid", "")),
            dialed=env.get("dnid", "") or env.get("extension", ""),
            language=language if language in settings.languages else settings.default_language,
            greet=settings.identify_greet,
        )
        flows = self._flows()
        self.services.journeys.started(call)
        try:
            flow = flows.get(flow_name)
            await channel.answer()
            try:
                if flow is None:
                    log.warning("[%s] unknown AGI script %r: handing the caller to a human",
                                call.uniqueid, flow_name)
                    call.record("-", "error", error="unknown-flow")
                    raise _Handoff
                await self.run(flows, flow, flow.start, channel, call, depth=0)
            except _Handoff:
                await self.handoff(channel, call)
            await self._finish(channel, call)
        except AgiSessionEnded:  # the session logged why; the dialplan's fallback takes the caller
            call.outcome = call.outcome or "agi-session-ended"
            call.record("-", "hangup", by="service")
        except CallEnded:
            call.outcome = call.outcome or "caller-hangup"
            call.record("-", "hangup", by="caller")
        except asyncio.CancelledError:
            # the service is stopping: tell the dialplan to take over (its fallback queues the caller)
            call.outcome = call.outcome or "service-stopped"
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(channel.set_var("IVR_STATUS", "handoff"), 1.0)
            raise
        finally:
            self.services.journeys.finished(call)
        return call

    async def run(self, flows: FlowSet, flow: Flow, start: str, channel: Channel, call: Call,
                  depth: int) -> str:
        """Run `flow` from `start` until a node ends it; returns END (flow over) or STOP (call over)."""
        if depth > MAX_DEPTH:
            log.error("[%s] sub-flows nested deeper than %d", call.uniqueid, MAX_DEPTH)
            raise _Handoff
        node_id = start
        fallbacks_taken: set[str] = set()
        steps = 0

        async def subflow(name: str) -> str:
            target = flows.get(name)
            if target is None:
                raise _Handoff
            return await self.run(flows, target, target.start, channel, call, depth + 1)

        while True:
            steps += 1
            if steps > MAX_STEPS:
                log.error("[%s] flow %s ran %d steps without ending", call.uniqueid, flow.name, MAX_STEPS)
                raise _Handoff
            fnode = flow.nodes[node_id]
            call.record(node_id, "enter", type=fnode.type)
            ctx = NodeContext(call, channel, self.services, flows, flow, node_id, subflow)
            try:
                edge = await fnode.node.run(ctx)
            except (CallEnded, _Handoff, asyncio.CancelledError):
                raise
            except Exception as exc:  # any failure of one node: log once, follow the failure policy
                edge = _failure_edge(exc, fnode.edges, fnode.node.error_edge)
                call.record(node_id, "error", error=type(exc).__name__, edge=edge)
                if isinstance(exc, BackendError | StoreUnavailable | AgiError):
                    log.warning("[%s] node %s: %s", call.uniqueid, node_id, exc)
                else:
                    log.exception("[%s] node %s (%s) failed", call.uniqueid, node_id, fnode.type)
            if edge in (END, STOP):
                return edge
            target = fnode.edges.get(edge)
            if target is None:
                target = fnode.fallback or flow.fallback
                if target is None or target in fallbacks_taken:
                    raise _Handoff
                fallbacks_taken.add(target)
                call.record(node_id, "edge", edge=edge, to=target, fallback=True)
            else:
                call.record(node_id, "edge", edge=edge, to=target)
            node_id = target

    async def handoff(self, channel: Channel, call: Call) -> None:
        """Built-in safety net: apologise, then queue the caller for a human."""
        queue = self.services.settings.default_queue
        call.record("-", "handoff", queue=queue)
        try:
            ctx = NodeContext(call, channel, self.services, FlowSet(), _NO_FLOW, "handoff", _no_subflow)
            await ctx.play(HANDOFF_PROMPT)
            call.outcome = f"queue:{queue}"
            await channel.set_var("__IVR_HANDOFF", "1")
            await channel.exec_app("Queue", queue)
        except CallEnded:
            raise
        except Exception:
            log.exception("[%s] handoff to %s failed; hanging up", call.uniqueid, queue)
            call.outcome = "error"

    async def _finish(self, channel: Channel, call: Call) -> None:
        """The flow ended on purpose: tell the dialplan not to fall back, then hang up."""
        call.outcome = call.outcome or "hangup"
        call.record("-", "end", outcome=call.outcome)
        await channel.set_var("IVR_STATUS", "done")
        await channel.hangup()


def _failure_edge(exc: Exception, wired: Mapping[str, str], error_edge: str) -> str:
    if isinstance(exc, BackendTimeout) and "timeout" in wired:
        return "timeout"
    if isinstance(exc, BackendError | StoreUnavailable) and error_edge in wired:
        return error_edge
    return "fallback"


def _caller_id(raw: str) -> str:
    """agi_callerid is `unknown` when absent; keep digits and a leading +."""
    raw = raw.strip()
    if raw.lower() in ("", "unknown", "anonymous"):
        return ""
    return "".join(c for c in raw if c.isdigit() or (c == "+" and raw.startswith("+")))


async def _no_subflow(name: str) -> str:
    raise _Handoff


_NO_FLOW = Flow("-", "-", "-", {})

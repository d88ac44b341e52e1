"""Loads flows and prompts together, swaps them atomically, and keeps the old set when a file is bad.

Reloads come from file changes (watchfiles) and SIGHUP. A call reads the FlowSet once when it
starts, so a reload never changes a live call's flow.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass, field

from ivr.config import Settings
from ivr.diagnostics import Diagnostic, errors
from ivr.flows.loader import load_flows
from ivr.flows.model import FlowSet
from ivr.flows.node import NodeTypes
from ivr.media.prompts import PromptCatalog, PromptStore
from ivr.ops.schedule import Schedule, load_schedules
from ivr.queueing.routing import RoutingRules, load_routing

log = logging.getLogger("ivr.reload")


@dataclass
class LoadResult:
    """What one (re)load found; `applied` says whether it replaced the serving set."""

    applied: bool
    findings: list[Diagnostic] = field(default_factory=list)
    version: str = ""
    at: float = field(default_factory=time.time)


def check_all(settings: Settings, node_types: NodeTypes) -> tuple[FlowSet, PromptCatalog, list[Diagnostic]]:
    """Validate prompts, flows, schedules and queue rules as one set (blocking: reads files, probes audio)."""
    catalog, found = PromptCatalog.load(settings.prompts_dir, settings.languages, settings.default_language)
    flows, more = load_flows(settings.flows_dir, node_types=node_types, prompts=catalog, languages=settings.languages)
    found += more
    schedules: dict[str, Schedule] = {}
    routing = RoutingRules()
    if (path := settings.flows_dir / "schedules.yaml").exists():
        schedules, more = load_schedules(path)
        found += more
    if (path := settings.flows_dir / "queues.yaml").exists():
        routing, more = load_routing(path)
        found += more
    flows = dataclasses.replace(flows, schedules=schedules, routing=routing)
    for flow in flows.flows.values():
        for n in flow.nodes.values():
            found += [Diagnostic(flow.file, n.line, f"node {n.id!r}: {msg}") for msg in n.node.check_refs(flows)]
    return flows, catalog, sorted(set(found))


class FlowRegistry:
    """The serving FlowSet; `reload()` validates everything, then swaps, or keeps the old one."""

    def __init__(self, settings: Settings, prompts: PromptStore | None, *, node_types: NodeTypes) -> None:
        self.settings = settings
        self.prompts = prompts
        self.node_types = node_types
        self.current = FlowSet()
        self.last: LoadResult | None = None
        self.reloads = 0
        self._lock = asyncio.Lock()

    def get(self) -> FlowSet:
        return self.current

    async def reload(self, reason: str = "request") -> LoadResult:
        async with self._lock:
            flows, catalog, found = await asyncio.to_thread(check_all, self.settings, self.node_types)
            for d in found:
                (log.error if d.severity == "error" else log.warning)("%s", d)
            if errors(found):
                result = LoadResult(False, found, self.current.version)
                log.error("reload (%s) rejected: %d error(s); still serving flows version %s",
                          reason, len(errors(found)), self.current.version or "none")
            else:
                if self.prompts is not None:
                    self.prompts.swap(catalog)
                self.current = flows
                self.reloads += 1
                result = LoadResult(True, found, flows.version)
                log.info("flows loaded (%s): %s, version %s", reason, ", ".join(sorted(flows.flows)), flows.version)
            self.last = result
            return result

    async def watch(self, debounce_ms: int = 300) -> None:
        """Reload whenever a file under the flows or prompts directory changes (runs until cancelled)."""
        from watchfiles import awatch

        paths = [p for p in (self.settings.flows_dir, self.settings.prompts_dir) if p.exists()]
        if not paths:
            return
        async for changes in awatch(*paths, debounce=debounce_ms, step=50):
            names = sorted({c[1].rsplit("/", 1)[-1] for c in changes})
            await self.reload("changed: " + ", ".join(names[:5]))

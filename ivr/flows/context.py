"""NodeContext: what a running node may touch — the call, its channel, services, prompts."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from ivr.call import Call
from ivr.channel import Channel
from ivr.flows.model import Flow, FlowSet
from ivr.flows.prompt_ref import PromptRef, render
from ivr.services import Services

log = logging.getLogger("ivr.call")

SubflowRunner = Callable[[str], Awaitable[str]]


@dataclass
class NodeContext:
    """Built by the engine for each node it runs."""

    call: Call
    channel: Channel
    services: Services
    flows: FlowSet
    flow: Flow
    node_id: str
    run_subflow: SubflowRunner

    def __repr__(self) -> str:  # never the call's vars, typeahead or the services' settings
        return f"NodeContext(call={self.call.uniqueid!r}, flow={self.flow.name!r}, node={self.node_id!r})"

    @property
    def language(self) -> str:
        return self.call.language

    def render(self, template: str, extra: Mapping[str, str] | None = None) -> str:
        variables = self.call.variables()
        if extra:
            variables.update(extra)
        return render(template, variables)

    async def resolve(
        self, prompt: PromptRef, extra: Mapping[str, str] | None = None,
    ) -> list[tuple[str, str]]:
        """Prompt → [(asterisk path, description)] in the call's language."""
        variables = self.call.variables()
        if extra:
            variables.update(extra)
        out: list[tuple[str, str]] = []
        store = self.services.prompts
        default = self.services.settings.default_language
        for item in prompt.items:
            if item.name:
                r = await store.resolve(item.name, self.language, variables)
            else:
                text = item.text_for(self.language, default) or ""
                r = await store.resolve_text(text, self.language, variables)
            out.append((r.path, r.description))
        return out

    async def play(self, prompt: PromptRef | None, escape: str = "",
                   extra: Mapping[str, str] | None = None) -> str:
        """Play a prompt; a key typed ahead (or pressed now, if in `escape`) interrupts it."""
        if prompt is None:
            return ""
        if escape and self.call.typeahead:
            key, self.call.typeahead = self.call.typeahead[0], self.call.typeahead[1:]
            if key in escape:
                return key
        pieces = await self.resolve(prompt, extra)
        # the journey names catalogue prompts (stable); inline text is shown as spoken
        names = [i.name or d for i, (_, d) in zip(prompt.items, pieces, strict=True)]
        self.call.record(self.node_id, "prompt", prompts=names)
        return await self.channel.play([p for p, _ in pieces], escape)

    async def say_core(self, kind: str, value: str, escape: str = "") -> str:
        """Asterisk's own SAY (digits, number ...) in the channel's language."""
        return await self.channel.say(kind, value, escape)

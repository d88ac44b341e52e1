"""`menu`: a prompt with keypad options, barge-in, timeout and retries with re-prompt."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ivr.channel import DTMF_KEYS
from ivr.flows.prompt_ref import PromptRef
from ivr.nodes.base import Node, node_type

if TYPE_CHECKING:
    from ivr.flows.context import NodeContext

INVALID = PromptRef.parse("invalid")
NO_INPUT = PromptRef.parse("no-input")


@node_type("menu")
@dataclass(frozen=True)
class Menu(Node):
    """Options map a key to a node. After `retries` failed tries: edge `invalid` or `timeout`."""

    prompt: PromptRef
    options: Mapping[str, str] = field(default_factory=dict)
    retries: int = 3
    timeout: float = 5.0
    barge_in: bool = True
    invalid_prompt: PromptRef | None = INVALID
    timeout_prompt: PromptRef | None = NO_INPUT

    edges = ("invalid", "timeout")

    def targets(self) -> dict[str, str]:
        return dict(self.options)

    def problems(self) -> list[str]:
        found = [f"option {k!r} is not a single keypad key" for k in self.options
                 if len(k) != 1 or k not in DTMF_KEYS]
        if not self.options:
            found.append("a menu needs at least one option")
        if self.retries < 1:
            found.append("retries must be at least 1")
        if self.timeout <= 0:
            found.append("timeout must be positive")
        return found

    async def run(self, ctx: NodeContext) -> str:
        last = "timeout"
        for attempt in range(1, self.retries + 1):
            key = await ctx.play(self.prompt, DTMF_KEYS if self.barge_in else "")
            if not key:
                key = await ctx.channel.wait_digit(self.timeout)
            if not key:
                last = "timeout"
                ctx.call.record(ctx.node_id, "input", via="timeout", attempt=attempt)
                if attempt < self.retries:
                    await ctx.play(self.timeout_prompt)
                continue
            if key in self.options:
                ctx.call.record(ctx.node_id, "input", via="dtmf", key=key, attempt=attempt)
                ctx.call.path.append(f"{ctx.node_id}:{key}")
                return key
            last = "invalid"
            ctx.call.record(ctx.node_id, "input", via="dtmf", key=key, valid=False, attempt=attempt)
            if attempt < self.retries:
                await ctx.play(self.invalid_prompt)
        return last

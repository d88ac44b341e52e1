"""Flow logic nodes: `set`, `language`, `branch`, `goto`, `subflow`, `return`, `hangup`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ivr.flows.conditions import compile_condition, evaluate
from ivr.flows.node import END, STOP, Node, node_type
from ivr.flows.prompt_ref import PromptRef, template_fields

if TYPE_CHECKING:
    from ivr.flows.context import NodeContext

GOODBYE = PromptRef.parse("goodbye")


@node_type("set")
@dataclass(frozen=True)
class SetVars(Node):
    """Set call variables from templates: `vars: {reason: "billing", who: "{customer_name}"}`."""

    vars: Mapping[str, str] = field(default_factory=dict)

    def problems(self) -> list[str]:
        found = [f"variable name {k!r} must be a name" for k in self.vars if not k.isidentifier()]
        for v in self.vars.values():
            try:
                template_fields(v)
            except ValueError as exc:
                found.append(str(exc))
        return found

    async def run(self, ctx: NodeContext) -> str:
        for name, template in self.vars.items():
            ctx.call.vars[name] = ctx.render(template)
        return "next"


@node_type("language")
@dataclass(frozen=True)
class Language(Node):
    """Switch the call's language (prompts, TTS voice, Asterisk's own number/date sounds)."""

    language: str
    """a configured language (en, it ...): prompts, TTS voice and Asterisk's sounds follow"""

    async def run(self, ctx: NodeContext) -> str:
        if self.language not in ctx.services.settings.languages:
            raise ValueError(f"language {self.language!r} is not configured")
        ctx.call.language = self.language
        await ctx.channel.set_language(self.language)
        ctx.call.record(ctx.node_id, "language", language=self.language)
        return "next"


@dataclass(frozen=True)
class Case:
    """One `branch` case: `{if: 'tier == "vip"', goto: vip_queue}`."""

    if_: str
    """a condition over call variables: tier == "vip" and balance > 100"""
    goto: str
    """the node taken when it holds"""


@node_type("branch")
@dataclass(frozen=True)
class Branch(Node):
    """The first case whose condition holds wins; otherwise `else`."""

    cases: tuple[Case, ...]
    else_: str
    """the node taken when no case holds"""

    edges = ()

    def targets(self) -> dict[str, str]:
        out = {f"case{i}": c.goto for i, c in enumerate(self.cases, 1)}
        out["else"] = self.else_
        return out

    def problems(self) -> list[str]:
        found = []
        for c in self.cases:
            try:
                compile_condition(c.if_)
            except ValueError as exc:
                found.append(str(exc))
        return found

    async def run(self, ctx: NodeContext) -> str:
        variables = ctx.call.variables()
        for i, c in enumerate(self.cases, 1):
            if evaluate(compile_condition(c.if_), variables):
                return f"case{i}"
        return "else"


@node_type("goto")
@dataclass(frozen=True)
class Goto(Node):
    """Continue in another flow (no return)."""

    flow: str
    edges = ()
    terminal = True

    def flow_refs(self) -> list[str]:
        return [self.flow]

    async def run(self, ctx: NodeContext) -> str:
        await ctx.run_subflow(self.flow)
        return STOP


@node_type("subflow")
@dataclass(frozen=True)
class Subflow(Node):
    """Run another flow; when it reaches `return`, continue at `next`."""

    flow: str

    def flow_refs(self) -> list[str]:
        return [self.flow]

    async def run(self, ctx: NodeContext) -> str:
        return STOP if await ctx.run_subflow(self.flow) == STOP else "next"


@node_type("return")
@dataclass(frozen=True)
class Return(Node):
    """End this (sub-)flow; in a top-level flow the call ends."""

    edges = ()
    terminal = True

    async def run(self, ctx: NodeContext) -> str:
        return END


@node_type("hangup")
@dataclass(frozen=True)
class Hangup(Node):
    """Say goodbye (or `prompt`) and end the call."""

    prompt: PromptRef | None = GOODBYE
    edges = ()
    terminal = True

    async def run(self, ctx: NodeContext) -> str:
        await ctx.play(self.prompt)
        ctx.call.outcome = ctx.call.outcome or "hangup"
        return STOP

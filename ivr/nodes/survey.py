"""`survey`: after the agent hangs up (a queue node's `continue` edge, Queue option `c`), rate the call 1-5.

An optional spoken comment is recorded (RECORD FILE, ended by # or silence). One JSON line per answered
survey goes to `settings.survey_store`: time, call id, flow, queue, agent (MEMBERNAME / MEMBERINTERFACE,
which app_queue sets on the caller's channel after the bridge), score, comment recording.
Edges: `next` (answered or not); `timeout` (optional: no score given).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ivr.flows.node import Node, node_type
from ivr.flows.prompt_ref import PromptRef
from ivr.validation import AtLeastOne, Positive

if TYPE_CHECKING:
    from ivr.flows.context import NodeContext

SCORES = "12345"


def _p(name: str) -> PromptRef:
    return PromptRef.parse(name)


@node_type("survey")
@dataclass(frozen=True)
class Survey(Node):
    prompt: PromptRef = _p("survey-intro")
    thanks: PromptRef | None = _p("survey-thanks")
    comment: bool = False  # offer a spoken comment after the score
    comment_prompt: PromptRef = _p("survey-comment")
    comment_seconds: AtLeastOne = 30
    timeout: Positive = 5.0
    retries: AtLeastOne = 2

    edges = ("next",)
    optional_edges = ("timeout",)

    def prompts(self) -> list[PromptRef]:
        found = super().prompts()
        return found if self.comment else [p for p in found if p is not self.comment_prompt]

    async def run(self, ctx: NodeContext) -> str:
        score = ""
        for _ in range(self.retries):
            key = await ctx.play(self.prompt, SCORES) or await ctx.channel.wait_digit(self.timeout)
            if key and key in SCORES:
                score = key
                break
            if key:
                await ctx.play(_p("invalid"))
        ctx.call.record(ctx.node_id, "survey", score=score or None)
        if not score:
            wired = ctx.flow.nodes[ctx.node_id].edges if ctx.node_id in ctx.flow.nodes else {}
            return "timeout" if "timeout" in wired else "next"
        recording = ""
        if self.comment:
            await ctx.play(self.comment_prompt)
            base = ctx.services.settings.asterisk_prompts_dir().rstrip("/")
            rec = await ctx.channel.record(f"{base}/survey-{_safe(ctx.channel.uniqueid)}",
                                           max_seconds=self.comment_seconds, silence_seconds=3.0)
            recording = rec.path if rec.ended_by != "hangup" else ""
        entry = {
            "time": ctx.services.clock().isoformat(),
            "call_id": ctx.channel.uniqueid,
            "flow": ctx.call.flow,
            "queue": ctx.call.vars.get("queue") or await ctx.channel.get_var("QUEUENAME") or "",
            "agent": await ctx.channel.get_var("MEMBERNAME") or "",
            "agent_interface": await ctx.channel.get_var("MEMBERINTERFACE") or "",
            "score": int(score),
            "comment": recording or None,
        }
        await asyncio.to_thread(_append, ctx.services.settings.survey_store, entry)
        ctx.call.outcome = ctx.call.outcome or "survey"
        await ctx.play(self.thanks)
        return "next"


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-." else "_" for c in name)


def _append(path: Path, entry: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(entry, ensure_ascii=False) + "\n")

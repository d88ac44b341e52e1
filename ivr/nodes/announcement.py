"""`announcement`: play the emergency announcement in force (if any), then go on.

The announcement is read from memory (`EmergencySwitch.active()`, kept within a second of Redis by
pub/sub), so a call costs no Redis round trip. What is played (see ivr.ops.emergency_admin):
a catalogue prompt in the caller's language; a recording at an absolute path; or text rendered by TTS
in the default language. When a prompt cannot be resolved, its `text` is spoken instead; a name that
is not in the catalogue is played as one of Asterisk's own sounds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ivr.errors import CallEnded, IvrError
from ivr.flows.node import Node, node_type
from ivr.media.prompts import PromptNotFound
from ivr.ops.emergency_admin import TEXT_ONLY

if TYPE_CHECKING:
    from ivr.flows.context import NodeContext
    from ivr.ops.emergency import Announcement

log = logging.getLogger("ivr.call")


def active_announcement(ctx: NodeContext) -> Announcement | None:
    switch = ctx.services.emergency
    return switch.active() if switch is not None else None


async def play_announcement(ctx: NodeContext, ann: Announcement) -> None:
    """Play it (no barge-in: it may be safety information) and record it in the journey."""
    ctx.call.record(ctx.node_id, "emergency", prompt=ann.prompt, set_by=ann.set_by)
    try:
        path, heard = await _resolve(ctx, ann)
    except CallEnded:
        raise
    except (IvrError, OSError) as exc:  # e.g. TTS failed: the call goes on without it (logged loudly)
        log.error("[%s] emergency announcement %r cannot be played: %s", ctx.call.uniqueid, ann.prompt, exc)
        ctx.call.record(ctx.node_id, "error", error=type(exc).__name__, what="emergency announcement")
        return
    ctx.call.record(ctx.node_id, "prompt", prompts=[heard])
    await ctx.channel.play([path])


async def _resolve(ctx: NodeContext, ann: Announcement) -> tuple[str, str]:
    """(path Asterisk plays, what the journey calls it)."""
    if ann.prompt == TEXT_ONLY and ann.text:
        return await _speak(ctx, ann.text)
    if ann.prompt.startswith("/"):
        return ann.prompt, ann.prompt
    try:
        r = await ctx.services.prompts.resolve(ann.prompt, ctx.language, ctx.call.variables())
        return str(r.path), ann.prompt
    except PromptNotFound:
        if ann.text:
            log.warning("[%s] emergency prompt %r not in the catalogue: speaking its text",
                        ctx.call.uniqueid, ann.prompt)
            return await _speak(ctx, ann.text)
        return ann.prompt, ann.prompt  # one of Asterisk's own sounds (e.g. custom/storm)


async def _speak(ctx: NodeContext, text: str) -> tuple[str, str]:
    literal = text.replace("{", "{{").replace("}", "}}")  # an admin's text is not a template
    r = await ctx.services.prompts.resolve_text(literal, ctx.services.settings.default_language, {})
    return str(r.path), text


@node_type("announcement")
@dataclass(frozen=True)
class EmergencyAnnouncement(Node):
    """Edges: `next`; `none` (optional) when no announcement is on (else `next` either way)."""

    optional_edges = ("none",)

    async def run(self, ctx: NodeContext) -> str:
        ann = active_announcement(ctx)
        if ann is None:
            wired = ctx.flow.nodes[ctx.node_id].edges if ctx.node_id in ctx.flow.nodes else {}
            return "none" if "none" in wired else "next"
        await play_announcement(ctx, ann)
        return "next"

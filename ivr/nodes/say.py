"""`say` / `play`: speak a prompt (recording or TTS text with variables), then go on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ivr.channel import DTMF_KEYS
from ivr.flows.node import Node, node_type
from ivr.flows.prompt_ref import PromptRef

if TYPE_CHECKING:
    from ivr.flows.context import NodeContext


@node_type("say")
@dataclass(frozen=True)
class Say(Node):
    """Plays `prompt`. With `barge_in`, a key skips it and is kept for the next input node."""

    prompt: PromptRef
    """what is played"""
    barge_in: bool = False
    """a key skips the prompt and is kept for the next menu or gather"""

    async def run(self, ctx: NodeContext) -> str:
        key = await ctx.play(self.prompt, DTMF_KEYS if self.barge_in else "")
        if key:
            ctx.call.typeahead += key
        return "next"


@node_type("play")
@dataclass(frozen=True)
class Play(Say):
    """Same as `say` (for flows that read better with `play` for recordings)."""

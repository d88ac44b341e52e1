"""`menu`: a prompt with keypad options (and spoken phrases), barge-in, timeout and retries with re-prompt.

Speech: `say` maps option keys to phrases and synonyms (`say: {"1": [balance, "how much do I owe"]}`);
the caller may press the key or say one of them. Not understood: once more with examples
(`speech-examples`), then "please use your keypad" and keys only. `confirm`: auto (read back a match
that was not one of the phrases word for word), always, never. `min_confidence`: else the
`speech.min_confidence` setting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ivr.channel import DTMF_KEYS
from ivr.flows.node import Node, node_type
from ivr.flows.prompt_ref import PromptRef
from ivr.nodes.listen import Ear, Heard, confirm, ear_for, keypad_hint, listen, service_of
from ivr.speech.grammar import Grammar
from ivr.speech.intents import IntentMatch, IntentMatcher

if TYPE_CHECKING:
    from ivr.flows.context import NodeContext

INVALID = PromptRef.parse("invalid")
NO_INPUT = PromptRef.parse("no-input")
EXAMPLES = PromptRef.parse("speech-examples")
CONFIRM_MODES = ("auto", "always", "never")


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
    say: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    speech: bool | None = None  # None: on when `say` is given
    confirm: str = "auto"
    min_confidence: float | None = None

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
        found += [f"say: {k!r} is not one of the options" for k in self.say if k not in self.options]
        if self.say:
            try:
                self.grammar()
            except ValueError as exc:
                found.append(f"say: {exc}")
        if self.speech and not self.say:
            found.append("speech: true needs `say` (phrases per option)")
        if self.confirm not in CONFIRM_MODES:
            found.append(f"confirm must be one of {', '.join(CONFIRM_MODES)}")
        if self.min_confidence is not None and not 0 <= self.min_confidence <= 1:
            found.append("min_confidence must be between 0 and 1")
        return found

    @property
    def listens(self) -> bool:
        return bool(self.say) and self.speech is not False

    def grammar(self) -> Grammar:
        """What the caller may say here: the phrases of each option (ValueError when a phrase is unusable)."""
        return Grammar.from_phrases({f"k{_key_name(k)}": v for k, v in self.say.items()})

    def examples(self) -> str:
        firsts = [phrases[0] for phrases in self.say.values() if phrases]
        return firsts[0] if len(firsts) < 2 else ", ".join(firsts[:-1]) + ", or " + firsts[-1]

    async def run(self, ctx: NodeContext) -> str:
        last = "timeout"
        ear = await ear_for(ctx) if self.listens else None
        grammar = self.grammar() if ear is not None else None
        prompt, extra, misses, attempt = self.prompt, None, 0, 0
        while attempt < self.retries:
            heard = await listen(ctx, prompt, ear=ear, grammar=grammar, wait=self.timeout, extra=extra,
                                 escape=DTMF_KEYS if self.barge_in else "")
            prompt, extra = self.prompt, None
            if heard.via == "speech" and grammar is not None:
                chosen = await self._spoken(ctx, heard, grammar, ear)
                if chosen:
                    return chosen
                misses += 1
                if misses == 1:
                    prompt, extra = EXAMPLES, {"examples": self.examples()}
                else:
                    ear = grammar = None
                    await keypad_hint(ctx)
                continue
            attempt += 1
            key = heard.key
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

    async def _spoken(self, ctx: NodeContext, heard: Heard, grammar: Grammar, ear: Ear | None) -> str:
        """The option key the caller said (confirmed if need be), or "" (not understood, or "no")."""
        rec = heard.recognition
        assert rec is not None
        service = service_of(ctx)
        threshold = self.min_confidence if self.min_confidence is not None else (
            service.settings.min_confidence if service is not None else 0.5)
        found: IntentMatch | None = IntentMatcher(grammar, threshold=threshold).match(rec)
        key = self._key_of(found.intent) if found is not None else ""
        ctx.call.record(ctx.node_id, "input", via="speech", text=rec.text, confidence=round(rec.confidence, 3),
                        key=key or None, understood=bool(key))
        if found is None or not key:
            return ""
        ask = self.confirm == "always" or (self.confirm == "auto" and not found.exact)
        if ask and not await confirm(ctx, ear, text=found.phrase,
                                     wait=self.timeout):
            return ""
        ctx.call.path.append(f"{ctx.node_id}:{key}")
        return key

    def _key_of(self, intent: str) -> str:
        return next((k for k in self.say if f"k{_key_name(k)}" == intent), "")


def _key_name(key: str) -> str:
    """A keypad key as a grammar choice name ("*" and "#" are not letters)."""
    return {"*": "star", "#": "hash"}.get(key, key)

"""`record_announcement`: an ops person records the emergency announcement by phone, hears it back, then
publishes it (1), records it again (2) or discards it (3).

Only a verified caller (an `authenticate` node passed) whose account tier is in `roles` may use it; anyone
else takes `denied`. Each take is normalised to telephone audio in `announcements.dir` with a JSON side-car:
who recorded it (account and name), when, how long, and what became of it (`draft`, `replaced`, `discarded`,
`abandoned`, `published` with `expires_at`). Publishing turns the emergency switch on for every caller
(`EmergencySwitch.set`: the take as prompt, `set_by` and `recorded_by` = `ops:<account>`) for the duration
the ops person keys in (`durations`, key → hours), or `announcements.ttl` on # or silence.
Edges: `published`, `discarded` (required); `timeout` (no choice made), `denied`, `failed` (optional).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ivr.errors import CallEnded, StoreUnavailable
from ivr.flows.node import Node, node_type
from ivr.flows.prompt_ref import PromptRef
from ivr.media.recordings import RecordingArea, Take, new_id
from ivr.store import EMERGENCY_MAX_TTL

if TYPE_CHECKING:
    from ivr.config import Settings
    from ivr.flows.context import NodeContext
    from ivr.ops.emergency import EmergencySwitch

REVIEW_KEYS = "123"  # publish, record again, discard


def _p(name: str) -> PromptRef:
    return PromptRef.parse(name)


def announcements_area(settings: Settings) -> RecordingArea:
    return RecordingArea(settings.announcements_dir, settings.asterisk_announcements_dir())


@node_type("record_announcement")
@dataclass(frozen=True)
class RecordAnnouncement(Node):
    roles: tuple[str, ...] = ("ops",)  # account tiers allowed to publish
    prompt: PromptRef = _p("ops-record")
    review_prompt: PromptRef = _p("ops-review")
    menu_prompt: PromptRef = _p("ops-review-menu")
    duration_prompt: PromptRef = _p("ops-duration")
    durations: Mapping[str, float] = field(default_factory=lambda: {"1": 1.0, "2": 4.0, "3": 24.0})  # key → hours
    published_prompt: PromptRef = _p("ops-published")
    discarded_prompt: PromptRef = _p("ops-discarded")
    empty_prompt: PromptRef = _p("ops-empty")
    max_seconds: int = 120
    silence_seconds: int = 5
    takes: int = 3  # recordings per call
    retries: int = 3  # unanswered or wrong keys at a menu
    timeout: float = 6.0

    edges = ("published", "discarded")
    optional_edges = ("timeout", "denied", "failed")

    def problems(self) -> list[str]:
        found = []
        if not self.roles:
            found.append("roles: at least one account tier")
        for key, hours in self.durations.items():
            if len(key) != 1 or key not in "0123456789*":
                found.append(f"durations: key {key!r} must be one keypad key (0-9, *); # is the default")
            if not 0 < hours * 3600 <= EMERGENCY_MAX_TTL:
                found.append(f"durations: {hours:g} hours is out of range (at most {EMERGENCY_MAX_TTL / 3600:g})")
        if not 1 <= self.max_seconds <= 600 or self.silence_seconds < 0:
            found.append("max_seconds must be 1-600 and silence_seconds not negative")
        if min(self.takes, self.retries) < 1 or self.timeout <= 0:
            found.append("takes, retries and timeout must be positive")
        return found

    def prompts(self) -> list[PromptRef]:
        found = super().prompts()
        return found if self.durations else [p for p in found if p is not self.duration_prompt]

    async def run(self, ctx: NodeContext) -> str:
        call = ctx.call
        if call.auth_level != "verified" or call.tier not in self.roles:
            call.record(ctx.node_id, "announcement", result="denied", tier=call.tier, auth=call.auth_level)
            return "denied"
        switch = ctx.services.emergency
        if switch is None:
            raise StoreUnavailable("publishing an announcement needs Redis (the emergency switch)")
        area = announcements_area(ctx.services.settings)
        await asyncio.to_thread(area.prepare)
        for _ in range(self.takes):
            take = await self._record(ctx, area)
            if take is None:
                await ctx.play(self.empty_prompt)
                continue
            choice = await self._review(ctx, take)
            if choice == "1":
                return await self._publish(ctx, switch, area, take)
            state = {"2": "replaced", "3": "discarded"}.get(choice, "abandoned")
            await self._drop(ctx, area, take, state)
            if choice == "3":
                await ctx.play(self.discarded_prompt)
                return "discarded"
            if choice != "2":
                wired = ctx.flow.nodes[ctx.node_id].edges if ctx.node_id in ctx.flow.nodes else {}
                return "timeout" if "timeout" in wired else "discarded"
        await ctx.play(self.discarded_prompt)
        return "discarded"

    async def _record(self, ctx: NodeContext, area: RecordingArea) -> Take | None:
        """One take, normalised and described on disk; a hang-up keeps it as a draft and ends the call."""
        call = ctx.call
        now = ctx.services.clock()
        take_id = new_id(now)
        await ctx.play(self.prompt)
        hung_up = False
        try:
            rec = await ctx.channel.record(area.raw_target(take_id), escape="#", beep=True,
                                           max_seconds=float(self.max_seconds),
                                           silence_seconds=float(self.silence_seconds))
            hung_up = rec.ended_by == "hangup"
        except CallEnded:
            hung_up = True
        take = await asyncio.to_thread(area.finish, take_id, 0.5)
        if take is not None:
            meta: dict[str, Any] = {
                "id": take.id, "state": "draft", "recorded_by": f"ops:{call.customer_id}",
                "recorded_by_name": call.customer_name, "recorded_at": now.isoformat(), "recorded_ts": now.timestamp(),
                "seconds": take.seconds, "file": str(take.path), "asterisk": take.asterisk,
                "call_id": ctx.channel.uniqueid}
            await asyncio.to_thread(area.write_meta, take.id, meta)
        call.record(ctx.node_id, "announcement", result="recorded" if take else "empty",
                    id=take.id if take else None, seconds=take.seconds if take else 0)
        if hung_up:
            raise CallEnded("the ops caller hung up while recording (the take is kept as a draft)")
        return take

    async def _review(self, ctx: NodeContext, take: Take) -> str:
        """Play the take back, then ask 1/2/3; "" when no valid key came."""
        await ctx.play(self.review_prompt)
        ctx.call.record(ctx.node_id, "prompt", prompts=[f"recording:{take.id}"])
        key = await ctx.channel.play([take.asterisk], REVIEW_KEYS)
        for _ in range(self.retries):
            key = key or await ctx.play(self.menu_prompt, REVIEW_KEYS) or await ctx.channel.wait_digit(self.timeout)
            if key in REVIEW_KEYS and key:
                return key
            if key:
                await ctx.play(_p("invalid"))
            key = ""
        return ""

    async def _duration(self, ctx: NodeContext) -> float:
        """Seconds the announcement stays on: a key from `durations`, else (# or silence) the setting."""
        default = ctx.services.settings.announcements_ttl
        if not self.durations:
            return default
        keys = "".join(self.durations) + "#"
        for _ in range(self.retries):
            key = await ctx.play(self.duration_prompt, keys) or await ctx.channel.wait_digit(self.timeout)
            if key in self.durations:
                return self.durations[key] * 3600
            if key in ("", "#"):
                return default
            await ctx.play(_p("invalid"))
        return default

    async def _publish(self, ctx: NodeContext, switch: EmergencySwitch, area: RecordingArea, take: Take) -> str:
        call = ctx.call
        ttl = min(await self._duration(ctx), EMERGENCY_MAX_TTL)
        who = f"ops:{call.customer_id}"
        meta = await asyncio.to_thread(area.read_meta, take.id)
        ann = await switch.set(take.asterisk, set_by=who, ttl=ttl, recorded_by=who,
                               recorded_at=float(meta["recorded_ts"]))
        await asyncio.to_thread(area.write_meta, take.id, {
            **meta, "state": "published", "published_at": ann.set_at, "expires_at": ann.expires_at, "ttl": ttl})
        call.record(ctx.node_id, "announcement", result="published", id=take.id, ttl=ttl)
        call.outcome = "announcement-published"
        await ctx.play(self.published_prompt)
        return "published"

    async def _drop(self, ctx: NodeContext, area: RecordingArea, take: Take, state: str) -> None:
        """The audio goes; the side-car stays, as a record of who recorded what and when."""
        def drop() -> None:
            area.update_meta(take.id, state=state)
            area.delete_audio(take.id)
        await asyncio.to_thread(drop)
        ctx.call.record(ctx.node_id, "announcement", result=state, id=take.id)

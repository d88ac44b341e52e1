"""The typed bag of services handed to nodes and admin views (built once by ivr.app)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from ivr.background import Background
from ivr.config import Settings

if TYPE_CHECKING:
    from ivr.backends.http import Backends
    from ivr.identity.auth import Auth
    from ivr.journeys import JourneyLog
    from ivr.ops.emergency import EmergencySwitch
    from ivr.ops.voicemail import VoicemailStore
    from ivr.queueing.callbacks import CallbackStore
    from ivr.queueing.queuestate import QueueBoard
    from ivr.store import Store


@dataclass(frozen=True)
class Resolved:
    """A prompt ready to play: the path Asterisk plays (no extension) and what it says."""

    path: str
    description: str


class PromptResolver(Protocol):
    """What nodes need from the prompt store (ivr.media.prompts.PromptStore implements it)."""

    async def resolve(self, name: str, language: str, variables: Mapping[str, str]) -> Any: ...

    async def resolve_text(self, text: str, language: str, variables: Mapping[str, str]) -> Any: ...


@dataclass
class Services:
    """Long-lived services; optional ones are None when not configured."""

    settings: Settings
    prompts: PromptResolver
    journeys: JourneyLog
    ami: Any = None  # ivr.ami.AmiClient
    store: Store | None = None  # Redis
    backends: Backends | None = None
    auth: Auth | None = None
    emergency: EmergencySwitch | None = None  # needs Redis
    queues: QueueBoard | None = None  # live queue state from AMI events
    callbacks: CallbackStore | None = None  # needs Redis
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))  # injectable: tests call "on 25 Dec"
    features: dict[str, Any] = field(default_factory=dict)  # further optional services, by name
    voicemail: VoicemailStore | None = None  # messages on disk; its webhook notifier runs in ivr.app
    background: Background = field(default_factory=Background)  # work calls do not wait for; flushed at stop

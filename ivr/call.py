"""Per-call state as data: ids, caller, language, customer, variables, auth level and the journey."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ivr.identity.secret import Secret


@dataclass
class JourneyEvent:
    """One step of what a caller did. Never holds digits the caller keyed in secure input."""

    t: float
    node: str
    kind: str  # enter, prompt, input, edge, queue, hangup, error, end ...
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"t": round(self.t, 3), "node": self.node, "kind": self.kind, **self.detail}


@dataclass
class Call:
    """Everything the IVR knows about one call; nodes read and write it, the engine records it."""

    uniqueid: str
    flow: str
    caller_id: str = ""
    dialed: str = ""
    language: str = "en"
    tier: str = "standard"
    customer_id: str = ""
    customer_name: str = ""
    auth_level: str = "none"  # none, identified, verified
    secure_input: bool = False  # a secure gather is collecting keys now: nothing may show them
    greet: str = "first"  # the name prompts may say before verification: full, first, none (identify.greet)
    vars: dict[str, str] = field(default_factory=dict)
    secure: dict[str, Secret] = field(default_factory=dict)  # secret input (PIN, OTP): prints as ***
    # keys pressed during a prompt that skipped it, for the next input node (may be a PIN's first digits)
    keys_ahead: Secret = field(default_factory=lambda: Secret(""), repr=False)
    path: list[str] = field(default_factory=list)  # menu choices made, for the agent
    customer: Any = None  # the backend's Customer once identified (phone on file for OTP ...)
    journey: list[JourneyEvent] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    outcome: str = ""  # queue:<name>, hangup, caller-hangup, error ...

    @property
    def typeahead(self) -> str:
        """The keys typed ahead (a plain str: read it only to use it)."""
        return self.keys_ahead.reveal()

    @typeahead.setter
    def typeahead(self, keys: str) -> None:
        self.keys_ahead = Secret(keys)

    def record(self, node: str, kind: str, /, **detail: Any) -> JourneyEvent:
        """Append a journey event (callers must never pass secret digits here)."""
        event = JourneyEvent(time.time() - self.started, node, kind, dict(detail))
        self.journey.append(event)
        return event

    def variables(self) -> dict[str, str]:
        """The names a prompt text or a condition may use: call fields plus flow variables."""
        base = {
            "caller_id": self.caller_id, "dialed": self.dialed, "language": self.language,
            "tier": self.tier, "customer_id": self.customer_id, "customer_name": self.spoken_name(),
            "auth_level": self.auth_level,
        }
        base.update(self.vars)
        return base

    def spoken_name(self) -> str:
        """The customer's name as prompts may say it. Caller id is easy to spoof: until the caller is
        verified, `greet` decides (full name, first name only, or none), so a spoofer learns little."""
        if self.auth_level == "verified" or self.greet == "full":
            return self.customer_name
        if self.greet == "first":
            return self.customer_name.split(" ", 1)[0] if self.customer_name else ""
        return ""

    def summary(self) -> dict[str, Any]:
        return {
            "uniqueid": self.uniqueid, "flow": self.flow, "caller_id": self.caller_id,
            "language": self.language, "outcome": self.outcome,
            "duration": round(time.time() - self.started, 3),
            "journey": [e.as_dict() for e in self.journey],
        }

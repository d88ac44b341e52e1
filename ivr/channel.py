"""`Channel`: the only call API that nodes see. AGI implements it; tests use `ivr.testing.FakeChannel`.

Every method raises `CallEnded` once the caller is gone. Audio is named by the path Asterisk plays
(no extension), as the prompt store resolves it; digits are returned as strings ("" = none).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

DTMF_KEYS = "0123456789*#"


@dataclass(frozen=True)
class Recording:
    """What `Channel.record` captured."""

    path: str  # as Asterisk wrote it, without extension
    ended_by: str  # "dtmf", "silence", "timeout" or "hangup"
    digit: str = ""  # the key that ended it, if any


class Channel(Protocol):
    """A live call, seen from the flow engine."""

    @property
    def uniqueid(self) -> str:
        """Asterisk's id of the call; every log line of the call carries it."""
        ...

    @property
    def env(self) -> Mapping[str, str]:
        """The AGI environment (agi_callerid, agi_extension, agi_network_script ...)."""
        ...

    async def answer(self) -> None: ...

    async def play(self, files: Sequence[str], escape: str = "") -> str:
        """Play files in turn; return the escape key that interrupted ("" if all played)."""
        ...

    async def wait_digit(self, seconds: float) -> str:
        """Wait for one key; "" on timeout."""
        ...

    async def say(self, kind: str, value: str, escape: str = "") -> str:
        """Asterisk's own SAY: kind is digits, number, alpha, date (epoch s) or time (epoch s)."""
        ...

    async def record(
        self, path: str, *, fmt: str = "wav", escape: str = "#", max_seconds: float = 60.0,
        silence_seconds: float = 3.0, beep: bool = True,
    ) -> Recording: ...

    async def exec_app(self, app: str, *args: str) -> int:
        """Run a dialplan application (Queue, VoiceMail, AudioSocket ...); returns its result code.

        Never pass caller-controlled text in `args`: see README, "Security".
        """
        ...

    async def set_var(self, name: str, value: str) -> None: ...

    async def get_var(self, name: str) -> str | None: ...

    async def set_language(self, language: str) -> None:
        """Set CHANNEL(language) so Asterisk's SAY and core sounds follow the caller."""
        ...

    async def hangup(self) -> None: ...

"""The one exception tree of the service; foreign errors are mapped to it at each boundary.

    IvrError
     ├── ConfigError            a setting is wrong (names its key)
     ├── FlowError              a flow file is wrong (file, line, reason)
     ├── CallEnded              the caller hung up or Asterisk closed the AGI session
     │    └── AgiSessionEnded       the service ended the session (Asterisk broke the protocol, no reply)
     ├── AgiError               the AGI peer broke the protocol or a command failed
     ├── AmiError               the AMI connection failed or an action was refused
     ├── BackendError           a self-service backend failed
     │    ├── BackendUnavailable    refused, HTTP 5xx, malformed reply, circuit open
     │    └── BackendTimeout        no answer within its timeout
     ├── StoreUnavailable       Redis (shared state) is unreachable
     ├── SpeechError            the recogniser failed (not "no match": that is a result)
     └── AuthLocked             the account is locked out
"""

from __future__ import annotations


class IvrError(Exception):
    """Base of every error the service raises on purpose."""


class ConfigError(IvrError):
    """A configuration value is missing or wrong; the message names its key."""


class FlowError(IvrError):
    """A flow (or prompt catalogue) file is invalid at a known place."""

    def __init__(self, file: str, line: int, reason: str) -> None:
        super().__init__(f"{file}:{line}: {reason}")
        self.file = file
        self.line = line
        self.reason = reason


class CallEnded(IvrError):
    """The caller is gone: hang-up notified by Asterisk, or the AGI socket closed."""


class AgiSessionEnded(CallEnded):
    """The service ended the AGI session (logged once, where it happened): Asterisk broke the protocol or a
    reply never came. The socket is closed, so the dialplan after AGI() takes the call (its fallback queue)."""


class AgiError(IvrError):
    """The AGI peer sent something that is not AGI, or a command was refused (510/520)."""


class AmiError(IvrError):
    """AMI is unreachable or refused an action."""


class BackendError(IvrError):
    """A backend call failed; the engine follows the node's `failed` path."""


class BackendUnavailable(BackendError):
    """The backend refused, answered 5xx or garbage, or its circuit is open."""


class BackendTimeout(BackendError):
    """The backend did not answer in time."""


class StoreUnavailable(IvrError):
    """Redis could not be reached; paths that need shared state degrade to a human."""


class SpeechError(IvrError):
    """Speech recognition could not run (not a no-match, which is a normal result)."""


class AuthLocked(IvrError):
    """Too many failed attempts: the account is locked for a while."""

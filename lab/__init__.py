"""The lab: what starts real parts around the service for the tests, the demo and the benchmarks.

A private Asterisk (from the Debian sid chroot built by scripts/asterisk-chroot) per session, SIPp callers
and agents, speech WAVs (espeak-ng), a throwaway redis-server. Not part of the service: the `ivr` wheel
does not ship it; tests/, scripts/demo.py and bench/ import it from the repository.
"""

from __future__ import annotations

from lab.asterisk import AsteriskInstance, ChrootMissing, SoundsDir
from lab.audio import espeak_wav, wav_duration
from lab.sipp import (
    AgentPhone,
    CallResult,
    Dtmf,
    Hangup,
    Pause,
    Speak,
    Step,
    WaitHangup,
    register,
    run_call,
    run_uas,
)

__all__ = [
    "AgentPhone",
    "AsteriskInstance",
    "CallResult",
    "ChrootMissing",
    "Dtmf",
    "Hangup",
    "Pause",
    "SoundsDir",
    "Speak",
    "Step",
    "WaitHangup",
    "espeak_wav",
    "register",
    "run_call",
    "run_uas",
    "wav_duration",
]

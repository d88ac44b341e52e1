"""Test harness for the e2e layer: a private Asterisk per session, SIPp callers and agents, speech WAVs."""

from __future__ import annotations

from tests.e2e.harness.asterisk import AsteriskInstance, ChrootMissing, SoundsDir
from tests.e2e.harness.audio import espeak_wav, wav_duration
from tests.e2e.harness.sipp import (
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

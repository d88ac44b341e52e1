"""How long to wait for the reply to one AGI command: by what the command does to the call.

Asterisk answers an AGI command when the command is over, so the right wait is the command's own length:

| command                                              | waits up to                                     |
|------------------------------------------------------|-------------------------------------------------|
| ANSWER, SET/GET VARIABLE, CHANNEL STATUS, HANGUP ... | `short` (Asterisk answers at once)              |
| STREAM FILE, CONTROL STREAM FILE, SAY *              | `prompt` (as long as the audio; unknown here)    |
| GET DATA, GET OPTION                                 | `prompt` + its own digit timeout(s) + `short`   |
| WAIT FOR DIGIT t, RECORD FILE ... t                  | t + `short`; `long` for t = -1 (no limit)       |
| EXEC Queue, Dial, Record, VoiceMail, AudioSocket ... | `long` (they hold the caller: a queue, a talk)  |
| EXEC Playback, Background, Say* ...                  | `prompt`                                        |
| EXEC Set, NoOp, Log ...                              | `short`                                         |

Any EXEC not named is treated as one that holds the caller (`long`): a wait cut short ends the session.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

PROMPT_COMMANDS = frozenset({
    "STREAM FILE", "CONTROL STREAM FILE", "SAY DIGITS", "SAY NUMBER", "SAY ALPHA", "SAY DATE", "SAY TIME",
    "SAY DATETIME", "SAY PHONETIC",
})
QUICK_APPS = frozenset({"set", "noop", "log", "verbose", "setmusiconhold", "senddtmf", "answer", "progress",
                        "ringing", "congestion", "busy", "hangup", "dumpchan", "userevent", "mixmonitor",
                        "stopmixmonitor", "stopplaytones", "playtones"})
PROMPT_APPS = frozenset({"playback", "background", "controlplayback", "saydigits", "saynumber", "sayalpha",
                         "sayphonetic", "sayunixtime", "datetime", "morsecode"})


@dataclass(frozen=True)
class ReplyTimeouts:
    """The three default waits (s); `for_command` picks one, or computes one from the command's own timeout."""

    short: float = 10.0
    prompt: float = 600.0
    long: float = 14400.0

    def for_command(self, command: str, args: Sequence[str | int] = ()) -> float:
        if command in PROMPT_COMMANDS:
            return self.prompt
        if command == "WAIT FOR DIGIT":
            return self._own(args, 0)
        if command == "RECORD FILE":
            return self._own(args, 3)
        if command == "GET OPTION":  # <file> <escape digits> [timeout ms]
            return self.prompt + self._own(args, 2, missing=self.short)
        if command == "GET DATA":  # <file> [timeout ms] [max digits]: up to that long for each digit
            digits = _number(args, 2)
            return self.prompt + self._own(args, 1, missing=self.short) * max(1, int(digits or 1))
        if command == "EXEC":
            app = str(args[0]).lower() if args else ""
            if app in QUICK_APPS:
                return self.short
            if app in PROMPT_APPS:
                return self.prompt
            return self.long
        return self.short

    def _own(self, args: Sequence[str | int], index: int, *, missing: float | None = None) -> float:
        """A command's own timeout in ms at `args[index]`, plus `short`; `long` when it has none (-1)."""
        ms = _number(args, index)
        if ms is None:
            return self.long if missing is None else missing
        if ms < 0:
            return self.long
        return ms / 1000 + self.short


def _number(args: Sequence[str | int], index: int) -> float | None:
    if index >= len(args):
        return None
    try:
        return float(args[index])
    except ValueError:
        return None

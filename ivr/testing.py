"""Test doubles for users and us: a scripted caller, FakeChannel (in-process) and FakeAsterisk (AGI over TCP).

A caller script is a list of tokens, consumed at input points:
    "1".."9", "0", "*", "#"   a key: taken by a prompt that can be interrupted, or by a wait for a key
    "t"                       silence: the next wait for a key times out (prompts play in full)
    "h"                       the caller hangs up at the next command
    "say:<text>"              speech (for nodes that listen; see ivr.speech): `say:"my balance"` (quoted
                              when it has spaces); a prompt that listens gets it as typed speech
"""

from __future__ import annotations

import asyncio
import shlex
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ivr.agi.protocol import quote
from ivr.channel import Recording
from ivr.errors import CallEnded, SpeechError

SIM_LISTEN_VAR = "IVR_SIM_LISTEN"  # typed speech: ivr.nodes.listen asks for the caller's next answer


def tokens(script: str | Iterable[str]) -> list[str]:
    """`"2 1 t 0"` → ["2", "1", "t", "0"]; `"21"` → ["2", "1"] (keys may run together)."""
    if not isinstance(script, str):
        return list(script)
    out: list[str] = []
    try:
        words = shlex.split(script)  # say:"two words" stays one token
    except ValueError:
        words = script.split()
    for word in words:
        if word.startswith("say:") or word in ("t", "h"):
            out.append(word)
        else:
            out.extend(word)
    return out


@dataclass
class CallerScript:
    """What the scripted caller does next; shared by FakeChannel and FakeAsterisk."""

    todo: deque[str]
    hung_up: bool = False
    ask: Callable[[], str] | None = None  # interactive: asked for more when the script runs out

    @classmethod
    def of(cls, script: str | Iterable[str]) -> CallerScript:
        return cls(deque(tokens(script)))

    def check_hangup(self) -> None:
        if self.hung_up or (self.todo and self.todo[0] == "h"):
            self.hung_up = True
            raise CallEnded("scripted hang-up")

    def key_during_prompt(self, escape: str) -> str:
        """A key that interrupts a prompt (only keys the prompt allows)."""
        if escape and self.todo and len(self.todo[0]) == 1 and self.todo[0] in escape and self.todo[0] != "t":
            return self.todo.popleft()
        return ""

    def listen(self) -> str:
        """A prompt that listens: the next answer as `key:<k>`, `say:<text>` or "" (silence)."""
        if not self.todo and self.ask is not None:
            self.todo.extend(tokens(self.ask()))
        if not self.todo or self.todo[0] == "h":
            return ""
        tok = self.todo.popleft()
        if tok.startswith("say:"):
            return tok
        return "" if tok == "t" else f"key:{tok}"

    def key_on_wait(self) -> str:
        if not self.todo and self.ask is not None:
            self.todo.extend(tokens(self.ask()))
        if not self.todo:
            return ""
        tok = self.todo.popleft()
        return "" if tok == "t" or tok.startswith("say:") else tok


@dataclass
class FakeChannel:
    """An in-process Channel driven by a CallerScript; records everything the call did."""

    script: CallerScript
    uniqueid: str = "fake-0001"
    env: Mapping[str, str] = field(default_factory=dict)
    played: list[str] = field(default_factory=list)
    said: list[tuple[str, str]] = field(default_factory=list)
    apps: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    vars: dict[str, str] = field(default_factory=dict)
    answered: bool = False
    hung_up: bool = False
    queue_status: str = ""
    recorded: list[str] = field(default_factory=list)  # paths given to record()
    on_record: Callable[[str], None] | None = None  # e.g. writes the audio "Asterisk" would record there

    @classmethod
    def scripted(cls, script: str | Iterable[str] = "", **env: str) -> FakeChannel:
        return cls(CallerScript.of(script), env={"uniqueid": "fake-0001", **env})

    async def answer(self) -> None:
        self.script.check_hangup()
        self.answered = True

    async def play(self, files: Sequence[str], escape: str = "") -> str:
        for f in files:
            self.script.check_hangup()
            self.played.append(f)
            if key := self.script.key_during_prompt(escape):
                return key
        return ""

    async def wait_digit(self, seconds: float) -> str:
        self.script.check_hangup()
        return self.script.key_on_wait()

    async def say(self, kind: str, value: str, escape: str = "") -> str:
        self.script.check_hangup()
        self.said.append((kind, value))
        return self.script.key_during_prompt(escape)

    async def record(self, path: str, *, fmt: str = "wav", escape: str = "#", max_seconds: float = 60.0,
                     silence_seconds: float = 3.0, beep: bool = True) -> Recording:
        if self.script.hung_up:
            raise CallEnded("scripted hang-up")
        self.recorded.append(path)
        if self.on_record is not None:
            self.on_record(path)
        if self.script.todo and self.script.todo[0] == "h":  # hangs up while recording: the take is kept
            self.script.hung_up = True
            return Recording(path, "hangup")
        key = self.script.key_during_prompt(escape)
        return Recording(path, "dtmf" if key else "silence", key)

    async def exec_app(self, app: str, *args: str) -> int:
        self.script.check_hangup()
        self.apps.append((app, args))
        if app == "Queue" and self.queue_status:
            self.vars["QUEUESTATUS"] = self.queue_status
        return 0

    async def set_var(self, name: str, value: str) -> None:
        self.script.check_hangup()
        self.vars[name] = value

    async def get_var(self, name: str) -> str | None:
        self.script.check_hangup()
        if name == SIM_LISTEN_VAR:
            return self.script.listen() or None
        return self.vars.get(name)

    async def set_language(self, language: str) -> None:
        await self.set_var("CHANNEL(language)", language)

    async def hangup(self) -> None:
        self.hung_up = True


@dataclass
class Transcript:
    """What FakeAsterisk saw: every command, and a readable account of the call."""

    commands: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    played: list[str] = field(default_factory=list)
    queue: str = ""
    hung_up_by: str = ""


class FakeAsterisk:
    """Plays Asterisk's part of FastAGI over TCP against a real AGI server (simulator, integration tests)."""

    def __init__(self, script: str | Iterable[str], *, describe: Callable[[str], str | None] | None = None,
                 env: Mapping[str, str] | None = None, echo: Callable[[str], None] | None = None,
                 secure: Callable[[], bool] | None = None) -> None:
        self.script = CallerScript.of(script)
        self.secure = secure or (lambda: False)  # True while the service collects secure input: keys print as •
        self.describe = describe or (lambda p: None)
        self.env = {"network": "yes", "uniqueid": "sim-0001", "channel": "PJSIP/sim-00000001",
                    "language": "en", "callerid": "unknown", "extension": "100", "context": "ivr-inbound",
                    **(env or {})}
        self.echo = echo
        self.transcript = Transcript()
        self.queue_status = ""  # "" = an agent answered; or TIMEOUT, JOINEMPTY ... (QUEUESTATUS)

    def _say(self, line: str) -> None:
        self.transcript.lines.append(line)
        if self.echo:
            self.echo(line)

    async def call(self, host: str, port: int, script_name: str, limit: float = 60.0) -> Transcript:
        reader, writer = await asyncio.open_connection(host, port)
        env = {**self.env, "network_script": script_name, "request": f"agi://{host}:{port}/{script_name}"}
        writer.write("".join(f"agi_{k}: {v}\n" for k, v in env.items()).encode() + b"\n")
        await writer.drain()
        try:
            async with asyncio.timeout(limit):
                while raw := await reader.readline():
                    reply = self._answer(raw.decode().rstrip("\n"))
                    writer.write(reply.encode() + b"\n")
                    await writer.drain()
        finally:
            writer.close()
        return self.transcript

    def _shown(self, key: str) -> str:
        return "•" if self.secure() and key not in "#*" else key

    def _answer(self, line: str) -> str:
        self.transcript.commands.append(line)
        cmd = next((c for c in COMMANDS if line == c or line.startswith(c + " ")), line.split(" ")[0])
        args = _split(line[len(cmd):])
        if self.script.todo and self.script.todo[0] == "h":
            self.script.todo.popleft()
            self.transcript.hung_up_by = "caller"
            self._say("☎ caller hangs up")
            return "HANGUP\n200 result=-1"
        if cmd.startswith("STREAM FILE"):
            path, escape = args[0], args[1] if len(args) > 1 else ""
            self.transcript.played.append(path)
            self._say(f"▶ {self.describe(path) or path}")
            key = self.script.key_during_prompt(escape)
            if key:
                self._say(f"  ⌨ {self._shown(key)} (barge-in)")
            return f"200 result={ord(key) if key else 0} endpos=8000"
        if cmd.startswith("WAIT FOR DIGIT"):
            key = self.script.key_on_wait()
            self._say(f"  ⌨ {self._shown(key)}" if key else "  … (no key)")
            return f"200 result={ord(key) if key else 0}"
        if cmd.startswith("SAY"):
            self._say(f"▶ [{cmd.lower()} {args[0] if args else ''}]")
            key = self.script.key_during_prompt(args[1] if len(args) > 1 else "")
            return f"200 result={ord(key) if key else 0}"
        if cmd == "EXEC":
            app = args[0] if args else ""
            if app == "Queue":
                queue = (args[1] if len(args) > 1 else "").split(",")[0]
                self.transcript.queue = queue
                self._say(f"☎ queued for agents: {queue}")
            else:
                self._say(f"☎ {app}({args[1] if len(args) > 1 else ''})")
            return "200 result=0"
        if cmd == "GET VARIABLE" and args and args[0] == SIM_LISTEN_VAR:
            answer = self.script.listen()
            if answer.startswith("say:"):
                self._say(f"  🗣 \"{answer[4:]}\"")
            else:
                self._say(f"  ⌨ {answer[4:]}" if answer else "  … (silence)")
            return f"200 result=1 ({answer})" if answer else "200 result=0"
        if cmd == "GET VARIABLE":
            if args and args[0] == "QUEUESTATUS" and self.transcript.queue and self.queue_status:
                return f"200 result=1 ({self.queue_status})"
            return "200 result=0"
        if cmd == "HANGUP":
            self.transcript.hung_up_by = "service"
            self._say("☎ the IVR hangs up")
            return "200 result=1"
        if cmd == "RECORD FILE":  # no audio is written: the service finds an empty take
            self._say("  ● recording")
            key = self.script.key_during_prompt(args[2] if len(args) > 2 else "")
            return f"200 result={ord(key)} (dtmf) endpos=0" if key else "200 result=0 (timeout) endpos=0"
        if cmd == "CHANNEL STATUS":
            return "200 result=6"  # up
        if cmd in ("ANSWER", "SET VARIABLE", "VERBOSE"):
            return "200 result=1" if cmd != "ANSWER" else "200 result=0"
        return "510 Invalid or unknown command"


COMMANDS = ("STREAM FILE", "WAIT FOR DIGIT", "SAY DIGITS", "SAY NUMBER", "SAY ALPHA", "SAY DATE", "SAY TIME",
            "EXEC", "GET VARIABLE", "SET VARIABLE", "HANGUP", "ANSWER", "VERBOSE", "RECORD FILE", "GET DATA",
            "CHANNEL STATUS")


def _split(line: str) -> list[str]:
    """Split an AGI command line into words, unquoting quoted arguments."""
    out: list[str] = []
    i = 0
    while i < len(line):
        if line[i] == " ":
            i += 1
            continue
        if line[i] == '"':
            j, buf = i + 1, []
            while j < len(line) and line[j] != '"':
                if line[j] == "\\" and j + 1 < len(line):
                    j += 1
                buf.append(line[j])
                j += 1
            out.append("".join(buf))
            i = j + 1
        else:
            j = line.find(" ", i)
            j = len(line) if j < 0 else j
            out.append(line[i:j])
            i = j
    return out


__all__ = ["CallerScript", "FakeAsterisk", "FakeChannel", "Transcript", "quote", "tokens"]


@dataclass(frozen=True)
class FakeResolved:
    path: str
    description: str
    kind: str


class FakePrompts:
    """A PromptResolver without audio: names become `prompts/<lang>/<name>`, text becomes `tts:<text>`."""

    def __init__(self, known: Iterable[str] | None = None) -> None:
        self.known = set(known) if known is not None else None
        self.resolved: list[str] = []

    def has(self, name: str, language: str) -> bool:
        return self.known is None or name in self.known

    async def resolve(self, name: str, language: str, variables: Mapping[str, str]) -> FakeResolved:
        self.resolved.append(name)
        return FakeResolved(f"prompts/{language}/{name}", name, "recording")

    async def resolve_text(self, text: str, language: str, variables: Mapping[str, str]) -> FakeResolved:
        from ivr.flows.prompt_ref import render

        spoken = render(text, variables)
        self.resolved.append(spoken)
        return FakeResolved(f"tts/{language}/{spoken}", spoken, "text")


class FailingUtterance:
    """An utterance whose decoder fails on the first audio it is fed."""

    finished = False
    speech_started = False

    def feed(self, pcm8k: bytes) -> None:
        raise SpeechError("the recogniser failed")

    async def result(self) -> Any:
        raise SpeechError("the recogniser failed")

    def cancel(self) -> None:
        return None


class FailingRecognizer:
    """A recogniser that fails on the first audio it is fed (a crashed decoder): for the paths that must
    survive it (the keypad takes over, the AGI session stays in step)."""

    name = "failing"
    languages = frozenset({"en"})
    supports_grammar = True
    streaming = True

    def missing_words(self, grammar: Any) -> list[str]:
        return []

    def start(self, grammar: Any, endpoint: Any = None) -> FailingUtterance:
        return FailingUtterance()

    def close(self) -> None:
        return None

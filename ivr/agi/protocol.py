"""Sans-IO AGI: the environment block, command formatting/quoting, and reply parsing.

Replies Asterisk sends (res_agi.c):
    200 result=<r> [(<data>)] [key=value ...]     a command's result
    510 Invalid or unknown command
    511 Command Not Permitted on a dead channel or intercepted
    520-Invalid command syntax.  Proper usage follows:   ... multi-line ...   520 End of proper usage.
    HANGUP                                         the channel hung up (may precede a reply)

Commands: Asterisk reads each command line with `fgets(buf, AGI_BUF_LEN)` (res_agi.c, run_agi): a line
of 2047 bytes or more is cut there and its tail runs as a second command, so the encoded line (after
quoting, in UTF-8, newline included) must fit in 2047 bytes; `encode_command` refuses it before anything
is sent. `parse_args` keeps at most MAX_ARGS - 1 words (the rest are dropped with a warning), so more
words are refused too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from ivr.errors import AgiError

AGI_BUF_LEN = 2048  # res_agi.c: char buf[AGI_BUF_LEN], filled by fgets (one byte is its NUL)
MAX_COMMAND_BYTES = AGI_BUF_LEN - 2  # the encoded line without its newline
MAX_WORDS = 127  # res_agi.c: argv[MAX_ARGS] with MAX_ARGS 128, NULL-terminated
MAX_ENV_LINES = 200
_ENV_LINE = re.compile(r"^(agi_[a-z0-9_]+): ?(.*)$")
_EXTRA = re.compile(r"^[a-z_]+=\S*$")
_EXTRA_AT = re.compile(r"[a-z_]+=\S*")  # fullmatch on a slice of the line, without copying it
_TOKEN = re.compile(r"\S+")
_COMMAND_WORD = re.compile(r"^[A-Z][A-Z ]*$")
_DIGIT = re.compile(r"\d")


def masked(line: str) -> str:
    """A reply line fit for a log or an error: its first 80 characters with every digit as `#` (a GET DATA
    result is what the caller keyed)."""
    return repr(_DIGIT.sub("#", line[:80]))


def parse_env_line(line: str) -> tuple[str, str]:
    """One `agi_name: value` header line → (name without the agi_ prefix, value)."""
    m = _ENV_LINE.match(line)
    if not m:
        raise AgiError(f"not an AGI environment line: {line[:60]!r}")
    return m.group(1)[4:], m.group(2)


def parse_env(lines: Iterable[str]) -> dict[str, str]:
    """The whole environment block (without its terminating blank line)."""
    env: dict[str, str] = {}
    for n, line in enumerate(lines):
        if n >= MAX_ENV_LINES:
            raise AgiError("AGI environment too long")
        key, value = parse_env_line(line)
        env[key] = value
    return env


def quote(arg: str) -> str:
    """Quote one argument. Newlines would start a new AGI command, so they are refused."""
    if any(c in arg for c in "\r\n\x00"):
        raise AgiError("AGI argument contains a line break or NUL")
    quoted = '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if _utf8_length(quoted) > MAX_COMMAND_BYTES:
        raise AgiError(f"AGI argument over {MAX_COMMAND_BYTES} bytes once quoted")
    return quoted


def format_command(command: str, *args: str | int) -> str:
    """`STREAM FILE` + args → one wire line (without the newline). Numbers are sent bare."""
    if not _COMMAND_WORD.match(command):
        raise AgiError(f"bad AGI command word {command!r}")
    parts = [command]
    for a in args:
        parts.append(str(a) if isinstance(a, int) else quote(a))
    return " ".join(parts)


def encode_command(command: str, *args: str | int) -> bytes:
    """The bytes to send for one command, newline included; AgiError when Asterisk could not read it whole.

    The error names the command word and sizes only: arguments may carry what a caller keyed.
    """
    line = format_command(command, *args)
    words = len(command.split()) + len(args)
    if words > MAX_WORDS:
        raise AgiError(f"{command}: {words} words, over the {MAX_WORDS} Asterisk parses")
    size = _utf8_length(line)
    if size > MAX_COMMAND_BYTES:
        raise AgiError(f"{command}: the command line is {size} bytes encoded, over the {MAX_COMMAND_BYTES} "
                       f"that fit Asterisk's {AGI_BUF_LEN}-byte AGI command buffer")
    return line.encode("utf-8") + b"\n"


def _utf8_length(text: str) -> int:
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:  # a lone surrogate: not text Asterisk could be sent
        raise AgiError("AGI argument is not valid Unicode text") from exc


@dataclass(frozen=True)
class Reply:
    """A parsed reply to one command."""

    code: int
    result: str = ""
    data: str | None = None
    extras: dict[str, str] = field(default_factory=dict)
    text: str = ""  # the raw first line, or the usage text of a 520

    @property
    def result_int(self) -> int:
        try:
            return int(self.result)
        except ValueError as exc:
            raise AgiError(f"non-numeric AGI result {self.result[:40]!r}") from exc


def parse_200(line: str) -> Reply:
    """`200 result=1 (some data) endpos=1234` → Reply."""
    if not line.startswith("200 result="):
        raise AgiError(f"malformed AGI reply: {masked(line)}")
    rest = line[len("200 result="):]
    result, _, rest = rest.partition(" ")
    data: str | None = None
    extras: dict[str, str] = {}
    if rest.startswith("("):
        close = _data_end(rest)
        if close < 0:
            raise AgiError(f"unterminated data in AGI reply: {masked(line)}")
        data, rest = rest[1:close], rest[close + 1:]
    for token in rest.split():
        if not _EXTRA.match(token):
            raise AgiError(f"malformed AGI reply: {masked(line)}")
        key, _, value = token.partition("=")
        extras[key] = value
    return Reply(200, result, data, extras, line)


def _data_end(rest: str) -> int:
    """Data may contain spaces and parentheses: it ends at the last ")" followed only by extras.

    Linear: only a ")" in the last token that is not an extra, or in a later one, can qualify, and
    the part of its token after it must itself be an extra (or empty). -1 when there is none.
    """
    tokens = [(m.start(), m.end()) for m in _TOKEN.finditer(rest)]
    first = 0
    for i in range(len(tokens) - 1, -1, -1):
        if not _EXTRA_AT.fullmatch(rest, *tokens[i]):
            first = i
            break
    for start, end in reversed(tokens[first:]):
        p = rest.rfind(")", start, end)
        while p >= 0:
            if p + 1 == end or _EXTRA_AT.fullmatch(rest, p + 1, end):
                return p
            p = rest.rfind(")", start, p)
    return -1


class ReplyParser:
    """Feed reply lines one at a time; `feed` returns a Reply when one is complete, else None.

    `hangup_seen` turns true when Asterisk announced the hang-up (the `HANGUP` line).
    """

    def __init__(self) -> None:
        self.hangup_seen = False
        self._usage: list[str] | None = None

    def feed(self, line: str) -> Reply | None:
        if self._usage is not None:
            if line.startswith("520 "):
                text = "\n".join(self._usage)
                self._usage = None
                return Reply(520, text=text)
            self._usage.append(line)
            if len(self._usage) > 100:
                raise AgiError("runaway 520 usage block")
            return None
        if line == "HANGUP":
            self.hangup_seen = True
            return None
        if line.startswith("200 "):
            return parse_200(line)
        if line.startswith("520-"):
            self._usage = [line[4:]]
            return None
        if line[:4] in ("510 ", "511 ", "520 "):
            return Reply(int(line[:3]), text=line[4:])
        raise AgiError(f"unexpected line from Asterisk: {masked(line)}")

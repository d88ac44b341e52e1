"""The shipped Asterisk configuration writes no keyed digit anywhere: no log channel takes the `dtmf` (or
`debug`) level, and no AMI user reads the `dtmf` or `agi` classes (they broadcast every key and every AGI
command, PINs included). End to end, tests/e2e/test_identity.py searches the log files themselves."""

from __future__ import annotations

import re
from pathlib import Path

CONF = Path(__file__).resolve().parents[2] / "asterisk-conf"


def _sections(name: str) -> dict[str, dict[str, str]]:
    text = (CONF / name).read_text()
    out: dict[str, dict[str, str]] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if m := re.fullmatch(r"\[([^\]]+)\].*", line):
            section = m.group(1)
            out.setdefault(section, {})
        elif "=" in line and section:
            key, value = re.split(r"\s*=>?\s*", line, maxsplit=1)
            out[section][key.strip()] = value.strip()
    return out


def test_no_log_channel_records_keys() -> None:
    channels = _sections("logger.conf")["logfiles"]
    assert "full.log" in channels and "messages.log" in channels
    for name, levels in channels.items():
        names = {re.sub(r"\(.*\)", "", level.strip()) for level in levels.split(",")}
        assert not names & {"dtmf", "debug", "*"}, f"logger.conf {name} => {levels}"


def test_no_ami_user_reads_digits_or_agi_commands() -> None:
    users = {k: v for k, v in _sections("manager.conf").items() if k != "general"}
    assert users
    for user, fields in users.items():
        classes = {c.strip() for c in fields.get("read", "").split(",")}
        assert not classes & {"dtmf", "agi", "all"}, f"manager.conf [{user}] read = {fields.get('read')}"

"""AgiChannel: the `Channel` protocol spoken over one FastAGI session."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from ivr.agi.session import AgiSession
from ivr.channel import DTMF_KEYS, Recording
from ivr.errors import AgiError, CallEnded

log = logging.getLogger("ivr.agi")

_SAY = {"digits": "SAY DIGITS", "number": "SAY NUMBER", "alpha": "SAY ALPHA",
        "date": "SAY DATE", "time": "SAY TIME"}


def _key(result: int) -> str:
    """An AGI digit result (ASCII code, 0 = none) → the key."""
    if result <= 0:
        return ""
    key = chr(result)
    return key if key in DTMF_KEYS else ""


class AgiChannel:
    """Implements `ivr.channel.Channel` over an AgiSession."""

    def __init__(self, session: AgiSession) -> None:
        self._s = session

    @property
    def uniqueid(self) -> str:
        return self._s.uniqueid

    @property
    def env(self) -> Mapping[str, str]:
        return self._s.env

    async def answer(self) -> None:
        if (await self._s.command("ANSWER")).result_int < 0:
            raise CallEnded("answer failed")

    async def play(self, files: Sequence[str], escape: str = "") -> str:
        for path in files:
            reply = await self._s.command("STREAM FILE", path, escape)
            result = reply.result_int
            if result < 0:
                # -1 is a hang-up (Asterisk sends HANGUP after this reply) or an unplayable file:
                # one more command tells them apart, and raises CallEnded if the caller is gone.
                await self._s.command("CHANNEL STATUS")
                log.warning("[%s] could not play %s", self.uniqueid, path)
                continue
            if key := _key(result):
                return key
        return ""

    async def wait_digit(self, seconds: float) -> str:
        result = (await self._s.command("WAIT FOR DIGIT", int(seconds * 1000))).result_int
        if result < 0:
            raise CallEnded("wait for digit failed")
        return _key(result)

    async def say(self, kind: str, value: str, escape: str = "") -> str:
        command = _SAY.get(kind)
        if command is None:
            raise AgiError(f"unknown say kind {kind!r}")
        arg: str | int = int(value) if kind in ("number", "date", "time") else value
        reply = await self._s.command(command, arg, escape)
        if reply.result_int < 0:
            log.warning("[%s] could not say %s", self.uniqueid, kind)
            return ""
        return _key(reply.result_int)

    async def record(
        self, path: str, *, fmt: str = "wav", escape: str = "#", max_seconds: float = 60.0,
        silence_seconds: float = 3.0, beep: bool = True,
    ) -> Recording:
        args: list[str | int] = [path, fmt, escape, int(max_seconds * 1000)]
        if beep:
            args.append("BEEP")
        if silence_seconds > 0:
            args.append(f"s={int(silence_seconds)}")
        reply = await self._s.command("RECORD FILE", *args)
        data = (reply.data or "").strip()
        if reply.result_int < 0 or data == "hangup":
            return Recording(path, "hangup")
        if data == "dtmf":
            return Recording(path, "dtmf", _key(reply.result_int))
        return Recording(path, "timeout" if data == "timeout" else "silence")

    async def exec_app(self, app: str, *args: str) -> int:
        if not app.isalnum():
            raise AgiError(f"bad application name {app!r}")
        reply = await self._s.command("EXEC", app, ",".join(args))
        if reply.result_int == -2:
            raise AgiError(f"application {app} not found in Asterisk")
        return reply.result_int

    async def set_var(self, name: str, value: str) -> None:
        await self._s.command("SET VARIABLE", name, value)

    async def get_var(self, name: str) -> str | None:
        reply = await self._s.command("GET VARIABLE", name)
        return reply.data if reply.result == "1" else None

    async def set_language(self, language: str) -> None:
        await self.set_var("CHANNEL(language)", language)

    async def hangup(self) -> None:
        try:
            await self._s.command("HANGUP")
        except CallEnded:
            pass

"""AMI over panoramisk's Manager: login, reconnect with backoff, actions and events as plain dicts.

Two changes to panoramisk's defaults, both from FACTS.md: reconnect delays grow exponentially
(1 s → 30 s) instead of hammering a down Asterisk every 2 s, and `Originate` is never re-sent after
a reconnect (panoramisk would, and a customer would get two calls): callers retry on their own terms.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from panoramisk import Manager

from ivr.backoff import Backoff
from ivr.errors import AmiError

log = logging.getLogger("ivr.ami")

MIN_BACKOFF, MAX_BACKOFF = 1.0, 30.0
RECONNECT = Backoff(MIN_BACKOFF, cap=MAX_BACKOFF)
EventHandler = Callable[[dict[str, str]], None]


def _log_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("AMI login hook failed: %s", task.exception())


class _BackoffManager(Manager):  # type: ignore[misc]
    """panoramisk Manager whose reconnect delay doubles on each failure and resets on login."""

    failures = 0  # failed connection attempts since the last login

    def connection_made(self, f: asyncio.Future[Any]) -> None:
        if f.exception() is not None:
            self.failures += 1
            self.reconnect_timeout = RECONNECT.delay(self.failures)
        super().connection_made(f)

    def login(self, future: asyncio.Future[Any]) -> bool:
        ok = bool(super().login(future))
        if ok:
            self.failures = 0
            self.reconnect_timeout = MIN_BACKOFF
        else:
            log.error("AMI login refused for user %s", self.config.get("username"))
        return ok


class AmiClient:
    """The service's one AMI connection. Event handlers get each event as a dict of its fields."""

    def __init__(self, host: str, port: int, user: str, secret: str, *, timeout: float = 5.0) -> None:
        self.timeout = timeout
        self._handlers: list[tuple[str, EventHandler]] = []
        self._manager = _BackoffManager(
            host=host, port=port, username=user, secret=secret, ping_delay=10, ping_interval=10,
            reconnect_timeout=int(MIN_BACKOFF), forgetable_actions=("ping", "login", "originate"),
            log=logging.getLogger("ivr.ami.panoramisk"),
            on_login=self._logged_in, on_disconnect=self._lost,
        )
        self._up = asyncio.Event()
        self._on_login: list[Callable[[], Awaitable[None]]] = []
        self._manager.register_event("*", self._dispatch)
        self.events_seen = 0

    @property
    def connected(self) -> bool:
        return bool(self._manager._connected and self._manager.authenticated)

    async def start(self) -> None:
        """Start connecting in the background (a down Asterisk is retried, never fatal)."""
        self._manager.loop = asyncio.get_running_loop()
        self._manager.connect()

    def on_login(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run `hook` after every (re)login, e.g. to resynchronise state that events keep up to date."""
        self._on_login.append(hook)

    def _logged_in(self, _manager: Any) -> None:
        log.info("AMI connected and logged in")
        self._up.set()
        for hook in self._on_login:
            task = asyncio.ensure_future(hook())
            task.add_done_callback(_log_failure)

    def _lost(self, _manager: Any, exc: Exception | None) -> None:
        log.warning("AMI connection lost (%s); reconnecting", exc)
        self._up.clear()

    async def wait_connected(self, seconds: float) -> bool:
        try:
            async with asyncio.timeout(seconds):
                await self._up.wait()
        except TimeoutError:
            pass
        return self.connected

    def on(self, pattern: str, handler: EventHandler) -> None:
        """Call `handler(event)` for events whose name matches `pattern` (fnmatch, e.g. `Queue*`)."""
        self._handlers.append((pattern, handler))

    def _dispatch(self, _manager: Any, event: Any) -> None:
        # keep this cheap: Asterisk drops an AMI client that does not read within 100 ms
        import fnmatch

        self.events_seen += 1
        name = str(event.get("Event", ""))
        fields = {str(k): str(v) for k, v in event.items()}
        for pattern, handler in self._handlers:
            if fnmatch.fnmatchcase(name, pattern):
                try:
                    handler(fields)
                except Exception:
                    log.exception("AMI event handler for %s failed", name)

    async def action(self, name: str, *, as_list: bool = False, **fields: str) -> list[dict[str, str]]:
        """Send an action; returns its response (and, for list actions, the events that follow)."""
        if not self.connected:
            raise AmiError(f"AMI not connected (action {name})")
        try:
            future = self._manager.send_action({"Action": name, **fields}, as_list=as_list)
            result = await asyncio.wait_for(future, self.timeout)
        except TimeoutError as exc:
            raise AmiError(f"AMI action {name}: no response in {self.timeout:.0f}s") from exc
        except (ConnectionError, AttributeError) as exc:
            raise AmiError(f"AMI action {name}: {exc}") from exc
        messages = result if isinstance(result, list) else [result]
        out = [{str(k): str(v) for k, v in m.items()} for m in messages]
        if out and out[0].get("Response") == "Error":
            raise AmiError(f"AMI action {name} refused: {out[0].get('Message', '')}")
        return out

    async def live_channels(self) -> list[dict[str, str]]:
        """Channels Asterisk has now (CoreShowChannels), for the live-calls view."""
        msgs = await self.action("CoreShowChannels", as_list=True)
        return [m for m in msgs if m.get("Event") == "CoreShowChannel"]

    async def close(self) -> None:
        self._manager.close()
        self._manager.connection_lost = lambda exc: None  # no reconnect after an orderly close

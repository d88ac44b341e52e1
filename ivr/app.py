"""Composition root: builds the components, runs them in one lifecycle, reloads on change/SIGHUP, drains on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from ivr.admin.http import make_app
from ivr.agi.channel import AgiChannel
from ivr.agi.server import AgiServer, script_name
from ivr.agi.session import AgiSession
from ivr.agi.timeouts import ReplyTimeouts
from ivr.ami import AmiClient
from ivr.config import Settings
from ivr.diagnostics import errors
from ivr.errors import ConfigError
from ivr.flows.engine import Engine
from ivr.flows.registry import FlowRegistry
from ivr.identity.sms import HttpSmsGateway
from ivr.identity.wiring import auth_from, backends_from
from ivr.journeys import JourneyLog
from ivr.lifecycle import Component, Lifecycle, component
from ivr.logs import current_call
from ivr.media.prompts import PromptCatalog, PromptStore
from ivr.media.tts import TtsRenderer
from ivr.nodes import NODE_TYPES
from ivr.ops.emergency import EmergencySwitch
from ivr.ops.voicemail import VoicemailStore, WebhookNotifier
from ivr.queueing.callbacks import CallbackStore
from ivr.queueing.dialer import Dialer
from ivr.queueing.originate import AmiOriginator
from ivr.queueing.queuestate import QueueBoard
from ivr.queueing.queuestate import refresh as refresh_queues
from ivr.services import Services
from ivr.speech.service import FEATURE as SPEECH
from ivr.speech.service import SpeechService
from ivr.store import connect as connect_store

log = logging.getLogger("ivr.app")


class App:
    """The running service. `start()` then `run_until_stopped()`, or `stop()` from a test.

    `components()` lists what runs, in start order; `stop()` stops it in reverse: first the AGI server
    (stop accepting, let live calls finish up to drain_seconds, hand the rest back), then reloads, HTTP,
    the emergency switch, the dialer (before AMI: calls being placed), the webhook, AMI, background work
    (CRM records, before the backends close), backends, SMS, Redis, speech and TTS.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.renderer = TtsRenderer()
        empty = PromptCatalog(settings.prompts_dir, settings.languages, settings.default_language, {})
        self.prompts = PromptStore(empty, settings.prompts_cache, self.renderer,
                                   asterisk_dir=settings.asterisk_prompts_dir())
        self.registry = FlowRegistry(settings, self.prompts, node_types=NODE_TYPES)
        self.journeys = JourneyLog(settings.journeys_file, known_flows=lambda: self.registry.current.flows)
        self.ami = (AmiClient(settings.ami_host, settings.ami_port, settings.ami_user, settings.ami_secret)
                    if settings.ami_enabled else None)
        self.store = connect_store(settings.redis_url) if settings.redis_url else None
        self.backends = backends_from(settings)
        self.services = Services(settings, self.prompts, self.journeys, self.ami, store=self.store,
                                 backends=self.backends, auth=auth_from(settings, self.store, self.backends),
                                 emergency=EmergencySwitch(self.store) if self.store else None,
                                 queues=QueueBoard(), callbacks=CallbackStore(self.store) if self.store else None)
        if self.ami is not None:
            board, ami = self.services.queues, self.ami
            assert board is not None
            ami.on("*", board.apply)
            ami.on_login(lambda: refresh_queues(ami, board))
        self.services.voicemail = VoicemailStore.from_settings(settings)  # messages on disk, webhook outbox
        self.voicemail_webhook = WebhookNotifier.from_settings(self.services.voicemail, settings)
        if self.voicemail_webhook is not None:
            self.services.voicemail.on_saved = self.voicemail_webhook.kick
        self.speech = SpeechService.from_config(settings.extra.get("speech", {}), prompts_cache=settings.prompts_cache,
                                                asterisk_cache=settings.asterisk_prompts_dir())
        self.services.features[SPEECH] = self.speech
        self.dialer: Dialer | None = None  # built at start when Redis and AMI are configured
        self.engine = Engine(self.services, self.registry.get)
        self.agi = AgiServer(
            self._handle, header_timeout=settings.agi_header_timeout, max_sessions=settings.agi_max_sessions,
            timeouts=ReplyTimeouts(short=settings.agi_reply_timeout, prompt=settings.agi_prompt_reply_timeout,
                                   long=settings.agi_long_reply_timeout),
            resync_timeout=settings.agi_resync_timeout)
        self._http: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = asyncio.Event()
        self.http_port = 0
        self.lifecycle = Lifecycle(self.components())

    def components(self) -> list[Component]:
        """What runs, in start order (optional parts only when configured); stopped in reverse."""
        parts = [Component("flows", self._flows), component("tts", stop=self.renderer.close),
                 component("speech", self.speech.start, self.speech.close)]  # recognisers load before calls
        if self.store is not None:
            parts.append(component("redis", stop=self.store.close))
        sms = self.services.auth.otp.sms if self.services.auth is not None else None
        if isinstance(sms, HttpSmsGateway):
            parts.append(component("sms", stop=sms.close))
        if self.backends is not None:
            parts.append(component("backends", stop=self.backends.close))
        parts.append(Component("background", lambda: self.services.background.running(2.0)))  # CRM records
        if self.ami is not None:
            parts.append(component("ami", self.ami.start, self.ami.close))
        if self.voicemail_webhook is not None:  # delivers what an earlier run left in the outbox, too
            parts.append(component("voicemail-webhook", self.voicemail_webhook.start, self.voicemail_webhook.stop))
        if self.services.callbacks is not None and self.ami is not None and self.store is not None:
            parts.append(Component("dialer", self._dialer))
        if self.services.emergency is not None:
            parts.append(component("emergency", self.services.emergency.start, self.services.emergency.stop))
        parts += [Component("http", self._http_site), Component("reloads", self._reloads),
                  Component("agi", self._calls)]
        return parts

    async def start(self) -> None:
        await self.lifecycle.start()

    async def stop(self) -> None:
        """Stop accepting calls, let live ones finish up to drain_seconds, hand them back, then stop the rest."""
        await self.lifecycle.stop()
        self._stopped.set()

    # -- components (each an async context: start on entry, stop on exit)

    @asynccontextmanager
    async def _flows(self) -> AsyncIterator[None]:
        self.settings.prompts_cache.mkdir(parents=True, exist_ok=True)
        result = await self.registry.reload("startup")
        if not result.applied:
            raise ConfigError("flows or prompts are invalid:\n" + "\n".join(str(d) for d in errors(result.findings)))
        built = await self.prompts.build(self.settings.languages)
        log.info("prompts ready: %s", built)
        yield

    @asynccontextmanager
    async def _dialer(self) -> AsyncIterator[None]:
        assert self.services.callbacks is not None and self.ami is not None and self.store is not None
        board = self.services.queues
        self.dialer = Dialer.from_settings(
            self.settings, self.services.callbacks, AmiOriginator(self.ami, self.settings, self.store),
            ewt_at=(lambda q, p: board.estimate(q, p)[0]) if board is not None else None,
            ready=lambda: bool(self.ami and self.ami.connected))  # an attempt before AMI login would fail
        await self.dialer.start()
        yield
        await self.dialer.stop(grace=min(10.0, self.settings.drain_seconds))  # then leases expire

    @asynccontextmanager
    async def _http_site(self) -> AsyncIterator[None]:
        runner = web.AppRunner(make_app(self.services, self.registry), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.settings.http_host, self.settings.http_port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._http = runner
        self.http_port = int(runner.addresses[0][1]) if runner.addresses else 0
        yield
        await runner.cleanup()

    @asynccontextmanager
    async def _reloads(self) -> AsyncIterator[None]:
        """The flow watcher, and SIGHUP reloads in flight: cancelled on the way out."""
        if self.settings.reload_watch:
            self._tasks.append(asyncio.create_task(self.registry.watch(), name="flow-watch"))
        yield
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t

    @asynccontextmanager
    async def _calls(self) -> AsyncIterator[None]:
        """The AGI server: the last to start, the first to stop (stop accepting, then drain)."""
        await self.agi.start(self.settings.agi_host, self.settings.agi_port)
        log.info("serving: FastAGI %s:%d, HTTP %s:%d", self.settings.agi_host, self.agi.port,
                 self.settings.http_host, self.http_port)
        try:
            yield
        finally:
            await self.agi.stop_accepting()
            live = len(self.agi.calls)
            if live:
                log.info("draining %d live call(s), up to %.0fs", live, self.settings.drain_seconds)
            cut = await self.agi.drain(self.settings.drain_seconds)
            if cut:
                log.warning("%d call(s) still live at the deadline were handed back to the dialplan", cut)

    async def _handle(self, session: AgiSession) -> None:
        current_call.set(session.uniqueid)
        await self.engine.handle(AgiChannel(session), script_name(session.env))

    async def run_until_stopped(self) -> None:
        loop = asyncio.get_running_loop()
        stopping: list[asyncio.Task[None]] = []

        def request_stop() -> None:
            if not stopping:
                log.info("stopping")
                stopping.append(asyncio.create_task(self.stop()))

        def request_reload() -> None:
            self._tasks.append(asyncio.create_task(self._reload_task()))

        loop.add_signal_handler(signal.SIGTERM, request_stop)
        loop.add_signal_handler(signal.SIGINT, request_stop)
        loop.add_signal_handler(signal.SIGHUP, request_reload)
        await self._stopped.wait()

    async def _reload_task(self) -> None:
        await self.registry.reload("SIGHUP")

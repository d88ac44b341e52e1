"""The AMI Originator against a fake AMI server (real AmiClient/panoramisk) and a real redis-server."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import pytest

from ivr.ami import AmiClient
from ivr.config import Settings
from ivr.queueing.callbacks import Callback, CallbackStore, keep_place
from ivr.queueing.dialer import Dialer, action_id, channel_ids
from ivr.queueing.originate import AmiOriginator
from ivr.store import Store, connect
from ivr.store import callback as callback_key
from lab.redis_server import free_port


class OriginateAmi:
    """Login, Originate (queued, then OriginateResponse with `reason`), CoreShowChannels (`live` uniqueids)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.originates: list[dict[str, str]] = []
        self.live: list[str] = []
        self.reason = "4"
        self.cause = ""  # with it, a Hangup event for the attempt's channel (Cause: ...)
        self.hangup_after = False  # the Hangup comes after the OriginateResponse (Asterisk 22 does either)
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self.server:
            self.server.close()
        for w in self.writers:
            w.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        writer.write(b"Asterisk Call Manager/9.0.0\r\n")
        try:
            while block := await reader.readuntil(b"\r\n\r\n"):
                msg = dict(line.split(": ", 1) for line in block.decode().strip().split("\r\n") if ": " in line)
                aid, action = msg.get("ActionID", ""), msg.get("Action")
                if action == "Login":
                    writer.write(f"Response: Success\r\nActionID: {aid}\r\nMessage: Authentication accepted\r\n\r\n"
                                 .encode())
                elif action == "Originate":
                    self.originates.append(msg)
                    writer.write(f"Response: Success\r\nActionID: {aid}\r\nMessage: Originate successfully queued"
                                 "\r\n\r\n".encode())
                    asyncio.get_running_loop().call_later(0.3, self._respond, writer, msg)
                elif action == "CoreShowChannels":
                    out = f"Response: Success\r\nActionID: {aid}\r\nEventList: start\r\n\r\n"
                    for u in self.live:
                        out += f"Event: CoreShowChannel\r\nActionID: {aid}\r\nChannel: PJSIP/customer-1\r\n" \
                               f"Uniqueid: {u}\r\nLinkedid: {u}\r\n\r\n"
                    out += f"Event: CoreShowChannelsComplete\r\nActionID: {aid}\r\nEventList: Complete\r\n" \
                           f"ListItems: {len(self.live)}\r\n\r\n"
                    writer.write(out.encode())
                else:
                    writer.write(f"Response: Success\r\nActionID: {aid}\r\n\r\n".encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass

    def _respond(self, writer: asyncio.StreamWriter, msg: dict[str, str]) -> None:
        ok = self.reason == "4"
        hangup = (f"Event: Hangup\r\nChannel: {msg['Channel']}-00000001\r\nUniqueid: {msg['ChannelId']}\r\n"
                  f"Cause: {self.cause}\r\nCause-txt: x\r\n\r\n").encode()
        if self.cause and not self.hangup_after:
            writer.write(hangup)
        if self.cause and self.hangup_after:
            asyncio.get_running_loop().call_later(0.4, writer.write, hangup)
        writer.write(f"Event: OriginateResponse\r\nActionID: {msg['ActionID']}\r\n"
                     f"Response: {'Success' if ok else 'Failure'}\r\nChannel: {msg['Channel']}\r\n"
                     f"Reason: {self.reason}\r\nUniqueid: {msg['ChannelId']}\r\n\r\n".encode())


@pytest.fixture
async def rig(redis_url: str) -> AsyncIterator[tuple[OriginateAmi, AmiClient, Store, CallbackStore]]:
    port = free_port()
    fake = OriginateAmi(port)
    await fake.start()
    ami = AmiClient("127.0.0.1", port, "ivr", "s3cret")
    await ami.start()
    store = connect(redis_url)
    assert await ami.wait_connected(5)
    try:
        yield fake, ami, store, CallbackStore(store)
    finally:
        await ami.close()
        await fake.stop()
        await store.close()


SETTINGS = Settings(callbacks_channel="PJSIP/{number}@trunk", callbacks_context="ivr-callbacks")


async def _answer_later(store: Store, cb: Callback, answer: str, delay: float = 0.6) -> None:
    await asyncio.sleep(delay)
    chan, _ = channel_ids(cb.id, cb.attempt)
    await store.run(lambda r: r.hset(callback_key(cb.id), mapping={"answer": answer, "answer_channel": chan}))


def _cb() -> Callback:
    return keep_place("+390212345678", "support", now=1000.0, ewt=0.0, position=1)


async def test_answered_and_accepted(rig: tuple[OriginateAmi, AmiClient, Store, CallbackStore]) -> None:
    fake, ami, store, _ = rig
    cb = _cb()
    orig = AmiOriginator(ami, SETTINGS, store, answer_wait=5, poll=0.1)
    answering = asyncio.create_task(_answer_later(store, cb, "accepted"))
    result = await orig.originate(cb, action_id(cb.id, 1))
    await answering
    assert result.ok and result.outcome == "accepted"
    [sent] = fake.originates
    chan, other = channel_ids(cb.id, 1)
    assert sent["Channel"] == "PJSIP/+390212345678@trunk" and sent["Context"] == "ivr-callbacks"
    assert (sent["Exten"], sent["Priority"], sent["Async"]) == ("s", "1", "true")
    assert (sent["ActionID"], sent["ChannelId"], sent["OtherChannelId"]) == (f"cb-{cb.id}-1", chan, other)
    assert sent["Variable"] == f"IVR_CALLBACK_ID={cb.id}"


async def test_declined_is_not_retried(rig: tuple[OriginateAmi, AmiClient, Store, CallbackStore]) -> None:
    _, ami, store, _ = rig
    cb = _cb()
    answering = asyncio.create_task(_answer_later(store, cb, "declined"))
    result = await AmiOriginator(ami, SETTINGS, store, answer_wait=5, poll=0.1).originate(cb, action_id(cb.id, 1))
    await answering
    assert (result.ok, result.outcome, result.retry) == (False, "declined", False)


@pytest.mark.parametrize(("reason", "outcome"), [("5", "busy"), ("3", "no_answer"), ("8", "congestion")])
async def test_failures_are_retried(rig: tuple[OriginateAmi, AmiClient, Store, CallbackStore], reason: str,
                                    outcome: str) -> None:
    fake, ami, store, _ = rig
    fake.reason = reason
    cb = _cb()
    result = await AmiOriginator(ami, SETTINGS, store, answer_wait=1).originate(cb, action_id(cb.id, 1))
    assert (result.ok, result.outcome, result.retry) == (False, outcome, True)


async def test_resumed_attempt_still_live_is_not_dialed_again(
        rig: tuple[OriginateAmi, AmiClient, Store, CallbackStore]) -> None:
    fake, ami, store, _ = rig
    cb = dataclasses.replace(_cb(), resumed=True)
    fake.live = [channel_ids(cb.id, 1)[0]]
    answering = asyncio.create_task(_answer_later(store, cb, "accepted"))
    result = await AmiOriginator(ami, SETTINGS, store, answer_wait=5, poll=0.1).originate(cb, action_id(cb.id, 1))
    await answering
    assert result.ok and fake.originates == []


async def test_resumed_attempt_with_an_answer_is_settled_without_dialing(
        rig: tuple[OriginateAmi, AmiClient, Store, CallbackStore]) -> None:
    fake, ami, store, _ = rig
    cb = dataclasses.replace(_cb(), resumed=True)
    await _answer_later(store, cb, "accepted", delay=0)
    result = await AmiOriginator(ami, SETTINGS, store).originate(cb, action_id(cb.id, 1))
    assert result.ok and fake.originates == []


async def test_resumed_attempt_without_trace_is_dialed_with_the_same_ids(
        rig: tuple[OriginateAmi, AmiClient, Store, CallbackStore]) -> None:
    fake, ami, store, _ = rig
    cb = dataclasses.replace(_cb(), resumed=True)
    answering = asyncio.create_task(_answer_later(store, cb, "accepted"))
    result = await AmiOriginator(ami, SETTINGS, store, answer_wait=5, poll=0.1).originate(cb, action_id(cb.id, 1))
    await answering
    assert result.ok and [o["ChannelId"] for o in fake.originates] == [channel_ids(cb.id, 1)[0]]


async def test_dialer_with_the_ami_originator(rig: tuple[OriginateAmi, AmiClient, Store, CallbackStore]) -> None:
    fake, ami, store, callbacks = rig
    cb, _ = await callbacks.add(_cb())
    dialer = Dialer(callbacks, AmiOriginator(ami, SETTINGS, store, answer_wait=5, poll=0.1), poll=0.1)
    answering = asyncio.create_task(_answer_later(store, cb, "accepted"))
    await dialer.start()
    try:
        for _ in range(100):
            got = await callbacks.get(cb.id)
            if got is not None and got.state == "done":
                break
            await asyncio.sleep(0.1)
    finally:
        await dialer.stop()
        await answering
    got = await callbacks.get(cb.id)
    assert got is not None and (got.state, got.outcome, got.attempts) == ("done", "accepted", 1)
    assert len(fake.originates) == 1


@pytest.mark.parametrize("after", [False, True])
async def test_busy_from_the_hangup_cause_before_or_after_the_response(
        rig: tuple[OriginateAmi, AmiClient, Store, CallbackStore], after: bool) -> None:
    """Asterisk 22 answers a busy customer with Reason 0; the cause (17) is on the channel's Hangup event,
    which may arrive just before or just after the OriginateResponse: both are busy, not failed."""
    fake, ami, store, _ = rig
    fake.reason, fake.cause, fake.hangup_after = "0", "17", after
    cb = _cb()
    result = await AmiOriginator(ami, SETTINGS, store, answer_wait=5, poll=0.1).originate(cb, action_id(cb.id, 1))
    assert (result.ok, result.outcome, result.retry) == (False, "busy", True), result.detail


async def test_reason_zero_without_any_hangup_is_failed_after_a_short_wait(
        rig: tuple[OriginateAmi, AmiClient, Store, CallbackStore]) -> None:
    fake, ami, store, _ = rig
    fake.reason = "0"
    cb = _cb()
    result = await AmiOriginator(ami, SETTINGS, store, answer_wait=5, poll=0.1).originate(cb, action_id(cb.id, 1))
    assert (result.ok, result.outcome) == (False, "failed")

"""The AMI client against a fake AMI server: login, events, actions, reconnect with growing delays."""

from __future__ import annotations

import asyncio
import time

from ivr.ami import AmiClient
from lab.redis_server import free_port


class FakeAmi:
    """Speaks just enough AMI: banner, Login, one list action, events on demand; can drop clients."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connections: list[float] = []
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self.server:
            self.server.close()
        for w in self.writers:
            w.close()
        self.writers.clear()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections.append(time.monotonic())
        self.writers.append(writer)
        writer.write(b"Asterisk Call Manager/9.0.0\r\n")
        try:
            while block := await reader.readuntil(b"\r\n\r\n"):
                msg = dict(line.split(": ", 1) for line in block.decode().strip().split("\r\n") if ": " in line)
                aid = msg.get("ActionID", "")
                if msg.get("Action") == "Login":
                    ok = msg.get("Secret") == "s3cret"
                    writer.write(f"Response: {'Success' if ok else 'Error'}\r\nActionID: {aid}\r\n"
                                 f"Message: {'Authentication accepted' if ok else 'Authentication failed'}\r\n\r\n"
                                 .encode())
                    writer.write(b"Event: FullyBooted\r\nStatus: Fully Booted\r\n\r\n")
                elif msg.get("Action") == "CoreShowChannels":
                    writer.write(f"Response: Success\r\nActionID: {aid}\r\nEventList: start\r\n\r\n"
                                 f"Event: CoreShowChannel\r\nActionID: {aid}\r\nChannel: PJSIP/caller-1\r\n"
                                 f"Uniqueid: 1.1\r\n\r\n"
                                 f"Event: CoreShowChannelsComplete\r\nActionID: {aid}\r\nEventList: Complete\r\n"
                                 f"ListItems: 1\r\n\r\n".encode())
                else:
                    writer.write(f"Response: Success\r\nActionID: {aid}\r\n\r\n".encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass

    async def event(self, text: str) -> None:
        for w in self.writers:
            w.write(text.encode())
            await w.drain()


async def test_login_events_actions_and_reconnect() -> None:
    port = free_port()
    ami_server = FakeAmi(port)
    await ami_server.start()
    client = AmiClient("127.0.0.1", port, "ivr", "s3cret")
    joins: list[dict[str, str]] = []
    client.on("QueueCaller*", joins.append)
    await client.start()
    try:
        assert await client.wait_connected(5)
        await ami_server.event("Event: QueueCallerJoin\r\nQueue: support\r\nPosition: 1\r\n\r\n")
        await ami_server.event("Event: Newchannel\r\nChannel: x\r\n\r\n")
        for _ in range(50):
            if joins:
                break
            await asyncio.sleep(0.02)
        assert [j["Queue"] for j in joins] == ["support"]
        channels = await client.live_channels()
        assert [c["Channel"] for c in channels] == ["PJSIP/caller-1"]
        # Asterisk goes away: the client notices, and logs in again when it is back
        await ami_server.stop()
        for _ in range(100):
            if not client.connected:
                break
            await asyncio.sleep(0.02)
        assert not client.connected
        await asyncio.sleep(2.5)   # refused attempts meanwhile: the delay grows
        ami_server = FakeAmi(port)
        await ami_server.start()
        assert await client.wait_connected(40)
    finally:
        await client.close()
        await ami_server.stop()


async def test_refused_connections_back_off() -> None:
    port = free_port()  # nothing listens
    client = AmiClient("127.0.0.1", port, "ivr", "x")
    await client.start()
    await asyncio.sleep(3.5)
    delay = client._manager.reconnect_timeout
    await client.close()
    assert delay >= 2  # 1 s → 2 s → 4 s ... (panoramisk alone retries every 2 s forever)

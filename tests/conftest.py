"""Fixtures shared by every test layer."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from lab.redis_server import RedisServer, start_redis


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server for the whole session (flush between tests with `redis_url`)."""
    server = start_redis()
    yield server
    server.stop()
    shutil.rmtree(server.workdir, ignore_errors=True)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """A URL to a clean database; restarts the server if a test stopped it."""
    import redis

    if redis_server.proc is None:
        redis_server.start()
    redis.Redis.from_url(redis_server.url).flushall()
    yield redis_server.url
    if redis_server.proc is None:
        redis_server.start()

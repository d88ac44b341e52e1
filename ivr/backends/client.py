"""A JSON-over-HTTP client for one backend: time budget, bounded retries with jitter, circuit breaker."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import aiohttp

from ivr.backends.breaker import CircuitBreaker
from ivr.backoff import Backoff
from ivr.errors import BackendError, BackendTimeout, BackendUnavailable
from ivr.identity.secret import Secret

log = logging.getLogger("ivr.backends")


class BackendNotFound(BackendError):
    """HTTP 404: the thing asked for does not exist (a normal answer, not a backend fault)."""


class _Retryable(Exception):
    """An attempt failed in a way another attempt may fix; carries the error to raise at the end."""

    def __init__(self, error: BackendError) -> None:
        self.error = error


class BackendClient:
    """Requests to one backend; every failure leaves as `BackendError` (Unavailable/Timeout/NotFound).

    `timeout` is the whole budget of one call, retries included: a caller waits at most that long.
    Retries (up to `retries`, full jitter from `backoff` doubling) only for GETs or `idempotent=True`
    requests (on connection errors and 5xx), and for any request the connection to which was refused
    (nothing was sent). Timeouts and malformed replies are never retried. After
    `breaker.failure_threshold` failed calls in a row the circuit opens and calls fail at once.
    """

    def __init__(
        self, name: str, base_url: str, *, timeout: float = 2.0, retries: int = 2, backoff: float = 0.05,
        breaker: CircuitBreaker | None = None, headers: Mapping[str, str | Secret] | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._pauses = Backoff(backoff, jitter=1.0)  # full jitter: 0 .. backoff * 2**attempt
        self.breaker = breaker or CircuitBreaker(name)
        self._headers = dict(headers or {})
        self._session: aiohttp.ClientSession | None = None

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        return await self.request("GET", path, params=params, idempotent=True)

    async def post(self, path: str, body: Mapping[str, Any], *, idempotent: bool = False) -> Any:
        return await self.request("POST", path, body=body, idempotent=idempotent)

    async def request(
        self, method: str, path: str, *, body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None, idempotent: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """One call: the parsed JSON reply (None for an empty body), or a `BackendError`."""
        trial = self.breaker.before()
        deadline = time.monotonic() + self.timeout
        attempt = 0
        try:
            while True:
                try:
                    result = await self._attempt(method, path, body, params, headers, idempotent, deadline)
                except _Retryable as retry:
                    pause = self._pauses.delay(attempt)
                    if attempt >= self.retries or time.monotonic() + pause >= deadline:
                        raise retry.error from retry.__cause__
                    attempt += 1
                    log.info("backend %s: %s %s: %s; retry %d in %.3f s",
                             self.name, method, path, retry.error, attempt, pause)
                    await asyncio.sleep(pause)
                    continue
                self.breaker.success()
                return result
        except BackendNotFound:
            self.breaker.success()  # the backend answered sensibly
            raise
        except (BackendTimeout, BackendUnavailable) as exc:
            self.breaker.failure()
            log.warning("backend %s: %s %s failed: %s", self.name, method, path, exc)
            raise
        except BackendError:
            self.breaker.success()
            raise
        except BaseException:
            self.breaker.abandon(trial)
            raise

    async def _attempt(
        self, method: str, path: str, body: Mapping[str, Any] | None, params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None, idempotent: bool, deadline: float,
    ) -> Any:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BackendTimeout(f"{self.name}: no answer within {self.timeout:.2f} s")
        url = self.base_url + path
        try:
            async with asyncio.timeout(remaining):
                request = self._client().request(method, url, json=body, params=params, headers=headers)
                async with request as resp:
                    raw = await resp.read()
                    status = resp.status
        except TimeoutError as exc:
            raise BackendTimeout(f"{self.name}: no answer within {self.timeout:.2f} s") from exc
        except aiohttp.ClientConnectorError as exc:  # refused / unreachable: nothing was sent
            raise _Retryable(BackendUnavailable(f"{self.name}: cannot connect ({exc.os_error})")) from exc
        except (aiohttp.ClientError, OSError) as exc:
            error = BackendUnavailable(f"{self.name}: {type(exc).__name__}")
            raise (_Retryable(error) if idempotent else error) from exc
        if status >= 500:
            error = BackendUnavailable(f"{self.name}: HTTP {status}")
            raise _Retryable(error) if idempotent else error
        if status == 404:
            raise BackendNotFound(f"{self.name}: {method} {path}: not found")
        if status >= 400:
            raise BackendError(f"{self.name}: {method} {path}: HTTP {status}")
        if not raw.strip():
            return None
        try:
            return json.loads(raw, parse_float=Decimal)
        except ValueError as exc:
            raise BackendUnavailable(f"{self.name}: malformed JSON reply") from exc

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            headers = {k: v.reveal() if isinstance(v, Secret) else v for k, v in self._headers.items()}
            self._session = aiohttp.ClientSession(
                headers=headers, timeout=aiohttp.ClientTimeout(total=None),
                connector=aiohttp.TCPConnector(limit=100, limit_per_host=50),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

"""Text messages: the `SmsGateway` protocol, an HTTP gateway client, and the one-time-code texts."""

from __future__ import annotations

import logging
import re
import uuid
from typing import Protocol

from ivr.backends.breaker import CircuitBreaker
from ivr.backends.client import BackendClient
from ivr.errors import BackendError, BackendTimeout, BackendUnavailable
from ivr.identity.secret import Secret

log = logging.getLogger("ivr.sms")

E164 = re.compile(r"^\+[1-9]\d{6,14}$")

OTP_TEXTS = {
    "en": "Your verification code is {code}. It expires in {minutes} minutes. Never share it.",
    "it": "Il tuo codice di verifica è {code}. Scade tra {minutes} minuti. Non condividerlo.",
}


def otp_text(code: Secret, language: str = "en", minutes: int = 5) -> Secret:
    """The text carrying a one-time code, in the caller's language (English if unknown); a Secret."""
    template = OTP_TEXTS.get(language, OTP_TEXTS["en"])
    return Secret(template.format(code=code.reveal(), minutes=minutes))


class SmsGateway(Protocol):
    async def send(self, to: str, text: Secret) -> str:
        """Send `text` to the E.164 number `to`; returns the message id. Raises BackendError."""
        ...


class HttpSmsGateway:
    """POSTs `{"id", "to", "from", "text"}` as JSON to `url`.

    Each message carries a fresh `id` (also sent as `Idempotency-Key`), so the gateway can drop a
    duplicate: that makes retrying a 5xx or a dropped connection safe. Retries are bounded and
    jittered within `timeout`; failures raise `BackendUnavailable` / `BackendTimeout`; the circuit
    opens after `failure_threshold` failed sends. The text (it holds a code) is never logged.
    """

    def __init__(
        self, url: str, *, sender: str = "IVR", auth_header: Secret | None = None,
        header_name: str = "Authorization", timeout: float = 3.0, retries: int = 2, backoff: float = 0.1,
        failure_threshold: int = 5, reset_timeout: float = 30.0,
    ) -> None:
        headers: dict[str, str | Secret] = {}
        if auth_header is not None:
            headers[header_name] = auth_header
        breaker = CircuitBreaker("sms", failure_threshold=failure_threshold, reset_timeout=reset_timeout)
        self.sender = sender
        self._client = BackendClient("sms", url, timeout=timeout, retries=retries, backoff=backoff,
                                     breaker=breaker, headers=headers)

    @property
    def breaker(self) -> CircuitBreaker:
        return self._client.breaker

    async def send(self, to: str, text: Secret) -> str:
        if not E164.match(to):
            raise ValueError("SMS destination must be an E.164 number")
        message_id = uuid.uuid4().hex
        body = {"id": message_id, "to": to, "from": self.sender, "text": text.reveal()}
        try:
            await self._client.request("POST", "", body=body, idempotent=True,
                                       headers={"Idempotency-Key": message_id})
        except (BackendUnavailable, BackendTimeout):
            raise
        except BackendError as exc:  # 4xx: refused (auth, number); for the caller the gateway is down
            raise BackendUnavailable(str(exc)) from exc
        log.info("SMS %s accepted by the gateway for %s", message_id, mask_phone(to))
        return message_id

    async def close(self) -> None:
        await self._client.close()


def mask_phone(phone: str) -> str:
    """`+12025550101` → `•••0001`: enough for a caller to recognise their number."""
    return "•••" + phone[-4:] if len(phone) > 4 else "•••"

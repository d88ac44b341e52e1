"""HTTP implementations of the backend protocols (the contract is ivr/demo/refbackend/openapi.yaml)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any, TypeVar
from urllib.parse import quote

from ivr.backends.breaker import CircuitBreaker
from ivr.backends.client import BackendClient, BackendNotFound
from ivr.backends.protocols import Balance, CaseId, Customer, Interaction, OrderStatus, ResetTicket, Verified
from ivr.errors import BackendUnavailable
from ivr.identity.secret import Secret
from ivr.validation import quiet, validate

T = TypeVar("T")


def _seg(value: str) -> str:
    """One path segment: caller-controlled text can never add a segment or a query."""
    return quote(value, safe="+")


def _parse(backend: str, reply: Any, model: type[T]) -> T:
    """A reply checked against its model; a reply of the wrong shape is a broken backend (its values are
    not repeated in the error: a reply may carry a customer's data)."""
    value, problems = validate(model, reply)
    if value is None:
        raise BackendUnavailable(f"{backend}: unexpected reply ({'; '.join(quiet(p) for p in problems[:3])})")
    return value


class HttpCustomerDirectory:
    def __init__(self, client: BackendClient) -> None:
        self.client = client

    async def by_caller_id(self, caller_id: str) -> Customer | None:
        return await self._get(f"/customers/by-phone/{_seg(caller_id)}")

    async def by_id(self, customer_id: str) -> Customer | None:
        return await self._get(f"/customers/{_seg(customer_id)}")

    async def _get(self, path: str) -> Customer | None:
        try:
            reply = await self.client.get(path)
        except BackendNotFound:
            return None
        return _parse(self.client.name, reply, Customer)


class HttpAccounts:
    def __init__(self, client: BackendClient) -> None:
        self.client = client

    async def verify_pin(self, customer_id: str, pin: Secret) -> bool:
        return await self._verify(f"/customers/{_seg(customer_id)}/pin/verify", {"pin": pin.reveal()})

    async def verify_card(self, customer_id: str, last4: Secret, dob: date) -> bool:
        body = {"last4": last4.reveal(), "dob": dob.isoformat()}
        return await self._verify(f"/customers/{_seg(customer_id)}/card/verify", body)

    async def _verify(self, path: str, body: dict[str, str]) -> bool:
        """An unknown customer is a failed check: the caller learns nothing about which ids exist."""
        try:
            reply = await self.client.post(path, body)
        except BackendNotFound:
            return False
        return _parse(self.client.name, reply, Verified).verified

    async def balance(self, customer_id: str) -> Balance:
        reply = await self.client.get(f"/customers/{_seg(customer_id)}/balance")
        return _parse(self.client.name, reply, Balance)


class HttpOrders:
    def __init__(self, client: BackendClient) -> None:
        self.client = client

    async def status(self, customer_id: str, number: str) -> OrderStatus | None:
        try:
            reply = await self.client.get(f"/customers/{_seg(customer_id)}/orders/{_seg(number)}")
        except BackendNotFound:
            return None
        return _parse(self.client.name, reply, OrderStatus)


class HttpPasswordReset:
    def __init__(self, client: BackendClient) -> None:
        self.client = client

    async def reset(self, customer_id: str) -> ResetTicket:
        reply = await self.client.post(f"/customers/{_seg(customer_id)}/password-reset", {})
        return _parse(self.client.name, reply, ResetTicket)


class HttpCrm:
    def __init__(self, client: BackendClient) -> None:
        self.client = client

    async def record(self, interaction: Interaction) -> str:
        reply = await self.client.post("/interactions", asdict(interaction))
        return _parse(self.client.name, reply, CaseId).case_id


@dataclass
class Backends:
    """The five backends, each with its own client (timeout, circuit); `close()` when done."""

    directory: HttpCustomerDirectory
    accounts: HttpAccounts
    orders: HttpOrders
    password_reset: HttpPasswordReset
    crm: HttpCrm

    async def close(self) -> None:
        for b in (self.directory, self.accounts, self.orders, self.password_reset, self.crm):
            await b.client.close()


def http_backends(
    base_url: str, *, timeouts: Mapping[str, float] | None = None, token: Secret | None = None,
    retries: int = 2, failure_threshold: int = 5, reset_timeout: float = 30.0,
) -> Backends:
    """All five backends at one base URL (the reference backend); `timeouts` by backend name."""
    limits = {"directory": 1.5, "accounts": 2.5, "orders": 2.0, "password_reset": 3.0, "crm": 2.0}
    unknown = set(timeouts or {}) - set(limits)
    if unknown:
        raise ValueError(f"unknown backend names in timeouts: {sorted(unknown)}")
    limits.update(timeouts or {})
    headers: dict[str, str | Secret] = {}
    if token is not None:
        headers["Authorization"] = Secret("Bearer " + token.reveal())

    def client(name: str) -> BackendClient:
        breaker = CircuitBreaker(name, failure_threshold=failure_threshold, reset_timeout=reset_timeout)
        return BackendClient(name, base_url, timeout=limits[name], retries=retries, breaker=breaker,
                             headers=headers)

    return Backends(HttpCustomerDirectory(client("directory")), HttpAccounts(client("accounts")),
                    HttpOrders(client("orders")), HttpPasswordReset(client("password_reset")),
                    HttpCrm(client("crm")))

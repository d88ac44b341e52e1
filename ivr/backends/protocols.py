"""What the IVR asks of self-service backends: typed results and one Protocol per backend.

The results are also the models of the backends' replies (checked by `ivr.validation`; unknown keys
are ignored, a wrong shape is a broken backend).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Protocol

from pydantic import BeforeValidator, StrictBool

from ivr.identity.secret import Secret
from ivr.validation import REPLY_CONFIG


def _no_date(value: Any) -> Any:
    return None if value == "" else value


OptionalDate = Annotated[date | None, BeforeValidator(_no_date)]  # "" or null: none


@dataclass(frozen=True)
class OrderStatus:
    """An order as the caller hears it; `eta` is None once delivered or cancelled."""

    __pydantic_config__ = REPLY_CONFIG

    number: str
    state: str  # received, processing, shipped, delivered, cancelled, returned
    eta: OptionalDate = None
    updated: OptionalDate = None


@dataclass(frozen=True)
class Customer:
    """A customer found by caller id (or customer number): enough to greet and route them."""

    __pydantic_config__ = REPLY_CONFIG

    id: str
    name: str
    tier: str = "standard"  # standard, vip
    language: str = "en"
    phone: str = ""  # the number on file (OTP and reset SMS go here, never to the caller id)
    open_orders: tuple[OrderStatus, ...] = ()
    open_cases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Balance:
    """Money as Decimal, never float."""

    __pydantic_config__ = REPLY_CONFIG

    account: str
    amount: Decimal
    currency: str  # ISO 4217


@dataclass(frozen=True)
class ResetTicket:
    """A started password reset; the link went by SMS to the number on file (masked here)."""

    __pydantic_config__ = REPLY_CONFIG

    ticket: str
    sent_to: str


@dataclass(frozen=True)
class Verified:
    """The reply of a PIN or card check."""

    __pydantic_config__ = REPLY_CONFIG

    verified: StrictBool


@dataclass(frozen=True)
class CaseId:
    """The reply of the CRM to a recorded interaction."""

    __pydantic_config__ = REPLY_CONFIG

    case_id: str


@dataclass(frozen=True)
class Interaction:
    """One contact to write into the CRM; `summary` must not contain secrets."""

    customer_id: str
    kind: str  # balance, order-status, password-reset, auth-locked, backend-failed, transfer ...
    outcome: str
    summary: str = ""
    call_id: str = ""
    details: dict[str, str] = field(default_factory=dict)


class CustomerDirectory(Protocol):
    async def by_caller_id(self, caller_id: str) -> Customer | None:
        """The customer whose number on file is `caller_id` (E.164), or None."""
        ...

    async def by_id(self, customer_id: str) -> Customer | None:
        """The customer with this customer number (keyed in by an unknown caller), or None."""
        ...


class Accounts(Protocol):
    async def verify_pin(self, customer_id: str, pin: Secret) -> bool:
        """True when `pin` matches the customer's telephone PIN (checked against a slow hash)."""
        ...

    async def verify_card(self, customer_id: str, last4: Secret, dob: date) -> bool:
        """True when the last 4 digits of a card of the customer and the date of birth match."""
        ...

    async def balance(self, customer_id: str) -> Balance:
        """The balance of the customer's main account."""
        ...


class Orders(Protocol):
    async def status(self, customer_id: str, number: str) -> OrderStatus | None:
        """The order `number` if it belongs to the customer, else None."""
        ...


class PasswordReset(Protocol):
    async def reset(self, customer_id: str) -> ResetTicket:
        """Start a reset; the backend texts a reset link to the number on file."""
        ...


class Crm(Protocol):
    async def record(self, interaction: Interaction) -> str:
        """Store an interaction; returns its case id."""
        ...

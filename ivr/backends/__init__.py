"""Self-service backends: typed protocols, their HTTP implementations and the resilient JSON client."""

from __future__ import annotations

from ivr.backends.breaker import CircuitBreaker
from ivr.backends.client import BackendClient, BackendNotFound
from ivr.backends.http import (
    Backends,
    HttpAccounts,
    HttpCrm,
    HttpCustomerDirectory,
    HttpOrders,
    HttpPasswordReset,
    http_backends,
)
from ivr.backends.protocols import (
    Accounts,
    Balance,
    Crm,
    Customer,
    CustomerDirectory,
    Interaction,
    Orders,
    OrderStatus,
    PasswordReset,
    ResetTicket,
)

__all__ = [
    "Accounts", "BackendClient", "BackendNotFound", "Backends", "Balance", "CircuitBreaker", "Crm",
    "Customer", "CustomerDirectory", "HttpAccounts", "HttpCrm", "HttpCustomerDirectory", "HttpOrders",
    "HttpPasswordReset", "Interaction", "OrderStatus", "Orders", "PasswordReset", "ResetTicket",
    "http_backends",
]

"""The reference backend's SQLite store: one worker thread owns the connection, the loop never blocks."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from argon2.exceptions import InvalidHashError, VerificationError

from ivr.demo.refbackend.seed import HASHER, seed

T = TypeVar("T")
CLOSED_ORDER_STATES = ("delivered", "cancelled", "returned")


class Database:
    """Queries as coroutines; each runs on the single `refdb` thread that owns the connection."""

    def __init__(self, path: str = ":memory:") -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="refdb")
        self._conn: sqlite3.Connection | None = None

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("database not open")
        return self._conn

    async def open(self) -> None:
        def _open() -> None:
            self._conn = sqlite3.connect(self.path)
            self._conn.row_factory = sqlite3.Row
            seed(self._conn)
        await self._run(_open)

    async def close(self) -> None:
        def _close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        await self._run(_close)
        self._executor.shutdown(wait=True)

    # --- customers ---
    def _customer(self, where: str, value: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            f"SELECT id, name, phone, language, tier FROM customers WHERE {where} = ?", (value,)).fetchone()
        if row is None:
            return None
        orders = self.conn.execute(
            "SELECT number, state, eta, updated FROM orders WHERE customer_id = ? AND state NOT IN (?,?,?)"
            " ORDER BY number", (row["id"], *CLOSED_ORDER_STATES)).fetchall()
        cases = self.conn.execute("SELECT id FROM cases WHERE customer_id = ? AND status = 'open' ORDER BY id",
                                  (row["id"],)).fetchall()
        return {**dict(row), "open_orders": [dict(o) for o in orders], "open_cases": [c["id"] for c in cases]}

    async def customer(self, customer_id: str) -> dict[str, Any] | None:
        return await self._run(self._customer, "id", customer_id)

    async def customer_by_phone(self, phone: str) -> dict[str, Any] | None:
        return await self._run(self._customer, "phone", phone)

    # --- accounts ---
    async def verify_pin(self, customer_id: str, pin: str) -> bool | None:
        """None: no such customer. The argon2 check runs off the loop and off the db thread."""
        row = await self._run(lambda: self.conn.execute(
            "SELECT pin_hash FROM customers WHERE id = ?", (customer_id,)).fetchone())
        if row is None:
            return None

        def check() -> bool:
            try:
                return HASHER.verify(row["pin_hash"], pin)
            except (VerificationError, InvalidHashError):
                return False
        return await asyncio.to_thread(check)

    async def verify_card(self, customer_id: str, last4: str, dob: str) -> bool | None:
        row = await self._run(lambda: self.conn.execute(
            "SELECT card_last4, dob FROM customers WHERE id = ?", (customer_id,)).fetchone())
        if row is None:
            return None
        given, known = f"{last4}|{dob}".encode(), f"{row['card_last4']}|{row['dob']}".encode()
        return hmac.compare_digest(given, known)

    async def balance(self, customer_id: str) -> dict[str, Any] | None:
        row = await self._run(lambda: self.conn.execute(
            "SELECT number, balance_minor, currency FROM accounts WHERE customer_id = ? ORDER BY number",
            (customer_id,)).fetchone())
        if row is None:
            return None
        amount = Decimal(row["balance_minor"]).scaleb(-2)
        return {"account": row["number"], "amount": str(amount), "currency": row["currency"]}

    # --- orders ---
    async def order(self, customer_id: str, number: str) -> dict[str, Any] | None:
        row = await self._run(lambda: self.conn.execute(
            "SELECT number, state, eta, updated FROM orders WHERE customer_id = ? AND number = ?",
            (customer_id, number)).fetchone())
        return None if row is None else dict(row)

    # --- CRM and password resets ---
    async def add_case(self, customer_id: str, kind: str, outcome: str, summary: str, call_id: str) -> str:
        def insert() -> str:
            n = self.conn.execute("SELECT COUNT(*) FROM cases").fetchone()[0] + 1
            case_id = f"CASE-{n:04d}"
            self.conn.execute("INSERT INTO cases VALUES (?,?,?,?,?,?,?,?)",
                              (case_id, customer_id, "closed", kind, outcome, summary, call_id,
                               datetime.now(UTC).isoformat(timespec="seconds")))
            self.conn.commit()
            return case_id
        return await self._run(insert)

    async def add_reset(self, customer_id: str, ticket: str, token: str, valid: timedelta) -> None:
        expires = (datetime.now(UTC) + valid).isoformat(timespec="seconds")
        digest = hashlib.sha256(token.encode()).hexdigest()

        def insert() -> None:
            self.conn.execute("INSERT INTO resets VALUES (?,?,?,?)", (ticket, customer_id, digest, expires))
            self.conn.commit()
        await self._run(insert)

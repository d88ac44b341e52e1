"""Demo customers, accounts and orders of the reference backend (DEMO ONLY: the PINs are public).

| customer | name         | caller id      | lang | tier     | PIN  | card last 4 | date of birth | balance      |
|----------|--------------|----------------|------|----------|------|-------------|---------------|--------------|
| 1001    | Alice Morgan | +12025550101   | en   | vip      | 2468 | 4242        | 1980-04-12    | 12345.67 USD |
| 1002    | Giulia Rossi | +390212345678  | it   | standard | 1357 | 1881        | 1975-09-30    | 1234.50 EUR  |
| 1003    | Bob Smith    | +12025550103   | en   | standard | 9753 | 0005        | 1992-01-05    | 87.10 USD    |
| 9001    | Ops Desk     | +12025550190   | en   | ops      | 8642 | 0000        | 1990-01-01    | (none)       |

Orders (dates relative to the day the database is seeded): 50001 shipped (eta +2 days),
50002 processing (eta +5), 50003 delivered; 60001 shipped (eta +1), 60002 cancelled;
70001 received (eta +7). 1003 has one open case, CASE-0001.
9001 is the operations team's account (tier `ops`): the only kind allowed to publish an announcement on
the ops line (dialplans/ops.yaml).
PINs are stored only as argon2id hashes; these values exist for demos and tests, never for production.
"""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta

try:
    from argon2 import PasswordHasher
except ImportError as exc:  # pragma: no cover - the `demo` extra is missing
    raise SystemExit("the reference backend needs the `demo` extra: pip install 'ivr[demo]'") from exc

# OWASP's minimum argon2id profile: slow enough to matter, fast enough to seed at start-up.
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)

DEMO_PINS = {"1001": "2468", "1002": "1357", "1003": "9753", "9001": "8642"}

SCHEMA = """
CREATE TABLE IF NOT EXISTS customers (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, phone TEXT UNIQUE NOT NULL, language TEXT NOT NULL,
    tier TEXT NOT NULL, pin_hash TEXT NOT NULL, card_last4 TEXT NOT NULL, dob TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
    number TEXT PRIMARY KEY, customer_id TEXT NOT NULL REFERENCES customers(id),
    balance_minor INTEGER NOT NULL, currency TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    number TEXT PRIMARY KEY, customer_id TEXT NOT NULL REFERENCES customers(id), state TEXT NOT NULL,
    eta TEXT, updated TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cases (
    id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, status TEXT NOT NULL, kind TEXT NOT NULL,
    outcome TEXT NOT NULL, summary TEXT NOT NULL, call_id TEXT NOT NULL, created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS resets (
    ticket TEXT PRIMARY KEY, customer_id TEXT NOT NULL, token_hash TEXT NOT NULL, expires TEXT NOT NULL);
"""

CUSTOMERS = [
    ("1001", "Alice Morgan", "+12025550101", "en", "vip", "4242", "1980-04-12"),
    ("1002", "Giulia Rossi", "+390212345678", "it", "standard", "1881", "1975-09-30"),
    ("1003", "Bob Smith", "+12025550103", "en", "standard", "0005", "1992-01-05"),
    ("9001", "Ops Desk", "+12025550190", "en", "ops", "0000", "1990-01-01"),  # the ops line's account
]
ACCOUNTS = [("ACC-1001", "1001", 1234567, "USD"), ("ACC-2001", "1002", 123450, "EUR"),
            ("ACC-3001", "1003", 8710, "USD")]
ORDERS = [  # number, customer, state, eta in days (None: no eta), updated days ago
    ("50001", "1001", "shipped", 2, 1), ("50002", "1001", "processing", 5, 0),
    ("50003", "1001", "delivered", None, 3), ("60001", "1002", "shipped", 1, 1),
    ("60002", "1002", "cancelled", None, 6), ("70001", "1003", "received", 7, 0),
]


def seed(conn: sqlite3.Connection, today: date | None = None) -> None:
    """Create the schema and, in an empty database, the demo data."""
    conn.executescript(SCHEMA)
    if conn.execute("SELECT COUNT(*) FROM customers").fetchone()[0]:
        return
    day = today or date.today()
    for cid, name, phone, lang, tier, last4, dob in CUSTOMERS:
        conn.execute("INSERT INTO customers VALUES (?,?,?,?,?,?,?,?)",
                     (cid, name, phone, lang, tier, HASHER.hash(DEMO_PINS[cid]), last4, dob))
    conn.executemany("INSERT INTO accounts VALUES (?,?,?,?)", ACCOUNTS)
    for number, cid, state, eta, ago in ORDERS:
        eta_day = None if eta is None else (day + timedelta(days=eta)).isoformat()
        conn.execute("INSERT INTO orders VALUES (?,?,?,?,?)",
                     (number, cid, state, eta_day, (day - timedelta(days=ago)).isoformat()))
    conn.execute("INSERT INTO cases VALUES (?,?,?,?,?,?,?,?)",
                 ("CASE-0001", "1003", "open", "complaint", "open", "Parcel damaged", "", day.isoformat()))
    conn.commit()

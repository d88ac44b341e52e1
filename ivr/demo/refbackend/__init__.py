"""The reference self-service backend of the demo: aiohttp over SQLite; demo data in `seed` (demo PINs)."""

from __future__ import annotations

from ivr.demo.refbackend.app import Running, create_app, serve, start_site
from ivr.demo.refbackend.db import Database
from ivr.demo.refbackend.seed import DEMO_PINS

__all__ = ["DEMO_PINS", "Database", "Running", "create_app", "serve", "start_site"]

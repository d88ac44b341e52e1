"""Logging setup: every line of a call carries its uniqueid; secrets are redacted before output."""

from __future__ import annotations

import contextvars
import json
import logging
import sys

current_call: contextvars.ContextVar[str] = contextvars.ContextVar("current_call", default="-")


class _CallId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.call = current_call.get()
        return True


class _Json(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {"t": self.formatTime(record), "level": record.levelname, "logger": record.name,
               "call": getattr(record, "call", "-"), "msg": record.getMessage()}
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def setup(level: str = "INFO", fmt: str = "text") -> None:
    """Configure the root logger once (idempotent): call id on every line, secret redaction."""
    from ivr.identity import secret

    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_ivr", False):
            root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler._ivr = True  # type: ignore[attr-defined]
    handler.addFilter(_CallId())
    handler.addFilter(secret.RedactingFilter())
    handler.setFormatter(_Json() if fmt == "json" else logging.Formatter(
        "%(asctime)s %(levelname)-7s %(name)s [%(call)s] %(message)s"))
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("ivr.ami.panoramisk").setLevel(logging.WARNING)

"""`Secret`: a value that prints as *** everywhere, and a logging filter that redacts secrets that leak."""

from __future__ import annotations

import hmac
import logging
import re
import threading
import weakref
from typing import Any, NoReturn, final

MASK = "***"
MIN_REGISTERED = 4  # shorter values would redact ordinary text; a PIN, code or card tail is 4+
_DIGIT_RUN = re.compile(r"\d{4,}")


@final
class Secret:
    """Wraps a str (PIN, one-time code, token); only `reveal()` gives it back.

    `str`, `repr`, f-strings and `%` print `***`; `json.dumps` and pickling refuse it; `==` is
    constant-time. While alive, its value is registered with `RedactingFilter` (second line of
    defence if the value leaks into a log message by another route).
    """

    __slots__ = ("_value", "__weakref__")

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("Secret wraps a str")
        self._value = value
        if len(value) >= MIN_REGISTERED:
            with _lock:
                _registry[id(self)] = value
            weakref.finalize(self, _forget, id(self))

    def reveal(self) -> str:
        """The value, for the one place that needs it (hashing, the backend call, the SMS body)."""
        return self._value

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    __hash__ = None  # type: ignore[assignment]  # a hash would be an oracle for the value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled")

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self


_registry: dict[int, str] = {}  # id of a live Secret → its value
_lock = threading.Lock()


def _forget(key: int) -> None:
    with _lock:
        _registry.pop(key, None)


def registered_values() -> list[str]:
    """Values of the live secrets, longest first (so a value inside another is masked whole)."""
    with _lock:
        values = set(_registry.values())
    return sorted(values, key=len, reverse=True)


def redact(text: str, *, digits: bool = False) -> str:
    """`text` with no live secret in it; with `digits`, no run of 4+ digits either.

    A safety net that must not become an oracle: a secret made of digits (a PIN, a code) is looked for
    only as a whole number of its own, never inside a longer one, and where one is found *every* run of
    4+ digits of the text is masked. So `+12025550101` is never damaged because a live PIN is 5550, and a
    masked record does not show where the secret stood among its numbers. Other secrets (tokens: long,
    random) are masked wherever they occur. Code must not log secure values at all: this only catches
    mistakes.
    """
    for value in registered_values():
        if value.isdigit():
            if not digits and re.search(rf"(?<!\d){value}(?!\d)", text):
                digits = True
        elif value in text:
            text = text.replace(value, MASK)
    return _DIGIT_RUN.sub(MASK, text) if digits else text


class RedactingFilter(logging.Filter):
    """Rewrites each record so its message and traceback carry no secret; never drops a record.

    Records logged with `extra={"secure": True}` also lose every run of 4+ digits. Attach it to
    handlers (a logger's filters do not see records propagated from child loggers): `install()`.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        secure = bool(getattr(record, "secure", False))
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the handler's own error path
            return True
        record.msg = redact(message, digits=secure)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, digits=secure)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, digits=secure)
        return True


def install(logger: logging.Logger | None = None) -> RedactingFilter:
    """Add one `RedactingFilter` to every handler of `logger` (default: the root logger)."""
    target = logger or logging.getLogger()
    flt = RedactingFilter()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(flt)
    return flt

"""Secret never prints its value; the redacting filter masks values that leak into log records."""

from __future__ import annotations

import copy
import io
import json
import logging
import pickle

import pytest

from ivr.identity.secret import MASK, RedactingFilter, Secret, install, redact, registered_values


def test_secret_prints_as_mask_everywhere() -> None:
    s = Secret("735190")
    assert str(s) == MASK
    assert repr(s) == "Secret('***')"
    assert f"{s}" == MASK and f"{s:>10}" == MASK
    assert "%s %r" % (s, s) == f"{MASK} Secret('***')"  # noqa: UP031 (logging uses %-format)
    assert "735190" not in str([s, {"k": s}, (s,)])
    assert s.reveal() == "735190"


def test_secret_refuses_json_and_pickle() -> None:
    with pytest.raises(TypeError):
        json.dumps({"pin": Secret("1234")})
    with pytest.raises(TypeError):
        pickle.dumps(Secret("1234"))
    assert json.dumps({"pin": Secret("1234")}, default=str) == '{"pin": "***"}'


def test_secret_equality_and_no_hash() -> None:
    assert Secret("1234") == Secret("1234")
    assert Secret("1234") != Secret("1235")
    assert Secret("1234") != "1234"
    with pytest.raises(TypeError):
        hash(Secret("1234"))
    s = Secret("99887766")
    assert copy.deepcopy(s) is s and copy.copy(s) is s
    with pytest.raises(TypeError):
        Secret(1234)  # type: ignore[arg-type]


def test_registry_tracks_live_secrets_only() -> None:
    s = Secret("55443322")
    assert "55443322" in registered_values()
    del s
    assert "55443322" not in registered_values()
    short = Secret("12")  # too short to register: it would mask ordinary text
    assert "12" not in registered_values()
    assert short.reveal() == "12"


def test_redact_masks_values_and_digit_runs() -> None:
    keep = Secret("917364")
    assert redact("code 917364 sent") == f"code {MASK} sent"
    assert redact("order 12345, port 8080") == "order 12345, port 8080"
    assert redact("order 12345, port 8080", digits=True) == f"order {MASK}, port {MASK}"
    assert keep.reveal() == "917364"


def _logger_with_stream() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    logger = logging.getLogger("test.secret.filter")
    logger.handlers.clear()
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    return logger, stream


def test_filter_redacts_leaks_args_tracebacks_and_secure_records() -> None:
    logger, stream = _logger_with_stream()
    flt = install(logger)
    assert isinstance(flt, RedactingFilter)
    install(logger)  # idempotent per handler
    assert sum(isinstance(f, RedactingFilter) for f in logger.handlers[0].filters) == 1
    pin = Secret("804213")
    logger.info("leaked %s and %s", pin.reveal(), "ok")
    logger.info("caller keyed 55512", extra={"secure": True})
    logger.info("order 55512 found")
    try:
        raise ValueError(f"bad pin {pin.reveal()}")
    except ValueError:
        logger.exception("failed")
    out = stream.getvalue()
    assert "804213" not in out
    assert "leaked *** and ok" in out
    assert "caller keyed ***" in out
    assert "order 55512 found" in out  # digits masked only in records flagged secure
    assert "ValueError: bad pin ***" in out


def test_filter_never_drops_records() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "broken %d", ("nope",), None)
    assert RedactingFilter().filter(record) is True


def test_redaction_is_no_oracle_and_spares_unrelated_numbers() -> None:
    """A live PIN inside a longer number changes nothing; found on its own, it takes every number with it,
    so a log reader learns neither its digits nor which of the numbers it was."""
    pin = Secret("5550")
    assert redact("calling +12025550101 back") == "calling +12025550101 back"
    assert redact("order 55501 and 15550") == "order 55501 and 15550"
    assert redact("pin 5550 from +12025550101 port 4573") == f"pin {MASK} from +{MASK} port {MASK}"
    assert redact("account 1003 keyed 5550") == f"account {MASK} keyed {MASK}"
    token = Secret("tok-7f3a9c2e51d04b86")
    assert redact("Authorization: Bearer tok-7f3a9c2e51d04b86") == f"Authorization: Bearer {MASK}"
    assert pin.reveal() and token.reveal()


def test_filter_does_not_damage_a_caller_id_that_contains_a_live_pin() -> None:
    logger, stream = _logger_with_stream()
    install(logger)
    pin = Secret("5550")
    logger.info("caller +12025550101 identified")
    assert stream.getvalue().strip() == "caller +12025550101 identified"
    assert pin.reveal() == "5550"

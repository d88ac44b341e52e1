"""The one validation layer: node parameters, settings sections, backend replies and callback records."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ivr.backends.protocols import Customer
from ivr.config import load_settings
from ivr.errors import BackendUnavailable, ConfigError
from ivr.flows.loader import load_flow
from ivr.flows.node import build_params
from ivr.identity.wiring import auth_settings
from ivr.nodes import NODE_TYPES
from ivr.queueing.callbacks import Callback, MalformedRecord, keep_place
from ivr.validation import line_of, validate
from ivr.yamlsrc import load_yaml


def _messages(type_name: str, **raw: object) -> list[str]:
    node, found = build_params(NODE_TYPES[type_name], raw)
    assert node is None
    return [m for _, m in found]


def test_numbers_and_true_false_are_taken_as_written() -> None:
    assert _messages("menu", prompt="m", options={"1": "a"}, retries="3") == [
        "retries: expected a whole number, got '3'"]
    assert _messages("menu", prompt="m", options={"1": "a"}, barge_in=1) == ["barge_in: expected true/false, got 1"]
    assert _messages("gather", prompt="p", var="v", secure="yes") == ["secure: expected true/false, got 'yes'"]
    assert _messages("menu", prompt="m", options={"1": "a"}, timeout=True) == ["timeout: expected a number, got True"]


def test_numbers_are_text_where_text_is_expected() -> None:
    node, found = build_params(NODE_TYPES["menu"], {"prompt": "m", "options": {1: "a", 2: 3}, "timeout": 2})
    assert found == [] and node is not None
    assert dict(node.options) == {"1": "a", "2": "3"}  # type: ignore[attr-defined]
    assert node.timeout == 2.0 and isinstance(node.timeout, float)  # type: ignore[attr-defined]


def test_unknown_and_missing_parameters_and_nested_keys() -> None:
    [unknown] = _messages("say", prompt="welcome", promt="x")
    assert unknown.startswith("unknown parameter 'promt' for say (known: barge_in, prompt")
    assert _messages("say") == ["say needs `prompt`"]
    [case] = _messages("branch", cases=[{"if": "x == 1", "goto": "a", "then": "b"}], **{"else": "b"})
    assert case == "cases.0: unknown key 'then': expected one of goto, if"
    assert _messages("say", prompt="two words") == [
        "prompt: prompt name 'two words' must be one word (use `text:` for inline speech)"]


def test_a_nodes_own_rules_run_after_the_types() -> None:
    assert _messages("gather", prompt="p", var="v", min_digits=5, max_digits=2) == [
        "need 1 <= min_digits <= max_digits <= 64"]


def test_a_nested_error_is_reported_at_its_own_line(tmp_path: Path) -> None:
    text = textwrap.dedent("""\
        flow: t
        start: b
        nodes:
          b:
            type: branch
            cases:
              - {if: "x == 1", goto: h}
              - if: "x == 2"
                goto: [h]
            else: h
          h: {type: hangup}
        """)
    _, found = load_flow(tmp_path / "t.yaml", text, node_types=NODE_TYPES)
    assert [(d.line, d.message) for d in found] == [(9, "node 'b': cases.1.goto: expected text, got ['h']")]
    doc = load_yaml(text, "t.yaml")
    assert line_of(doc["nodes"]["b"], ("cases", 5), 4) == 6  # the deepest key that exists


def test_settings_read_environment_text_as_the_fields_type() -> None:
    s = load_settings(env={"IVR_AGI_PORT": "5000", "IVR_AMI_ENABLED": "off", "IVR_LANGUAGES": "en, it,fr"})
    assert (s.agi_port, s.ami_enabled, s.languages) == (5000, False, ("en", "it", "fr"))
    with pytest.raises(ConfigError, match=r"^setting agi_port: expected a whole number, got 'x'$"):
        load_settings(env={"IVR_AGI_PORT": "x"})
    with pytest.raises(ConfigError, match=r"setting default_language: 'de' is not in languages"):
        load_settings(env={"IVR_DEFAULT_LANGUAGE": "de"})


def test_a_secret_setting_never_echoes_its_value() -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(env={}, overrides={"ami_secret": ["hunter2"]})
    assert str(exc.value) == "setting ami_secret: expected text" and "hunter2" not in str(exc.value)


def test_auth_section_names_its_key() -> None:
    settings = load_settings(env={})
    with pytest.raises(ConfigError, match=r"^setting auth\.max_failures: expected a whole number, got 'many'$"):
        auth_settings(_with_extra(settings, auth={"max_failures": "many"}))
    with pytest.raises(ConfigError, match=r"^setting auth\.colour: unknown key: expected one of "):
        auth_settings(_with_extra(settings, auth={"colour": "blue"}))
    with pytest.raises(ConfigError, match=r"^setting auth: otp_ttl must be within"):
        auth_settings(_with_extra(settings, auth={"otp_ttl": 9000}))
    assert auth_settings(_with_extra(settings, auth={"lockout": 60})).lockout == 60.0


def _with_extra(settings: object, **extra: object) -> object:
    import dataclasses

    return dataclasses.replace(settings, extra=extra)  # type: ignore[type-var]


def test_a_backend_reply_of_the_wrong_shape_names_fields_not_values() -> None:
    from ivr.backends.http import _parse

    cust = _parse("directory", {"id": 7, "name": "Alice", "new_field": 1, "open_orders": [
        {"number": 12, "state": "shipped", "eta": ""}]}, Customer)
    assert cust.id == "7" and cust.open_orders[0].number == "12" and cust.open_orders[0].eta is None
    with pytest.raises(BackendUnavailable) as exc:
        _parse("directory", {"id": "C1", "name": None, "phone": ["+390612345678"]}, Customer)
    assert str(exc.value) == "directory: unexpected reply (name: expected text; phone: expected text)"


def test_a_callback_hash_round_trips_and_a_malformed_one_names_its_fields() -> None:
    cb = keep_place("+390612345678", "support", now=1000.0, ewt=60, position=2, language="it")
    back = Callback.from_hash({**cb.to_hash(), "claimed_at": "1001.5"})
    assert back == cb
    with pytest.raises(MalformedRecord) as exc:
        Callback.from_hash({**cb.to_hash(), "kind": "someday", "attempts": "two"})
    assert "kind" in str(exc.value) and "attempts" in str(exc.value)
    assert "someday" not in str(exc.value) and "+39" not in str(exc.value)


def test_validate_returns_problems_not_exceptions() -> None:
    value, problems = validate(Customer, [1, 2])
    assert value is None and [p.message for p in problems] == ["expected a mapping, got [1, 2]"]


def test_a_typo_in_a_settings_section_names_its_key(tmp_path: Path) -> None:
    conf = tmp_path / "ivr.toml"
    conf.write_text('[agi]\nprot = 4573\n')
    known = (r"header_timeout, host, long_reply_timeout, max_sessions, port, prompt_reply_timeout, "
             r"reply_timeout, resync_timeout")
    with pytest.raises(ConfigError, match=rf"^setting agi\.prot: unknown \(known: {known}\)$"):
        load_settings(conf, env={})
    conf.write_text('[colour]\nx = 1\n')
    with pytest.raises(ConfigError, match=r"^setting colour\.x: unknown"):
        load_settings(conf, env={})
    conf.write_text('[auth]\nmax_failures = 4\notp_key = "k"\n[speech]\nmode = "record"\n')
    s = load_settings(conf, env={})
    assert s.auth_otp_key == "k" and s.extra == {"auth": {"max_failures": 4}, "speech": {"mode": "record"}}

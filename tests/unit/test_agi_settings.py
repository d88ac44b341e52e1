"""The AGI settings: defaults, and bad values named by key."""

from __future__ import annotations

import pytest

from ivr.config import Settings, load_settings
from ivr.errors import ConfigError


def test_defaults() -> None:
    s = Settings()
    assert (s.agi_max_sessions, s.agi_reply_timeout, s.agi_prompt_reply_timeout, s.agi_long_reply_timeout,
            s.agi_resync_timeout) == (1000, 10.0, 600.0, 14400.0, 5.0)


@pytest.mark.parametrize(("env", "key"), [
    ({"IVR_AGI_MAX_SESSIONS": "0"}, "agi_max_sessions"),
    ({"IVR_AGI_REPLY_TIMEOUT": "0"}, "agi_reply_timeout"),
    ({"IVR_AGI_RESYNC_TIMEOUT": "-1"}, "agi_resync_timeout"),
    ({"IVR_AGI_PROMPT_REPLY_TIMEOUT": "20000"}, "agi_prompt_reply_timeout"),  # above the long one
    ({"IVR_AGI_MAX_SESSIONS": "many"}, "agi_max_sessions"),
])
def test_bad_values_name_their_key(env: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError, match=f"setting {key}"):
        load_settings(env=env)


def test_from_the_environment() -> None:
    s = load_settings(env={"IVR_AGI_MAX_SESSIONS": "2", "IVR_AGI_LONG_REPLY_TIMEOUT": "7200"})
    assert s.agi_max_sessions == 2 and s.agi_long_reply_timeout == 7200.0

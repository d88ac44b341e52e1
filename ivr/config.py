"""Frozen settings, layered: defaults < ivr.toml < conf.d/*.toml < IVR_* environment < CLI.

A TOML section/key pair maps to one field: `[agi] port = 4573` is `agi_port`, and the
environment variable `IVR_AGI_PORT`. A bad value raises ConfigError naming its key. The fields are
checked by `ivr.validation` (a new field needs only its line here); sections owned by a feature
(`[auth]`, `[speech]`) stay in `extra` and are checked by their own models.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ivr.errors import ConfigError
from ivr.validation import Checked, CommaList, validate_section


@dataclass(frozen=True)
class Settings(Checked):
    """Every setting of the service, with its default."""

    __strict_scalars__: ClassVar[bool] = False  # the environment gives every value as text

    agi_host: str = "127.0.0.1"
    agi_port: int = 4573
    agi_header_timeout: float = 5.0
    agi_max_sessions: int = 1000  # calls served at once; past it a call is refused (AGISTATUS=FAILURE: fallback)
    agi_reply_timeout: float = 10.0  # s for commands Asterisk answers at once (SET VARIABLE ...); margin for the rest
    agi_prompt_reply_timeout: float = 600.0  # s for STREAM FILE, SAY ..., EXEC Playback: the longest prompt
    agi_long_reply_timeout: float = 14400.0  # s for EXEC Queue, Dial, Record, VoiceMail, AudioSocket ... (a talk)
    agi_resync_timeout: float = 5.0  # s the next command waits for the late reply to a cancelled one, else session ends
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    ami_enabled: bool = True
    ami_host: str = "127.0.0.1"
    ami_port: int = 5038
    ami_user: str = "ivr"
    ami_secret: str = field(default="change-me", repr=False)
    flows_dir: Path = Path("dialplans")
    prompts_dir: Path = Path("prompts")
    prompts_cache: Path = Path("var/prompts")
    prompts_asterisk_dir: str = ""  # how Asterisk sees prompts_cache; empty = the same absolute path
    languages: CommaList = ("en", "it")
    default_language: str = "en"
    default_queue: str = "support"
    journeys_file: Path | None = Path("var/journeys.jsonl")
    drain_seconds: float = 30.0
    reload_watch: bool = True
    log_level: str = "INFO"
    log_format: str = "text"  # text | json
    redis_url: str = ""  # shared state (auth counters, OTPs, callbacks); empty = paths that need it go to a human
    backends_url: str = ""  # self-service backends (the reference backend's contract); empty = none
    # bearer token for the backends (prefer the IVR_BACKENDS_TOKEN environment variable)
    backends_token: str = field(default="", repr=False)
    backends_filler_after: float = 1.5  # seconds before "one moment while I look that up"
    sms_url: str = ""  # SMS gateway: POST {to, text}
    sms_token: str = field(default="", repr=False)
    # HMAC key for one-time codes, the same on every instance (IVR_AUTH_OTP_KEY)
    auth_otp_key: str = field(default="", repr=False)
    phone_region: str = "US"  # how national caller ids are read (E.164 normalisation)
    identify_greet: str = "first"  # the name a caller identified by caller id only hears: full, first, none
    # bearer token for changing endpoints (POST/DELETE); it also reads; empty = they are refused
    http_token: str = field(default="", repr=False)
    # bearer token for views with caller data (live calls, journeys, KPIs)
    http_read_token: str = field(default="", repr=False)
    voicemail_dir: Path = Path("var/voicemail")  # where messages are recorded (service-side path)
    voicemail_asterisk_dir: str = ""  # how Asterisk sees voicemail_dir; empty = the same absolute path
    voicemail_webhook: str = ""  # POSTed {id, caller, language, reason, time, file} for each message
    # bearer token for the webhook (prefer IVR_VOICEMAIL_WEBHOOK_TOKEN)
    voicemail_webhook_token: str = field(default="", repr=False)
    voicemail_webhook_backoff: float = 2.0  # s before the first retry of a failed webhook; doubles each time
    voicemail_webhook_max_backoff: float = 3600.0  # retries never wait longer than this (s); they never stop
    voicemail_max_seconds: int = 120  # default longest message
    announcements_dir: Path = Path("var/announcements")  # ops-line recordings (service-side path)
    announcements_asterisk_dir: str = ""  # how Asterisk sees announcements_dir; empty = the same absolute path
    announcements_ttl: float = 14400.0  # s a published recording stays on when the ops person picks no duration
    callbacks_channel: str = "PJSIP/{number}@trunk"  # how the dialer reaches a customer; {number} is E.164
    callbacks_context: str = "ivr-callbacks"  # dialplan context the answered callback enters
    callbacks_mode: str = "customer_first"  # or agent_first
    callbacks_regions: CommaList = ("US", "IT")  # home regions: other countries are refused
    callbacks_default_region: str = ""  # how a number keyed without +/00 is read; empty = phone_region
    callbacks_max_pending_per_caller: int = 3  # live callbacks one caller id may have booked (any numbers)
    callbacks_max_per_caller_day: int = 5  # callback requests one caller id may make per UTC day
    callbacks_max_per_day: int = 2000  # callback requests the whole service takes per UTC day
    callbacks_lease: float = 30.0  # s a dialer holds a callback it is placing (renewed every lease/3; kill -9: expires)
    callbacks_poll: float = 1.0  # s between two looks for due callbacks
    callbacks_concurrency: int = 4  # attempts one process places at once
    callbacks_retry_base: float = 120.0  # s between the 1st and 2nd attempt; then x retry_factor, at most retry_cap
    callbacks_retry_factor: float = 2.0
    callbacks_retry_cap: float = 1800.0
    callbacks_ring_seconds: float = 30.0  # how long the customer's phone rings
    callbacks_answer_wait: float = 90.0  # customer first: s after the answer for the customer to press 1
    callbacks_agent_context: str = "ivr-callbacks-agent-first"  # agent first: dialplan context (queue, then dial)
    callbacks_agent_wait: float = 600.0  # agent first: s the callback waits in its queue for an agent
    survey_store: Path = Path("var/surveys.jsonl")
    extra: Mapping[str, Any] = field(default_factory=dict)  # sections owned by features (auth, speech ...)

    def problems(self) -> list[str]:
        """Rules across settings (run by the validator); each names its key."""
        found = []
        if self.callbacks_mode not in ("customer_first", "agent_first"):
            found.append(f"setting callbacks_mode: {self.callbacks_mode!r} is not customer_first or agent_first")
        if self.identify_greet not in GREET_POLICIES:
            found.append(f"setting identify_greet: {self.identify_greet!r} is not one of {', '.join(GREET_POLICIES)}")
        if self.default_language not in self.languages:
            found.append(f"setting default_language: {self.default_language!r} is not in languages")
        for key in ("http_token", "http_read_token"):
            if not TOKEN_CHARS.match(getattr(self, key)):
                found.append(f"setting {key}: use printable ASCII without spaces (it is sent in a header)")
        # voicemail and the ops line, callbacks, the AGI listener
        return found + _recording_problems(self) + _callback_problems(self) + _agi_problems(self)

    def asterisk_prompts_dir(self) -> str:
        return self.prompts_asterisk_dir or str(self.prompts_cache.resolve())

    def asterisk_voicemail_dir(self) -> str:
        return self.voicemail_asterisk_dir or str(self.voicemail_dir.resolve())

    def asterisk_announcements_dir(self) -> str:
        return self.announcements_asterisk_dir or str(self.announcements_dir.resolve())


GREET_POLICIES = ("full", "first", "none")
TOKEN_CHARS = re.compile(r"^[!-~]*$")
# Sections whose keys are not Settings fields: each is checked by its feature's own model
# (`[auth]`: ivr.identity.auth.AuthSettings, `[speech]`: ivr.speech.registry.SpeechSettings).
FEATURE_SECTIONS = ("auth", "speech")
FIELDS = {f.name: f for f in dataclasses.fields(Settings) if f.name != "extra"}


def _flatten(doc: Mapping[str, Any], source: str) -> tuple[dict[str, Any], dict[str, Any]]:
    known: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for section, body in doc.items():
        if isinstance(body, dict):
            for key, value in body.items():
                name = f"{section}_{key}"
                if name in FIELDS:
                    known[name] = value
                else:
                    extra.setdefault(section, {})[key] = value
        elif section in FIELDS:
            known[section] = body
        else:
            raise ConfigError(f"{source}: unknown setting {section!r}")
    return known, extra


def load_settings(
    config_file: Path | None = None, env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build Settings from all layers; `config_file` defaults to $IVR_CONFIG or ./ivr.toml if present."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    path = config_file or (Path(env["IVR_CONFIG"]) if env.get("IVR_CONFIG") else Path("ivr.toml"))
    files = [path] if path.exists() else []
    if config_file is not None and not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    confd = path.parent / "conf.d"
    if confd.is_dir():
        files += sorted(confd.glob("*.toml"))
    for f in files:
        try:
            doc = tomllib.loads(f.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{f}: {exc}") from exc
        known, more = _flatten(doc, str(f))
        values.update(known)
        for section, body in more.items():
            extra.setdefault(section, {}).update(body)
    for name in FIELDS:
        if (raw := env.get(f"IVR_{name.upper()}")) is not None:
            values[name] = raw
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    for name in values:
        if name not in FIELDS:
            raise ConfigError(f"unknown setting {name!r}")
    for part, keys in extra.items():
        if part not in FEATURE_SECTIONS:  # a typo in a section of Settings fields
            names = ", ".join(sorted(n.removeprefix(f"{part}_") for n in FIELDS if n.startswith(f"{part}_")))
            raise ConfigError(f"setting {part}.{next(iter(keys))}: unknown"
                              + (f" (known: {names})" if names else f" (no section [{part}])"))
    return validate_section(Settings, {**values, "extra": extra}, "")


def _agi_problems(s: Settings) -> list[str]:
    found = []
    if s.agi_max_sessions < 1:
        found.append(f"setting agi_max_sessions: {s.agi_max_sessions} is not 1 or more")
    for name in ("agi_header_timeout", "agi_reply_timeout", "agi_prompt_reply_timeout", "agi_long_reply_timeout",
                 "agi_resync_timeout"):
        if not getattr(s, name) > 0:
            found.append(f"setting {name}: must be above 0")
    if not s.agi_reply_timeout <= s.agi_prompt_reply_timeout <= s.agi_long_reply_timeout:
        found.append("setting agi_prompt_reply_timeout: must be between agi_reply_timeout and agi_long_reply_timeout")
    return found


def _recording_problems(s: Settings) -> list[str]:
    found = []
    if not 0 < s.voicemail_webhook_backoff <= s.voicemail_webhook_max_backoff:
        found.append("setting voicemail_webhook_backoff: must be above 0 and at most voicemail_webhook_max_backoff")
    if not 1 <= s.voicemail_max_seconds <= 3600:
        found.append(f"setting voicemail_max_seconds: {s.voicemail_max_seconds} is not between 1 and 3600")
    if not 0 < s.announcements_ttl <= 7 * 24 * 3600:
        found.append(f"setting announcements_ttl: {s.announcements_ttl:g} s is not between 0 and 7 days")
    if s.voicemail_webhook and not s.voicemail_webhook.startswith(("http://", "https://")):
        found.append(f"setting voicemail_webhook: {s.voicemail_webhook!r} is not an http(s) URL")
    return found


def _callback_problems(s: Settings) -> list[str]:
    from ivr.queueing.phone import unknown_regions  # phonenumbers is only loaded when settings are

    found = []
    if not s.callbacks_regions:
        found.append("setting callbacks_regions: name at least one region (ISO 3166 code, e.g. US)")
    for key in ("phone_region", "callbacks_default_region", "callbacks_regions"):
        value = getattr(s, key)
        values = [value] if isinstance(value, str) else list(value)
        if bad := unknown_regions([v for v in values if v]):
            found.append(f"setting {key}: unknown region {', '.join(bad)} (ISO 3166 codes, e.g. US, IT)")
    for key in ("callbacks_max_pending_per_caller", "callbacks_max_per_caller_day", "callbacks_max_per_day"):
        if getattr(s, key) < 1:
            found.append(f"setting {key}: must be at least 1")
    return found

"""Builds the optional identity services (backends, SMS gateway, auth) from settings."""

from __future__ import annotations

import logging
import secrets as random_source

from ivr.backends.http import Backends, http_backends
from ivr.config import Settings
from ivr.identity.auth import Auth, AuthSettings
from ivr.identity.secret import Secret
from ivr.identity.sms import HttpSmsGateway
from ivr.store import Store
from ivr.validation import validate_section

log = logging.getLogger("ivr.app")


def backends_from(settings: Settings) -> Backends | None:
    if not settings.backends_url:
        return None
    token = Secret(settings.backends_token) if settings.backends_token else None
    return http_backends(settings.backends_url, token=token)


def auth_from(settings: Settings, store: Store | None, backends: Backends | None) -> Auth | None:
    """Authentication needs Redis (counters, codes) and the accounts backend; else None."""
    if store is None or backends is None:
        return None
    key = settings.auth_otp_key
    if not key:
        key = random_source.token_hex(32)
        log.warning("auth.otp_key is not set: one-time codes only verify on this process "
                    "(set IVR_AUTH_OTP_KEY to the same value on every instance)")
    sms = None
    if settings.sms_url:
        sms = HttpSmsGateway(settings.sms_url,
                             auth_header=Secret(settings.sms_token) if settings.sms_token else None)
    return Auth(store, backends.accounts, otp_key=Secret(key), sms=sms, settings=auth_settings(settings))


def auth_settings(settings: Settings) -> AuthSettings:
    """The `[auth]` section's limits (max_failures, failure_window, lockout, otp_ttl ...)."""
    return validate_section(AuthSettings, dict(settings.extra.get("auth", {})), "auth")

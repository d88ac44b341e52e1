"""Callback number policy: normalise to E.164 and refuse premium-rate, foreign, invalid or unwanted types."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import phonenumbers
from phonenumbers import PhoneNumberType as T

if TYPE_CHECKING:
    from ivr.config import Settings

MAX_INPUT = 32  # characters of raw input; anything longer is refused before parsing
_ALLOWED_CHARS = re.compile(r"^[0-9+()./\s-]+$")

TYPE_NAMES: dict[str, int] = {
    "fixed_line": T.FIXED_LINE, "mobile": T.MOBILE, "toll_free": T.TOLL_FREE,
    "premium_rate": T.PREMIUM_RATE, "shared_cost": T.SHARED_COST, "voip": T.VOIP,
    "personal_number": T.PERSONAL_NUMBER, "pager": T.PAGER, "uan": T.UAN, "voicemail": T.VOICEMAIL,
}
_NAME_OF = {v: k for k, v in TYPE_NAMES.items()}


@dataclass(frozen=True)
class CallbackPolicy:
    """Which numbers the service may call back. Regions are ISO 3166 codes (IT, SM, VA, US ...)."""

    home_regions: frozenset[str] = frozenset({"IT"})
    default_region: str = "IT"  # how a number without +/00 is read
    allowed_types: frozenset[str] = field(default_factory=lambda: frozenset({"mobile", "fixed_line"}))

    @classmethod
    def of(cls, home_regions: Iterable[str], allowed_types: Iterable[str] = ("mobile", "fixed_line"),
           default_region: str | None = None) -> CallbackPolicy:
        """Build from config; raises ValueError naming an unknown region or type."""
        regions = frozenset(r.upper() for r in home_regions)
        types = frozenset(t.lower() for t in allowed_types)
        default = (default_region or sorted(regions)[0] if regions else "").upper()
        bad = unknown_regions([*regions, default]) + [t for t in types if t not in TYPE_NAMES]
        if bad or not regions:
            raise ValueError(f"callback policy: unknown or missing region/type {bad}")
        return cls(regions, default, types)


def callback_policy(settings: Settings) -> CallbackPolicy:
    """The service's policy: `callbacks_regions`; national numbers read in `callbacks_default_region`,
    else `phone_region` (load_settings has checked both)."""
    return CallbackPolicy.of(settings.callbacks_regions,
                             default_region=settings.callbacks_default_region or settings.phone_region)


def unknown_regions(regions: Iterable[str]) -> list[str]:
    """The codes phonenumbers does not know (case-insensitive)."""
    return [r for r in regions if r.upper() not in phonenumbers.SUPPORTED_REGIONS]


@dataclass(frozen=True)
class NumberCheck:
    """The outcome: `e164` when accepted, else a machine-readable `reason`."""

    e164: str | None
    reason: str = ""  # unparseable | invalid | premium_rate | international | type_not_allowed:<type>
    region: str | None = None
    kind: str | None = None  # fixed_line, mobile, fixed_line_or_mobile ...

    @property
    def ok(self) -> bool:
        return self.e164 is not None


def check_callback_number(raw: str, policy: CallbackPolicy) -> NumberCheck:
    """Normalise a number typed or taken from caller ID and apply the policy (pure, no I/O)."""
    text = raw.strip()
    if not text or len(text) > MAX_INPUT or not _ALLOWED_CHARS.match(text):
        return NumberCheck(None, "unparseable")
    try:
        number = phonenumbers.parse(text, policy.default_region)
    except phonenumbers.NumberParseException:
        return NumberCheck(None, "unparseable")
    if not phonenumbers.is_valid_number(number):
        return NumberCheck(None, "invalid")
    region = phonenumbers.region_code_for_number(number)
    ntype = phonenumbers.number_type(number)
    kind = "fixed_line_or_mobile" if ntype == T.FIXED_LINE_OR_MOBILE else _NAME_OF.get(ntype, "unknown")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if ntype == T.PREMIUM_RATE:
        return NumberCheck(None, "premium_rate", region, kind)
    if region not in policy.home_regions:
        return NumberCheck(None, "international", region, kind)
    allowed = policy.allowed_types
    if kind == "fixed_line_or_mobile":
        ok = bool({"fixed_line", "mobile"} & allowed)
    else:
        ok = kind in allowed
    if not ok:
        return NumberCheck(None, f"type_not_allowed:{kind}", region, kind)
    return NumberCheck(e164, "", region, kind)

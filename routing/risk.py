"""The reveal ("little eye") risk policy: plaintext buyer number or privacy number, as a value.

Pure and synchronous: time is passed in, counters are read and written by the caller. The rules,
in the order they are applied (the first that decides names itself in ``RevealDecision.rule``):

1. ``velocity``       — an account that revealed more than ``velocity_limit`` times in the current
                         fixed window of ``velocity_window_seconds`` is refused (HTTP 429); every
                         reveal attempt counts, whatever it yields (scraping looks like bursts).
2. ``plaintext_disabled`` — the platform turned plaintext off: privacy number.
3. ``shop_level``     — shops whose level is in ``privacy_only_levels`` (default ``L0``): privacy.
4. ``order_age``      — orders older than ``plaintext_max_order_age_days``, or of unknown age when
                         ``require_order_age`` is set: privacy.
5. ``daily_quota``    — plaintext needs one unit of the shop's daily quota (per level, else
                         the default); when none is left: privacy. Privacy numbers never consume
                         quota. The quota day is the calendar day in the shop's time zone,
                         else the policy's ``timezone`` (it resets at local midnight); an order
                         revealed again on the same day takes no second unit.
6. ``plaintext_allowed`` — otherwise: plaintext.

Rules are loaded from a TOML file (``load_policy``); absent file → ``RiskPolicy()`` defaults.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from routing.errors import ConfigurationError


class RevealKind(StrEnum):
    PLAINTEXT = "plaintext"
    PRIVACY = "privacy"
    REFUSED = "refused"


DEFAULT_TIMEZONE = "Asia/Shanghai"
"""The quota day's zone, and the default zone of a shop's call log, unless configured."""


class RiskRule(StrEnum):
    VELOCITY = "velocity"
    PLAINTEXT_DISABLED = "plaintext_disabled"
    SHOP_LEVEL = "shop_level"
    ORDER_AGE = "order_age"
    DAILY_QUOTA = "daily_quota"
    PLAINTEXT_ALLOWED = "plaintext_allowed"


@dataclass(frozen=True)
class RiskPolicy:
    plaintext_enabled: bool = True
    privacy_only_levels: frozenset[str] = frozenset({"L0"})
    daily_plaintext_quota: int = 20
    quota_by_level: Mapping[str, int] = field(default_factory=dict)
    timezone: str = DEFAULT_TIMEZONE
    velocity_limit: int = 30
    velocity_window_seconds: int = 600
    plaintext_max_order_age_days: int = 90
    require_order_age: bool = False

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigurationError(f"risk policy: unknown time zone {self.timezone!r}") from exc
        numbers = {
            "daily_plaintext_quota": self.daily_plaintext_quota,
            "velocity_limit": self.velocity_limit,
            "plaintext_max_order_age_days": self.plaintext_max_order_age_days,
            **{f"quota_by_level.{k}": v for k, v in self.quota_by_level.items()},
        }
        for name, value in numbers.items():
            if value < 0:
                raise ConfigurationError(f"risk policy: {name} must be >= 0, got {value}")
        if self.velocity_window_seconds < 1:
            raise ConfigurationError("risk policy: velocity_window_seconds must be >= 1")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def quota_for(self, level: str) -> int:
        return self.quota_by_level.get(level, self.daily_plaintext_quota)


@dataclass(frozen=True)
class RevealContext:
    """What the policy looks at. ``velocity_count`` includes the reveal being decided."""

    shop_id: str
    account_id: str
    shop_level: str
    velocity_count: int
    order_created_at: datetime | None = None
    timezone: str | None = None  # the shop's zone: its quota day (default: the policy's)


@dataclass(frozen=True)
class QuotaPeriod:
    """The quota day a reveal falls in: its key, its limit and when it resets (UTC)."""

    day: date
    limit: int
    resets_at: datetime

    @property
    def key(self) -> str:
        return self.day.isoformat()


@dataclass(frozen=True)
class Assessment:
    """The policy's verdict before the quota: final, or "plaintext if a quota unit is taken"."""

    kind: RevealKind
    rule: RiskRule
    quota: QuotaPeriod
    needs_quota: bool = False


@dataclass(frozen=True)
class RevealDecision:
    kind: RevealKind
    rule: RiskRule
    quota: QuotaPeriod

    @property
    def detail(self) -> str:
        return _RULE_TEXT[self.rule]


_RULE_TEXT: dict[RiskRule, str] = {
    RiskRule.VELOCITY: "too many reveals from this account in a short time",
    RiskRule.PLAINTEXT_DISABLED: "plaintext reveals are disabled on this platform",
    RiskRule.SHOP_LEVEL: "the shop's level does not allow plaintext reveals",
    RiskRule.ORDER_AGE: "the order is too old (or of unknown age) for a plaintext reveal",
    RiskRule.DAILY_QUOTA: "the shop's daily plaintext quota is used up",
    RiskRule.PLAINTEXT_ALLOWED: "plaintext allowed; one unit of the daily quota used",
}


def quota_period(policy: RiskPolicy, level: str, now: datetime,
                 timezone: str | None = None) -> QuotaPeriod:
    """The local calendar day of ``now`` in ``timezone`` (the shop's; default: the policy's
    zone), and the next local midnight."""
    _aware(now)
    zone = ZoneInfo(timezone) if timezone else policy.zone
    local = now.astimezone(zone)
    day = local.date()
    midnight = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return QuotaPeriod(day=day, limit=policy.quota_for(level),
                       resets_at=midnight.astimezone(now.tzinfo))


def velocity_window(policy: RiskPolicy, now: datetime) -> tuple[int, datetime]:
    """The fixed window ``now`` falls in: (window number, window end)."""
    _aware(now)
    size = policy.velocity_window_seconds
    number = int(now.timestamp()) // size
    end = datetime.fromtimestamp((number + 1) * size, tz=now.tzinfo)
    return number, end


def assess(policy: RiskPolicy, ctx: RevealContext, now: datetime) -> Assessment:
    """Apply the rules up to the quota; ``needs_quota`` means "plaintext if a unit is free"."""
    _aware(now)
    period = quota_period(policy, ctx.shop_level, now, ctx.timezone)
    if ctx.velocity_count > policy.velocity_limit:
        return Assessment(RevealKind.REFUSED, RiskRule.VELOCITY, period)
    if not policy.plaintext_enabled:
        return Assessment(RevealKind.PRIVACY, RiskRule.PLAINTEXT_DISABLED, period)
    if ctx.shop_level in policy.privacy_only_levels:
        return Assessment(RevealKind.PRIVACY, RiskRule.SHOP_LEVEL, period)
    if ctx.order_created_at is None:
        if policy.require_order_age:
            return Assessment(RevealKind.PRIVACY, RiskRule.ORDER_AGE, period)
    else:
        _aware(ctx.order_created_at)
        if now - ctx.order_created_at > timedelta(days=policy.plaintext_max_order_age_days):
            return Assessment(RevealKind.PRIVACY, RiskRule.ORDER_AGE, period)
    if period.limit <= 0:
        return Assessment(RevealKind.PRIVACY, RiskRule.DAILY_QUOTA, period)
    return Assessment(RevealKind.PLAINTEXT, RiskRule.PLAINTEXT_ALLOWED, period, needs_quota=True)


def finish(assessment: Assessment, quota_taken: bool) -> RevealDecision:
    """The final decision once the caller tried (or did not need) to take a quota unit."""
    if assessment.needs_quota and not quota_taken:
        return RevealDecision(RevealKind.PRIVACY, RiskRule.DAILY_QUOTA, assessment.quota)
    return RevealDecision(assessment.kind, assessment.rule, assessment.quota)


def _aware(moment: datetime) -> None:
    if moment.tzinfo is None:
        raise ValueError("risk policy needs timezone-aware datetimes")


_KEYS = {f.name for f in fields(RiskPolicy)}


def policy_from_mapping(raw: Mapping[str, Any], source: str = "risk policy") -> RiskPolicy:
    """Build a policy from a parsed TOML table (top level or under ``[risk]``)."""
    table: Mapping[str, Any] = raw.get("risk", raw) if isinstance(raw.get("risk"), dict) else raw
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise ConfigurationError(f"{source}: unknown key(s) {', '.join(unknown)}")
    values: dict[str, Any] = {}
    try:
        for key, value in table.items():
            values[key] = _coerce(key, value)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"{source}: {exc}") from exc
    return RiskPolicy(**values)


def _coerce(key: str, value: Any) -> Any:
    if key in {"plaintext_enabled", "require_order_age"}:
        if not isinstance(value, bool):
            raise TypeError(f"{key} must be true or false")
        return value
    if key == "timezone":
        if not isinstance(value, str):
            raise TypeError("timezone must be a string such as 'Asia/Shanghai'")
        return value
    if key == "privacy_only_levels":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise TypeError("privacy_only_levels must be a list of level names")
        return frozenset(value)
    if key == "quota_by_level":
        if not isinstance(value, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value.values()
        ):
            raise TypeError("quota_by_level must be a table of level = integer")
        return dict(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{key} must be an integer")
    return value


def load_policy(path: Path | None) -> RiskPolicy:
    """The policy in ``path``; defaults when no file is configured. A bad file is one clear line."""
    if path is None:
        return RiskPolicy()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigurationError(f"risk policy file not found: {path}") from exc
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read risk policy file {path}: {exc}") from exc
    return policy_from_mapping(raw, source=f"risk policy file {path}")

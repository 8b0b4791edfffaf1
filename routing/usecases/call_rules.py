"""A shop's carrier call rules: read by the shop and the platform, set by the platform only
(they are what the carrier and the regulator impose, not a shop preference)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from routing.api_ports import Principal
from routing.call_caps import NO_CAPS, parse_caps
from routing.call_rules import (
    CallDirection,
    CallerReporting,
    CallRules,
    CallRulesPort,
    CallWindow,
    ShopCallRules,
)
from routing.errors import InvalidInput
from routing.numbers import DEFAULT_REGION, normalize, normalize_mobile
from routing.shop_views import check_id
from routing.usecases.access import in_shop, platform_only

MAX_GRACE_SECONDS = 7 * 86_400  # the call path looks back this far for ended bindings
MAX_RETENTION_DAYS = 3_650


@dataclass(frozen=True)
class RulesView:
    """The shop's own settings and what they come to with the platform defaults (the
    effective time zone is the shop's, resolved on the call path)."""

    shop_id: str
    own: ShopCallRules
    effective: CallRules


@dataclass(frozen=True)
class RulesChange:
    """Text as a front door received it; ``None`` leaves a setting as it is, ``"default"``
    returns it to the platform default, ``"none"`` (windows) permits any time."""

    direction: str | None = None
    grace_seconds: str | None = None
    fallback_number: str | None = None
    merchant_window: str | None = None
    callback_window: str | None = None
    require_caller_report: str | None = None  # yes | no | default
    caps: str | None = None  # routing.call_caps.parse_caps text | none | default
    warning_seconds: str | None = None  # seconds | default
    record: str | None = None  # yes | no | default
    record_retention_days: str | None = None  # days | default


class ShopCallRulesCases:
    def __init__(self, *, rules: CallRulesPort, region: str = DEFAULT_REGION) -> None:
        self._rules = rules
        self._region = region

    async def get(self, who: Principal, shop_id: str) -> RulesView:
        shop_id = check_id("shop", shop_id)
        in_shop(who, shop_id)
        own = await self._rules.get(shop_id)
        return RulesView(shop_id, own, own.apply(self._rules.defaults, None))

    async def set(self, who: Principal, shop_id: str, change: RulesChange, now: datetime
                  ) -> RulesView:
        shop_id = check_id("shop", shop_id)
        platform_only(who, "set a shop's call rules")
        own = apply_change(await self._rules.get(shop_id), change, self._region)
        own = await self._rules.set(shop_id, own, actor=who.actor, now=now)
        return RulesView(shop_id, own, own.apply(self._rules.defaults, None))

    async def set_reporting(self, who: Principal, shop_id: str, number: str, status: str,
                            now: datetime) -> tuple[str, CallerReporting]:
        """Record whether a caller number was reported to the carrier with its real user
        (the platform does the reporting, so only the platform records it)."""
        shop_id = check_id("shop", shop_id)
        platform_only(who, "record a caller number's reporting status")
        e164 = normalize_mobile(number, self._region)
        try:
            reporting = CallerReporting(status.strip().lower())
        except ValueError:
            choices = "|".join(r.value for r in CallerReporting)
            raise InvalidInput(f"reporting status {status.strip()!r} is not one of "
                               f"{choices}") from None
        await self._rules.set_reporting(shop_id, e164, reporting, actor=who.actor, now=now)
        return e164, reporting


def apply_change(own: ShopCallRules, change: RulesChange, region: str) -> ShopCallRules:
    values: dict[str, object] = {
        "direction": own.direction, "grace_seconds": own.grace_seconds,
        "fallback_number": own.fallback_number, "merchant_window": own.merchant_window,
        "callback_window": own.callback_window,
        "clear_merchant_window": own.clear_merchant_window,
        "clear_callback_window": own.clear_callback_window,
        "require_caller_report": own.require_caller_report,
        "caps": own.caps,
        "warning_seconds": own.warning_seconds,
        "record": own.record,
        "record_retention_days": own.record_retention_days,
    }
    if change.direction is not None:
        values["direction"] = None if _default(change.direction) else _direction(change.direction)
    if change.grace_seconds is not None:
        values["grace_seconds"] = (None if _default(change.grace_seconds)
                                   else _grace(change.grace_seconds))
    if change.fallback_number is not None:
        line = change.fallback_number.strip()
        values["fallback_number"] = (None if _default(line) else ""
                                     if line.lower() == "none" else normalize(line, region))
    for name, window in (("merchant", change.merchant_window),
                         ("callback", change.callback_window)):
        if window is None:
            continue
        default, none = _default(window), window.strip().lower() == "none"
        values[f"{name}_window"] = None if default or none else CallWindow.parse(window)
        values[f"clear_{name}_window"] = none
    if change.warning_seconds is not None:
        values["warning_seconds"] = (None if _default(change.warning_seconds)
                                     else _seconds("warning", change.warning_seconds, 3_600))
    if change.caps is not None:
        text = change.caps.strip()
        values["caps"] = (None if _default(text) else NO_CAPS if text.lower() == "none"
                          else parse_caps(text))
    if change.require_caller_report is not None:
        values["require_caller_report"] = _yes_no(change.require_caller_report)
    if change.record is not None:
        values["record"] = _yes_no(change.record)
    if change.record_retention_days is not None:
        values["record_retention_days"] = (
            None if _default(change.record_retention_days)
            else _days(change.record_retention_days))
    return ShopCallRules(**values)  # type: ignore[arg-type]


def _yes_no(text: str) -> bool | None:
    value = text.strip().lower()
    if value in ("yes", "true", "on"):
        return True
    if value in ("no", "false", "off"):
        return False
    if value == "default":
        return None
    raise InvalidInput(f"{text.strip()!r}: say yes, no or default")


def _days(text: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise InvalidInput(f"retention {text.strip()!r} is not a whole number of days") from None
    if not 1 <= value <= MAX_RETENTION_DAYS:
        raise InvalidInput(f"retention must be 1-{MAX_RETENTION_DAYS} days")
    return value


def _default(text: str) -> bool:
    return text.strip().lower() == "default"


def _direction(text: str) -> CallDirection:
    try:
        return CallDirection(text.strip().lower())
    except ValueError:
        choices = "|".join(d.value for d in CallDirection)
        raise InvalidInput(f"direction {text.strip()!r} is not one of {choices}") from None


def _grace(text: str) -> int:
    return _seconds("grace", text, MAX_GRACE_SECONDS)


def _seconds(what: str, text: str, most: int) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise InvalidInput(f"{what} {text.strip()!r} is not a whole number of seconds") from None
    if not 0 <= value <= most:
        raise InvalidInput(f"{what} must be 0-{most} seconds")
    return value

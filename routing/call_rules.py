"""The carrier call rules a shop's calls obey beyond "A may call B through X": which way calls
may go, a grace window for buyers calling back after expiry, and the permitted call-time window.

Pure: the rules are values (a platform default, overridden per shop), the time is passed in, the
answers are reasons (``routing.reasons``) or marks, never exceptions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from routing.call_caps import NO_CAPS, CallCaps
from routing.errors import InvalidInput
from routing.model import BindingState, Direction, RouteBinding
from routing.reasons import Reason
from routing.risk import DEFAULT_TIMEZONE


class CallDirection(StrEnum):
    """Which calls a shop's bindings carry."""

    BOTH = "both"
    MERCHANT_ONLY = "merchant_only"  # the shop calls buyers; buyers cannot call back
    CALLBACK_ONLY = "callback_only"  # buyers call the shop; the shop cannot call out

    def allows(self, direction: Direction) -> bool:
        if self is CallDirection.MERCHANT_ONLY:
            return direction is Direction.MERCHANT
        if self is CallDirection.CALLBACK_ONLY:
            return direction is Direction.CALLBACK
        return True


class CallerReporting(StrEnum):
    """Whether a caller number was reported to the carrier with its real user."""

    REPORTED = "reported"
    UNREPORTED = "unreported"


class CallMark(StrEnum):
    """What the call log notes about how a call was let through (empty: normally)."""

    NONE = ""
    GRACE = "grace"  # a buyer's callback within the grace window after the binding expired
    FALLBACK = "fallback"  # a buyer's callback after the window, put through to the service line


_WINDOW = re.compile(r"^\s*([01]?\d|2[0-3]):([0-5]\d)\s*-\s*([01]?\d|2[0-4]):([0-5]\d)\s*$")


@dataclass(frozen=True)
class CallWindow:
    """The permitted local call time ``[start, end)``; ``start > end`` spans midnight
    (``22:00-06:00``); ``start == end`` permits no time at all."""

    start: time
    end: time  # time.max stands for 24:00

    @classmethod
    def parse(cls, text: str) -> CallWindow:
        """``HH:MM-HH:MM`` (``24:00`` allowed as an end)."""
        found = _WINDOW.match(text)
        if found is None:
            raise InvalidInput(f"call window {text.strip()!r} is not HH:MM-HH:MM "
                               "(e.g. 08:00-21:00)")
        sh, sm, eh, em = (int(g) for g in found.groups())
        if eh == 24 and em != 0:
            raise InvalidInput(f"call window {text.strip()!r}: 24:00 is the latest end")
        end = time.max if eh == 24 else time(eh, em)
        return cls(time(sh, sm), end)

    def __str__(self) -> str:
        end = "24:00" if self.end == time.max else f"{self.end:%H:%M}"
        return f"{self.start:%H:%M}-{end}"

    def permits(self, local: time) -> bool:
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


@dataclass(frozen=True)
class CallRules:
    """The rules one shop's calls obey (the platform default with the shop's overrides).

    ``grace_seconds`` is how long after expiry a buyer calling back still reaches the shop;
    ``fallback_number`` (E.164, the shop's service line) is where a buyer calling back after
    that goes instead of the "expired" prompt. The windows are in ``timezone`` (the shop's);
    ``None`` permits any time.
    """

    direction: CallDirection = CallDirection.BOTH
    grace_seconds: int = 0
    fallback_number: str = ""
    merchant_window: CallWindow | None = None
    callback_window: CallWindow | None = None
    timezone: str = DEFAULT_TIMEZONE
    require_caller_report: bool = False
    caps: CallCaps = NO_CAPS
    warning_seconds: int = 0  # last-minute warning before the call-length limit (0: none)
    warning_repeat: int = 0
    record: bool = False  # calls are recorded, with a notice to both parties first
    record_retention_days: int = 90  # how long an encrypted recording is kept
    # the shop's caller numbers on this call that are not reported (filled on the call path
    # when the shop requires reporting)
    unreported_callers: frozenset[str] = frozenset()

    def window_for(self, direction: Direction) -> CallWindow | None:
        return self.merchant_window if direction is Direction.MERCHANT else self.callback_window


NO_RULES = CallRules()
"""Everything permitted: what a call is decided under when no rules are known for its shop."""


@dataclass(frozen=True)
class ShopCallRules:
    """A shop's own settings; ``None`` takes the platform default. ``clear_*`` remove a
    default window for this shop (permit any time)."""

    direction: CallDirection | None = None
    grace_seconds: int | None = None
    fallback_number: str | None = None
    merchant_window: CallWindow | None = None
    callback_window: CallWindow | None = None
    clear_merchant_window: bool = False
    clear_callback_window: bool = False
    require_caller_report: bool | None = None
    caps: CallCaps | None = None  # replaces the platform's caps as a whole
    warning_seconds: int | None = None
    record: bool | None = None
    record_retention_days: int | None = None

    def apply(self, defaults: CallRules, timezone: str | None) -> CallRules:
        rules = replace(defaults, timezone=timezone or defaults.timezone)
        if self.direction is not None:
            rules = replace(rules, direction=self.direction)
        if self.grace_seconds is not None:
            rules = replace(rules, grace_seconds=self.grace_seconds)
        if self.fallback_number is not None:
            rules = replace(rules, fallback_number=self.fallback_number)
        if self.clear_merchant_window:
            rules = replace(rules, merchant_window=None)
        elif self.merchant_window is not None:
            rules = replace(rules, merchant_window=self.merchant_window)
        if self.caps is not None:
            rules = replace(rules, caps=self.caps)
        if self.warning_seconds is not None:
            rules = replace(rules, warning_seconds=self.warning_seconds)
        if self.require_caller_report is not None:
            rules = replace(rules, require_caller_report=self.require_caller_report)
        if self.record is not None:
            rules = replace(rules, record=self.record)
        if self.record_retention_days is not None:
            rules = replace(rules, record_retention_days=self.record_retention_days)
        if self.clear_callback_window:
            rules = replace(rules, callback_window=None)
        elif self.callback_window is not None:
            rules = replace(rules, callback_window=self.callback_window)
        return rules


class CallRulesSource(Protocol):
    """The rules of the shops a call may concern, read in one go on the call path (a store
    fault raises ``StoreUnavailable``: the call is refused with ``routing_error``)."""

    async def rules_for(self, shop_ids: frozenset[str]) -> Mapping[str, CallRules]: ...

    async def unreported(self, shop_id: str, numbers: frozenset[str]) -> frozenset[str]:
        """Which of the shop's caller ``numbers`` are not reported (no status = not)."""
        ...


class CallRulesPort(Protocol):
    """Shops' own rules as stored (``NotFound`` for an unknown shop)."""

    @property
    def defaults(self) -> CallRules: ...

    async def get(self, shop_id: str) -> ShopCallRules: ...

    async def set(self, shop_id: str, rules: ShopCallRules, *, actor: str, now: datetime
                  ) -> ShopCallRules: ...

    async def set_reporting(self, shop_id: str, number: str, status: CallerReporting, *,
                            actor: str, now: datetime) -> None: ...

    async def unreported_now(self, shop_id: str, numbers: frozenset[str]) -> frozenset[str]:
        """Which of ``numbers`` are not reported, as stored now."""
        ...

    async def rules_for(self, shop_ids: frozenset[str]) -> Mapping[str, CallRules]:
        """As the call path reads them (``CallRulesSource``)."""
        ...


def local_time(now: datetime, timezone: str) -> time:
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {timezone!r}") from None
    return now.astimezone(zone).time()


def refusal(rules: CallRules, direction: Direction, now: datetime, caller_a: str = ""
            ) -> Reason | None:
    """Why an otherwise valid call on an active binding is refused, or ``None``. ``caller_a``
    is the binding's caller number (an unreported one places no call where the shop requires
    reporting; buyers may still call the shop back)."""
    if not rules.direction.allows(direction):
        return Reason.DIRECTION_REFUSED
    if (direction is Direction.MERCHANT and rules.require_caller_report
            and caller_a in rules.unreported_callers):
        return Reason.CALLER_UNREPORTED
    window = rules.window_for(direction)
    if window is not None and not window.permits(local_time(now, rules.timezone)):
        return Reason.QUIET_HOURS
    return None


def after_expiry(rules: CallRules, binding: RouteBinding, now: datetime) -> CallMark | None:
    """How a call on a binding that is no longer active gets through, or ``None`` (refused,
    ``binding_expired``). Only a buyer calling back on a binding that expired (not one the shop
    released) gets through: within the grace window to the shop (``GRACE``), after it to the
    shop's service line if one is set (``FALLBACK``). The shop calling out after expiry is
    always refused, and so is every call the direction rule forbids."""
    if binding.matched_as is not Direction.CALLBACK or binding.state is BindingState.RELEASED:
        return None
    if not rules.direction.allows(Direction.CALLBACK):
        return None
    if rules.grace_seconds > 0 and now < binding.expires_at + timedelta(
            seconds=rules.grace_seconds):
        return CallMark.GRACE
    if rules.fallback_number:
        return CallMark.FALLBACK
    return None


def warning(rules: CallRules, max_seconds: int) -> tuple[int, int]:
    """(warning, repeat) seconds for a call limited to ``max_seconds``: none when the warning
    would come at or before the call's start."""
    if rules.warning_seconds <= 0 or rules.warning_seconds >= max_seconds:
        return 0, 0
    return rules.warning_seconds, max(0, rules.warning_repeat)

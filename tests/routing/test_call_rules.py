"""The carrier call rules, pure: direction, grace after expiry, the permitted call window; each
rule alone and through the route decision."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

import pytest

from routing.call_caps import CallCaps, Cap, CapSubject, broken, format_caps, parse_caps, to_count
from routing.call_rules import (
    NO_RULES,
    CallDirection,
    CallMark,
    CallRules,
    CallWindow,
    ShopCallRules,
    after_expiry,
    refusal,
    warning,
)
from routing.decide import decide
from routing.errors import InvalidInput
from routing.model import (
    Action,
    BindingState,
    CallContext,
    CallerStatus,
    CallRequest,
    Direction,
    RouteBinding,
    RouteDecision,
    ServiceState,
)
from routing.reasons import Reason

# 04:00 UTC is 12:00 in Shanghai (UTC+8, no DST)
NOON_SHANGHAI = datetime(2026, 11, 28, 4, 0, 0, tzinfo=UTC)
A, B, X = "+8613800000001", "+8613900000001", "+8617000000001"
MAIN, SERVICE_LINE = "+8613800000009", "+8640000000001"
M, C = Direction.MERCHANT, Direction.CALLBACK
DAY = CallWindow.parse("08:00-21:00")


def binding(matched_as: Direction = M, **changes: object) -> RouteBinding:
    base = RouteBinding(
        binding_id="b1", shop_id="shop1", order_id="o1", caller_a=A, virtual_x=X, buyer_b=B,
        expires_at=NOON_SHANGHAI + timedelta(hours=1), state=BindingState.ACTIVE,
        matched_as=matched_as, shop_service=ServiceState.ENABLED,
        caller_status=CallerStatus.APPROVED, main_caller=MAIN,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def call(caller: str = A) -> CallRequest:
    return CallRequest(caller=caller, dialed=X, uniqueid="u1", linkedid="l1")


def decided(b: RouteBinding, rules: CallRules, now: datetime = NOON_SHANGHAI,
            caller: str | None = None) -> RouteDecision:
    who = caller or (A if b.matched_as is M else B)
    return decide(call(who), CallContext(True, (b,)), now, 600, {"shop1": rules})


# ---------------------------------------------------------------------------- direction


@pytest.mark.parametrize(("setting", "direction", "allowed"), [
    (CallDirection.BOTH, M, True),
    (CallDirection.BOTH, C, True),
    (CallDirection.MERCHANT_ONLY, M, True),
    (CallDirection.MERCHANT_ONLY, C, False),
    (CallDirection.CALLBACK_ONLY, M, False),
    (CallDirection.CALLBACK_ONLY, C, True),
])
def test_direction_rule(setting: CallDirection, direction: Direction, allowed: bool) -> None:
    rules = CallRules(direction=setting)
    assert refusal(rules, direction, NOON_SHANGHAI) == (None if allowed
                                                        else Reason.DIRECTION_REFUSED)
    d = decided(binding(direction), rules)
    if allowed:
        assert (d.action, d.reason) == (Action.BRIDGE, Reason.BRIDGED)
    else:
        assert (d.action, d.reason) == (Action.REJECT, Reason.DIRECTION_REFUSED)
        assert d.dial_number == "" and d.binding_id == "b1" and d.direction is direction
        assert d.prompt == Reason.DIRECTION_REFUSED.prompt != ""


def test_rules_of_another_shop_do_not_apply() -> None:
    d = decide(call(), CallContext(True, (binding(),)), NOON_SHANGHAI, 600,
               {"other": CallRules(direction=CallDirection.CALLBACK_ONLY)})
    assert d.action is Action.BRIDGE


def test_disabled_service_is_said_before_direction() -> None:
    d = decided(binding(shop_service=ServiceState.DISABLED),
                CallRules(direction=CallDirection.CALLBACK_ONLY))
    assert d.reason is Reason.SERVICE_DISABLED


# ---------------------------------------------------------------------------- grace after expiry

EXPIRED_AT = NOON_SHANGHAI - timedelta(minutes=10)


@pytest.mark.parametrize(("matched", "state", "grace", "fallback", "expected"), [
    # a buyer calling back within the window still reaches the shop
    (C, BindingState.EXPIRED, 900, "", CallMark.GRACE),
    (C, BindingState.ACTIVE, 900, "", CallMark.GRACE),  # expiry not yet swept
    # after the window: the service line if configured, else refused
    (C, BindingState.EXPIRED, 600, "", None),  # exactly at the window's end: over
    (C, BindingState.EXPIRED, 300, SERVICE_LINE, CallMark.FALLBACK),
    (C, BindingState.EXPIRED, 0, "", None),  # the default: no grace
    # a binding the shop released gets no grace
    (C, BindingState.RELEASED, 900, SERVICE_LINE, None),
    # the shop calling out after expiry: always refused
    (M, BindingState.EXPIRED, 900, SERVICE_LINE, None),
])
def test_after_expiry(matched: Direction, state: BindingState, grace: int, fallback: str,
                      expected: CallMark | None) -> None:
    rules = CallRules(grace_seconds=grace, fallback_number=fallback)
    b = binding(matched, state=state, expires_at=EXPIRED_AT)
    assert after_expiry(rules, b, NOON_SHANGHAI) == expected
    d = decided(b, rules)
    if expected is None:
        assert (d.action, d.reason) == (Action.REJECT, Reason.BINDING_EXPIRED)
        assert d.dial_number == "" and d.mark == ""
    else:
        assert (d.action, d.reason, d.mark) == (Action.BRIDGE, Reason.BRIDGED, expected.value)
        assert d.direction is C and d.present_number == X and d.binding_id == "b1"
        assert d.dial_number == (A if expected is CallMark.GRACE else SERVICE_LINE)


def test_grace_callback_reaches_main_number_once_a_is_disabled() -> None:
    b = binding(C, state=BindingState.EXPIRED, expires_at=EXPIRED_AT,
                caller_status=CallerStatus.DISABLED)
    d = decided(b, CallRules(grace_seconds=3_600))
    assert (d.action, d.dial_number, d.mark) == (Action.BRIDGE, MAIN, "grace")


@pytest.mark.parametrize("setting", [CallDirection.MERCHANT_ONLY])
def test_no_grace_where_callbacks_are_not_allowed(setting: CallDirection) -> None:
    b = binding(C, state=BindingState.EXPIRED, expires_at=EXPIRED_AT)
    rules = CallRules(direction=setting, grace_seconds=3_600, fallback_number=SERVICE_LINE)
    assert decided(b, rules).reason is Reason.BINDING_EXPIRED


def test_no_grace_for_a_disabled_shop() -> None:
    b = binding(C, state=BindingState.EXPIRED, expires_at=EXPIRED_AT,
                shop_service=ServiceState.DISABLED)
    assert decided(b, CallRules(grace_seconds=3_600)).action is Action.REJECT


def test_grace_callback_keeps_the_callback_window() -> None:
    b = binding(C, state=BindingState.EXPIRED, expires_at=EXPIRED_AT)
    rules = CallRules(grace_seconds=3_600, callback_window=CallWindow.parse("13:00-14:00"))
    assert decided(b, rules).reason is Reason.QUIET_HOURS


def test_without_rules_expired_is_expired() -> None:
    b = binding(C, state=BindingState.EXPIRED, expires_at=EXPIRED_AT)
    d = decide(call(B), CallContext(True, (b,)), NOON_SHANGHAI, 600)
    assert d.reason is Reason.BINDING_EXPIRED


# ---------------------------------------------------------------------------- quiet hours


@pytest.mark.parametrize(("window", "local", "permitted"), [
    ("08:00-21:00", time(8, 0), True),
    ("08:00-21:00", time(20, 59, 59), True),
    ("08:00-21:00", time(21, 0), False),
    ("08:00-21:00", time(7, 59, 59), False),
    ("22:00-06:00", time(23, 30), True),  # spans midnight
    ("22:00-06:00", time(5, 59), True),
    ("22:00-06:00", time(6, 0), False),
    ("00:00-24:00", time(23, 59, 59), True),
    ("09:00-09:00", time(9, 0), False),  # an empty window permits nothing
])
def test_window(window: str, local: time, permitted: bool) -> None:
    assert CallWindow.parse(window).permits(local) is permitted


@pytest.mark.parametrize("text", ["8-21", "08:00", "25:00-26:00", "08:60-09:00", "24:30-01:00",
                                  "08:00-24:01", ""])
def test_bad_window_is_a_clear_error(text: str) -> None:
    with pytest.raises(InvalidInput, match="call window"):
        CallWindow.parse(text)


@pytest.mark.parametrize("text", ["08:00-21:00", "22:00-06:00", "00:00-24:00"])
def test_window_round_trips(text: str) -> None:
    assert str(CallWindow.parse(text)) == text


@pytest.mark.parametrize(("utc_hour", "zone", "direction", "reason"), [
    (4, "Asia/Shanghai", M, None),  # 12:00 local
    (14, "Asia/Shanghai", M, Reason.QUIET_HOURS),  # 22:00 local
    (23, "Asia/Shanghai", M, Reason.QUIET_HOURS),  # 07:00 the next day, local
    (14, "Asia/Shanghai", C, None),  # callbacks have no window here
    (14, "UTC", M, None),  # the shop's own zone decides: 14:00 there
    (2, "America/New_York", M, Reason.QUIET_HOURS),  # 21:00 the day before (EST)
])
def test_quiet_hours_in_the_shops_zone(utc_hour: int, zone: str, direction: Direction,
                                       reason: Reason | None) -> None:
    now = datetime(2026, 11, 28, utc_hour, 0, tzinfo=UTC)
    rules = CallRules(merchant_window=DAY, timezone=zone)
    assert refusal(rules, direction, now) == reason
    d = decided(binding(direction, expires_at=now + timedelta(hours=1)), rules, now)
    assert d.reason is (reason or Reason.BRIDGED)


def test_direction_is_said_before_quiet_hours() -> None:
    rules = CallRules(direction=CallDirection.CALLBACK_ONLY,
                      merchant_window=CallWindow.parse("01:00-02:00"))
    assert refusal(rules, M, NOON_SHANGHAI) is Reason.DIRECTION_REFUSED


def test_unknown_zone_fails_closed_as_an_error() -> None:
    with pytest.raises(InvalidInput, match="time zone"):
        refusal(CallRules(merchant_window=DAY, timezone="Mars/Olympus"), M, NOON_SHANGHAI)


# ---------------------------------------------------------------------------- shop overrides

PLATFORM = CallRules(grace_seconds=60, merchant_window=DAY, callback_window=DAY)


@pytest.mark.parametrize(("shop", "zone", "expected"), [
    (ShopCallRules(), None, PLATFORM),
    (ShopCallRules(), "Europe/Berlin", replace(PLATFORM, timezone="Europe/Berlin")),
    (ShopCallRules(direction=CallDirection.MERCHANT_ONLY), None,
     replace(PLATFORM, direction=CallDirection.MERCHANT_ONLY)),
    (ShopCallRules(grace_seconds=0, fallback_number=SERVICE_LINE), None,
     replace(PLATFORM, grace_seconds=0, fallback_number=SERVICE_LINE)),
    (ShopCallRules(merchant_window=CallWindow.parse("09:00-18:00"), clear_callback_window=True),
     None, replace(PLATFORM, merchant_window=CallWindow.parse("09:00-18:00"),
                   callback_window=None)),
])
def test_shop_overrides_the_platform_default(shop: ShopCallRules, zone: str | None,
                                             expected: CallRules) -> None:
    assert shop.apply(PLATFORM, zone) == expected


def test_no_rules_permit_everything() -> None:
    assert NO_RULES.direction is CallDirection.BOTH and NO_RULES.grace_seconds == 0
    assert NO_RULES.merchant_window is None and NO_RULES.callback_window is None


# ---------------------------------------------------------------------------- caller reporting


@pytest.mark.parametrize(("required", "unreported", "direction", "reason"), [
    (True, {A}, M, Reason.CALLER_UNREPORTED),
    (True, set(), M, None),  # A was reported
    (True, {"+8613800000002"}, M, None),  # another number is unreported, not this one
    (False, {A}, M, None),  # not required: nobody asks
    (True, {A}, C, None),  # buyers may still call the shop back
])
def test_unreported_caller_places_no_call(required: bool, unreported: set[str],
                                          direction: Direction, reason: Reason | None) -> None:
    rules = CallRules(require_caller_report=required, unreported_callers=frozenset(unreported))
    assert refusal(rules, direction, NOON_SHANGHAI, A) == reason
    d = decided(binding(direction), rules)
    assert d.reason is (reason or Reason.BRIDGED)
    if reason is not None:
        assert d.dial_number == "" and d.binding_id == "b1"


def test_direction_is_said_before_reporting() -> None:
    rules = CallRules(direction=CallDirection.CALLBACK_ONLY, require_caller_report=True,
                      unreported_callers=frozenset({A}))
    assert refusal(rules, M, NOON_SHANGHAI, A) is Reason.DIRECTION_REFUSED


@pytest.mark.parametrize(("shop", "platform", "expected"), [
    (None, False, False), (None, True, True), (True, False, True), (False, True, False)])
def test_reporting_requirement_per_shop(shop: bool | None, platform: bool,
                                        expected: bool) -> None:
    rules = ShopCallRules(require_caller_report=shop).apply(
        CallRules(require_caller_report=platform), None)
    assert rules.require_caller_report is expected


# ---------------------------------------------------------------------------- call caps


@pytest.mark.parametrize(("text", "expected"), [
    ("", CallCaps()),
    ("caller=20/100", CallCaps(caller=Cap(20, 100))),
    (" caller=1/2 , buyer=0/5,number=30/0 ", CallCaps(Cap(1, 2), Cap(0, 5), Cap(30, 0))),
])
def test_caps_parse_and_format(text: str, expected: CallCaps) -> None:
    assert parse_caps(text) == expected
    assert parse_caps(format_caps(expected)) == expected


@pytest.mark.parametrize("text", ["caller=1", "caller=a/b", "who=1/2", "caller=1/2,caller=3/4",
                                  "caller=-1/5"])
def test_bad_caps_are_a_clear_error(text: str) -> None:
    with pytest.raises(InvalidInput, match="call caps"):
        parse_caps(text)


@pytest.mark.parametrize(("counts", "expected"), [
    ({}, None),
    ({A: (4, 9)}, None),
    ({A: (5, 9)}, CapSubject.CALLER),  # hour full
    ({A: (0, 10)}, CapSubject.CALLER),  # day full
    ({"bidx": (2, 2)}, CapSubject.BUYER),
    ({A: (5, 5), "bidx": (2, 2)}, CapSubject.CALLER),  # the first party is named
    ({X: (99, 99)}, None),  # X has no cap
])
def test_which_cap_one_more_call_breaks(counts: dict[str, tuple[int, int]],
                                        expected: CapSubject | None) -> None:
    caps = CallCaps(caller=Cap(hour=5, day=10), buyer=Cap(day=2))
    counted = to_count(caps, caller_a=A, buyer_key="bidx", virtual_x=X)
    assert [c.subject for c in counted] == [CapSubject.CALLER, CapSubject.BUYER]
    assert broken(counted, counts) == expected
    if expected is not None:
        assert expected.reason.value == f"cap_{expected.value}"


# ---------------------------------------------------------------------------- last-minute warning


@pytest.mark.parametrize(("warn", "repeat", "max_seconds", "expected"), [
    (60, 0, 3_600, (60, 0)),
    (60, 20, 3_600, (60, 20)),
    (0, 20, 3_600, (0, 0)),  # off
    (60, 0, 60, (0, 0)),  # would come at the start: none
    (90, 0, 60, (0, 0)),
    (10, 0, 15, (10, 0)),
])
def test_last_minute_warning(warn: int, repeat: int, max_seconds: int,
                             expected: tuple[int, int]) -> None:
    rules = CallRules(warning_seconds=warn, warning_repeat=repeat)
    assert warning(rules, max_seconds) == expected
    d = decide(call(), CallContext(True, (binding(),)), NOON_SHANGHAI, max_seconds,
               {"shop1": rules})
    assert (d.action, d.warning_seconds, d.warning_repeat) == (Action.BRIDGE, *expected)


def test_a_reject_carries_no_warning() -> None:
    rules = CallRules(warning_seconds=60, direction=CallDirection.CALLBACK_ONLY)
    d = decided(binding(), rules)
    assert d.action is Action.REJECT and d.warning_seconds == 0

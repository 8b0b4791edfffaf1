"""Recording with notice, pure: which calls are recorded (through the route decision), what
becomes of a recording at the call's end and in a sweep, when it is purged."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from routing.call_rules import NO_RULES, CallDirection, CallRules, ShopCallRules
from routing.model import Action, BindingState, Direction
from routing.recording import (
    Fate,
    RecordingState,
    fate_at_end,
    is_recording_id,
    purge_before,
    purge_due,
    recording_id,
    sweep_fate,
)
from tests.routing.test_call_rules import NOON_SHANGHAI, SERVICE_LINE, binding, decided

RECORD = CallRules(record=True)
M, C = Direction.MERCHANT, Direction.CALLBACK
EXPIRED = NOON_SHANGHAI - timedelta(minutes=1)


@pytest.mark.parametrize(("rules", "matched", "changes", "action", "recorded"), [
    (RECORD, M, {}, Action.BRIDGE, True),
    (RECORD, C, {}, Action.BRIDGE, True),
    (NO_RULES, M, {}, Action.BRIDGE, False),  # not opted in
    (CallRules(record=False), C, {}, Action.BRIDGE, False),
    # a grace callback and a fallback to the service line are calls like any other
    (replace(RECORD, grace_seconds=600), C, {"expires_at": EXPIRED,
                                             "state": BindingState.EXPIRED}, Action.BRIDGE, True),
    (replace(RECORD, fallback_number=SERVICE_LINE), C,
     {"expires_at": EXPIRED, "state": BindingState.EXPIRED}, Action.BRIDGE, True),
    # a refused call has nothing to record
    (replace(RECORD, direction=CallDirection.CALLBACK_ONLY), M, {}, Action.REJECT, False),
    (RECORD, M, {"expires_at": EXPIRED, "state": BindingState.EXPIRED}, Action.REJECT, False),
])
def test_which_calls_are_recorded(rules: CallRules, matched: Direction,
                                  changes: dict[str, object], action: Action,
                                  recorded: bool) -> None:
    decision = decided(binding(matched, **changes), rules)
    assert decision.action is action
    assert decision.record is recorded


@pytest.mark.parametrize(("shop", "expected"), [
    (ShopCallRules(), (False, 90)),
    (ShopCallRules(record=True), (True, 90)),
    (ShopCallRules(record=True, record_retention_days=7), (True, 7)),
    (ShopCallRules(record=False), (False, 90)),
])
def test_shop_opts_in_over_the_platform_default(shop: ShopCallRules,
                                                expected: tuple[bool, int]) -> None:
    rules = shop.apply(CallRules(), None)
    assert (rules.record, rules.record_retention_days) == expected


def test_shop_opts_out_of_a_platform_that_records() -> None:
    assert ShopCallRules(record=False).apply(RECORD, None).record is False


@pytest.mark.parametrize(("billsec", "fate"), [
    (0, Fate.DELETE),  # unanswered
    (2, Fate.DELETE),  # under 3 s
    (3, Fate.ENCRYPT),
    (600, Fate.ENCRYPT),
])
def test_fate_at_the_calls_end(billsec: int, fate: Fate) -> None:
    assert fate_at_end(billsec) is fate


@pytest.mark.parametrize(("state", "billsec", "idle", "fate"), [
    (RecordingState.PENDING, 10, 0.5, Fate.WAIT),  # may still be written to
    (RecordingState.PENDING, 10, 5, Fate.ENCRYPT),  # a crash between the end and encryption
    (RecordingState.PENDING, 2, 5, Fate.DELETE),  # too short
    (RecordingState.STORED, 10, 5, Fate.DELETE),  # encrypted, the unlink was lost
    (RecordingState.DISCARDED, 1, 5, Fate.DELETE),
    (RecordingState.FAILED, 10, 5, Fate.DELETE),
    (RecordingState.PURGED, 10, 5, Fate.DELETE),
    (None, None, 5, Fate.WAIT),  # no call record yet: it may still arrive (CSV re-import)
    (None, None, 7_200, Fate.DELETE),  # nobody claimed it: no plaintext kept for ever
])
def test_sweep_fate(state: RecordingState | None, billsec: int | None, idle: float,
                    fate: Fate) -> None:
    assert sweep_fate(state, billsec, idle, settle_seconds=1, orphan_seconds=3_600) is fate


@pytest.mark.parametrize(("age_days", "retention", "due"), [
    (0, 1, False), (0.99, 1, False), (1, 1, True), (89, 90, False), (91, 90, True),
])
def test_purge_due(age_days: float, retention: int, due: bool) -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    stored = now - timedelta(days=age_days)
    assert purge_due(stored, retention, now) is due
    assert (stored <= purge_before(retention, now)) is due


@pytest.mark.parametrize(("text", "valid"), [
    ("rec_" + "0" * 24, True), ("rec_" + "a1" * 12, True), ("rec_" + "0" * 23, False),
    ("rec_" + "G" * 24, False), ("REC_" + "0" * 24, False), ("rec_../../etc/passwd", False),
    ("", False),
])
def test_recording_id_shape(text: str, valid: bool) -> None:
    assert is_recording_id(text) is valid


def test_recording_id_from_random_hex() -> None:
    assert recording_id("AB" * 12) == "rec_" + "ab" * 12
    with pytest.raises(ValueError, match="24 hex"):
        recording_id("xyz")

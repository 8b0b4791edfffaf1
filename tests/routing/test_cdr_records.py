"""From a parsed CDR to the stored call record (``routing.call_log_views``): direction, outcome
and reason text for every ``Reason``, and no plaintext buyer number in any stored field."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agi import channel_vars as cv
from routing.call_log_views import (
    BindingFacts,
    CallRecord,
    Outcome,
    Source,
    reason_text,
    record_from_attempt,
    record_from_cdr,
)
from routing.cdr import (
    CdrEvent,
    billable,
    parse_cdr,
)
from routing.model import Action, CallAttempt, Direction
from routing.number_classes import NumberClasses, RegionClasses, Segment
from routing.numbers import mask
from routing.reasons import Reason
from tests.routing.cdr_fixtures import NAMES, recorded_cdrs

T0 = datetime(2026, 11, 28, 12, 35, tzinfo=UTC)
MERCHANT = "+8613800000001"
BUYER = "+8613900000001"
# Raw buyer/stranger numbers of the recorded session: never in a stored field.
FORBIDDEN = ("13900000001", "13900000002", "13900000003", "13700000000")
BINDING = BindingFacts(binding_id="B-1", shop_id="shop-1", order_id="O-1", buyer_id="buyer-1",
                       caller_a=MERCHANT, virtual_x="9001", buyer_masked=mask(BUYER))


def _cdr(disposition: str = "ANSWERED", answered: bool = True, **fields: str) -> CdrEvent:
    event = CdrEvent(system_name="pbx", uniqueid="u-1", linkedid="u-1", sequence=1, start=T0,
                     answer=T0 + timedelta(seconds=3) if answered else None,
                     end=T0 + timedelta(seconds=30), duration=30, billsec=27 if answered else 0,
                     disposition=disposition, lastapp="Dial", hangup_cause=16)
    return dataclasses.replace(event, **fields)  # type: ignore[arg-type]


def _attempt(reason: Reason, direction: Direction | None = Direction.MERCHANT) -> CallAttempt:
    return CallAttempt(
        uniqueid="u-1", linkedid="", at=T0, caller_masked=mask(MERCHANT), caller_a=MERCHANT,
        virtual_x="9001", action=Action.BRIDGE if reason is Reason.BRIDGED else Action.REJECT,
        reason=reason, direction=direction, binding_id="B-1", shop_id="shop-1", order_id="O-1")


def _expected(reason: Reason, answered: bool) -> Outcome:
    if reason is Reason.ROUTING_ERROR:
        return Outcome.FAILED
    if reason is not Reason.BRIDGED:
        return Outcome.REJECTED
    return Outcome.ANSWERED if answered else Outcome.NOT_ANSWERED


def test_every_reason_has_a_distinct_human_text() -> None:
    texts = [r.text for r in Reason]
    assert all(t.strip() for t in texts) and len(set(texts)) == len(texts)
    assert Reason.CALLER_NOT_AUTHORIZED.text == "caller not authorized"
    assert Reason.BINDING_EXPIRED.text == "number expired"


@pytest.mark.parametrize("answered", [True, False])
@pytest.mark.parametrize("reason", list(Reason))
def test_outcome_and_text_from_the_decision(reason: Reason, answered: bool) -> None:
    cdr = _cdr("ANSWERED" if answered else "NO ANSWER", answered, pn_x="9001")
    record = record_from_cdr(cdr, _attempt(reason), BINDING, Source.AMI)
    assert record.outcome == _expected(reason, answered)
    assert (record.reason, record.reason_text) == (reason.value, reason.text)
    assert record.direction == "merchant" and record.source == "ami"


@pytest.mark.parametrize("reason", list(Reason))
def test_outcome_and_text_from_the_cdr_alone(reason: Reason) -> None:
    """The decision was never written: the CDR's own pn_reason decides."""
    cdr = _cdr(pn_reason=reason.value, pn_x="9001", pn_direction="callback",
               pn_binding="B-1" if reason is Reason.BRIDGED else "")
    record = record_from_cdr(cdr, None, None, Source.CSV)
    assert record.outcome == _expected(reason, True)
    assert (record.reason, record.reason_text) == (reason.value, reason.text)
    assert record.direction == "callback" and record.source == "csv"


@pytest.mark.parametrize("reason", list(Reason))
def test_attempt_without_cdr(reason: Reason) -> None:
    record = record_from_attempt(_attempt(reason), BINDING)
    rejected = reason is not Reason.BRIDGED
    assert record.outcome == (Outcome.FAILED if reason is Reason.ROUTING_ERROR
                              else Outcome.REJECTED if rejected else Outcome.UNKNOWN)
    assert record.reason_text == reason.text and record.disposition == "NO CDR"
    assert record.hangup_cause == (reason.hangup_cause if rejected else None)
    assert record.source == "attempt" and record.caller_a == MERCHANT


MAIN = "+8613800000009"


@pytest.mark.parametrize(("reason", "reached", "expected"), [
    (Reason.BRIDGED, MERCHANT, MERCHANT),  # the binding's own caller number
    (Reason.BRIDGED, MAIN, MAIN),  # it was switched off: the shop's main number took it
    (Reason.SERVICE_DISABLED, "", ""),  # refused: it reached nobody
])
@pytest.mark.parametrize("with_cdr", [True, False], ids=["cdr", "attempt-only"])
def test_a_callback_record_names_the_caller_number_it_reached(
        reason: Reason, reached: str, expected: str, with_cdr: bool) -> None:
    attempt = dataclasses.replace(_attempt(reason, Direction.CALLBACK), caller_a=reached,
                                  caller_masked=mask(BUYER))
    if with_cdr:
        cdr = _cdr(src=BUYER, pn_caller=BUYER, pn_x="9001", pn_direction="callback")
        record = record_from_cdr(cdr, attempt, BINDING, Source.AMI)
    else:
        record = record_from_attempt(attempt, BINDING)
    assert (record.direction, record.caller_a, record.caller_masked) == (
        "callback", expected, mask(BUYER))


@pytest.mark.parametrize(("userfield", "pn_binding", "outcome", "reason", "text"), [
    ("agifail:FAILURE", "", "failed", "routing_error", "routing error"),
    ("AGIFAIL", "", "failed", "routing_error", "routing error"),
    ("rejected", "", "rejected", "", "rejected (reason not recorded)"),
    ("B-1", "B-1", "answered", "bridged", "connected"),
    ("", "", "answered", "", ""),
])
def test_cdr_markers_without_decision(userfield: str, pn_binding: str, outcome: str,
                                      reason: str, text: str) -> None:
    record = record_from_cdr(_cdr(userfield=userfield, pn_binding=pn_binding, pn_x="9001"),
                             None, None, Source.AMI)
    assert (record.outcome, record.reason, record.reason_text) == (outcome, reason, text)


@pytest.mark.parametrize(("reason", "outcome", "text"), [
    ("", "unknown", "no call detail record"), ("made_up", "rejected",
                                                "rejected (reason not recorded)"),
    ("", "answered", ""), ("made_up", "failed", ""),
])
def test_reason_text_of_unknown_codes(reason: str, outcome: str, text: str) -> None:
    assert reason_text(reason, outcome) == text


@pytest.mark.parametrize(("attempt_dir", "cdr_dir", "stored"), [
    (Direction.MERCHANT, "callback", "merchant"),  # the decision wins
    (Direction.CALLBACK, "", "callback"),
    (None, "callback", "callback"),  # a decision without direction: the CDR's
    (None, "merchant", "merchant"),
    (None, "sideways", None),  # garbage is no direction
    (None, "", None),
])
def test_direction(attempt_dir: Direction | None, cdr_dir: str, stored: str | None) -> None:
    record = record_from_cdr(_cdr(pn_direction=cdr_dir, pn_x="9001"),
                             _attempt(Reason.BRIDGED, attempt_dir), None, Source.AMI)
    assert record.direction == stored


@pytest.mark.parametrize(("cdr_dir", "stored"), [
    ("merchant", "merchant"), ("callback", "callback"), ("sideways", None), ("", None)])
def test_direction_without_decision(cdr_dir: str, stored: str | None) -> None:
    record = record_from_cdr(_cdr(pn_direction=cdr_dir, pn_x="9001"), None, None, Source.AMI)
    assert record.direction == stored


# ---- masking: nothing stored carries a plaintext buyer number

def _stored_text(record: CallRecord) -> str:
    return "\n".join(str(v) for v in dataclasses.asdict(record).values())


def _session_calls() -> list[CdrEvent]:
    return billable(recorded_cdrs("asterisk22-session.ami"))


@pytest.mark.parametrize("with_decision", [True, False])
def test_recorded_calls_store_no_plain_buyer_number(with_decision: bool) -> None:
    calls = _session_calls()
    assert len(calls) == 6
    for call in calls:
        attempt = _attempt(Reason.BRIDGED) if with_decision else None
        binding = BINDING if call.pn_binding else None
        for source in Source:
            text = _stored_text(record_from_cdr(call, attempt, binding, source))
            assert not [n for n in FORBIDDEN if n in text], call.uniqueid


def test_a_stranger_calling_in_is_stored_masked() -> None:
    (stranger,) = [c for c in _session_calls() if c.userfield == "rejected"]
    record = record_from_cdr(stranger, None, None, Source.AMI)
    assert record.caller_masked == "137****0000" and record.caller_a == ""


_national = st.from_regex(r"\A1[3-9][0-9]{9}\Z")


@given(_national, st.sampled_from(["", "+86", "0086", "86"]), st.sampled_from(list(Reason)),
       st.sampled_from(["merchant", "callback", ""]), st.booleans(), st.booleans())
def test_no_stored_field_carries_the_buyer(national: str, prefix: str, reason: Reason,
                                           direction: str, with_attempt: bool,
                                           with_binding: bool) -> None:
    """The buyer may be the caller (callback: src and pn_caller) or the callee (dst, channel):
    whatever the CDR, the decision and the binding, the stored record shows it masked only."""
    buyer = prefix + national
    callback = direction == "callback"
    cdr = _cdr(src=buyer if callback else MERCHANT, dst="9001" if callback else buyer,
               pn_caller=buyer if callback else MERCHANT, pn_x="9001", pn_reason=reason.value,
               pn_direction=direction, channel=f"Local/{buyer}@pn-buyer-1;2")
    binding = dataclasses.replace(BINDING, buyer_masked=mask(buyer)) if with_binding else None
    attempt = None
    if with_attempt:
        attempt = dataclasses.replace(
            _attempt(reason, Direction(direction) if direction else None),
            caller_masked=mask(buyer) if callback else mask(MERCHANT),
            caller_a="" if callback else MERCHANT)
    record = record_from_cdr(cdr, attempt, binding, Source.AMI)
    assert national not in _stored_text(record)
    assert national[-4:] in record.caller_masked or not callback


def _csv_like(reason: str, lastdata: str = "", x: str = "+8617000000001") -> dict[str, str]:
    """A CDR as the safety-net CSV gives it: lastapp but no lastdata column."""
    return {"uniqueid": "pbx-9.1", "start": "2026-11-28 10:00:00", "end": "2026-11-28 10:00:03",
            "disposition": "ANSWERED", "lastapp": "Hangup", "lastdata": lastdata,
            cv.CDR_REASON: reason, cv.CDR_X: x}


@pytest.mark.parametrize("reason", [r for r in Reason if r is not Reason.BRIDGED])
def test_without_lastdata_a_refused_call_gets_the_cause_its_reason_hangs_up_with(
        reason: Reason) -> None:
    assert parse_cdr(_csv_like(reason.value), NAMES, UTC).hangup_cause == reason.hangup_cause


def test_lastdata_wins_and_a_bridged_call_keeps_the_disposition_cause() -> None:
    assert parse_cdr(_csv_like("routing_error", "34"), NAMES, UTC).hangup_cause == 34
    bridged = dict(_csv_like("bridged"), lastapp="Dial")
    assert parse_cdr(bridged, NAMES, UTC).hangup_cause == 16  # ANSWERED: normal clearing


@pytest.mark.parametrize("dialled", ["17000000001", "+86 170-0000-0001", "+8617000000001"])
def test_x_is_stored_in_e164_whatever_the_dialplan_copied(dialled: str) -> None:
    assert parse_cdr(_csv_like("routing_error", x=dialled), NAMES, UTC).pn_x == "+8617000000001"


@pytest.mark.parametrize("dialled", ["700123456789012", "86700123456789012",
                                     "+86700123456789012"])
def test_a_700_x_is_stored_like_the_pool_holds_it(dialled: str) -> None:
    event = parse_cdr(_csv_like("routing_error", x=dialled), NAMES, UTC)
    assert event.pn_x == "+86700123456789012"
    only_gb = NumberClasses.of([RegionClasses("GB", segments=(Segment("99", 12),))])
    custom = parse_cdr(_csv_like("routing_error", x="0044991234567890"), NAMES, UTC, "", only_gb)
    assert custom.pn_x == "+44991234567890"
    assert parse_cdr(_csv_like("routing_error", x="0044991234567890"), NAMES, UTC
                     ).pn_x == "0044991234567890"  # no such segment by default
    garbage = parse_cdr(_csv_like("routing_error", x="7001"), NAMES, UTC)
    assert garbage.pn_x == "7001"  # kept as it came: the record still says what was dialled

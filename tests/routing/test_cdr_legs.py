"""``routing.cdr`` legs: the billable leg of each recorded call, split-CDR merges.

The transcripts in ``tests/fixtures/ami/`` are real Asterisk 22 AMI streams (one per scenario,
plus the whole session); the safety-net CSV was written by the same Asterisk for the same calls.
"""

from __future__ import annotations

import csv
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agi import channel_vars as cv
from routing.cdr import (
    CdrEvent,
    billable,
    merge_forks,
    parse_cdr,
)
from tests.routing.cdr_fixtures import FIXTURES, NAMES, recorded_cdrs

T0 = datetime(2026, 11, 28, 12, 35, tzinfo=UTC)


def _csv_events() -> list[CdrEvent]:
    # Recorded before the columns of cv.CDR_CSV_LATER existed: the rows end before them.
    with (FIXTURES / "cdr-custom-session.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert all(len(r) == len(cv.CDR_CSV_COLUMNS) - len(cv.CDR_CSV_LATER) for r in rows)
    return [parse_cdr(dict(zip(cv.CDR_CSV_COLUMNS, row, strict=False)), NAMES, UTC, "pnlab")
            for row in rows]


# scenario -> (uniqueid, binding, x, disposition, answered?, duration, billsec, cause, forks,
#              end second, user field)
SCENARIOS = {
    "bridged-local-9001.ami": ("b4f3cce0-9778-4025-adf8-d6aac89dde5f-2", "B-9001", "9001",
                               "ANSWERED", True, 2, 2, 16, 1, 44, "B-9001"),
    "bridged-local-9002-a.ami": ("c82ae124-8572-4550-99f1-52622a109e17-2", "B-9002", "9002",
                                 "ANSWERED", True, 2, 2, 16, 1, 46, "B-9002"),
    "bridged-local-9002-b.ami": ("6889df5c-93d6-4a43-80c4-d4705d7479b3-2", "B-9002", "9002",
                                 "ANSWERED", True, 2, 2, 16, 1, 49, "B-9002"),
    "bridged-sip-9003.ami": ("pnlab-1795869349.39", "B-9003", "9003", "ANSWERED", True,
                             1, 1, 16, 2, 51, "B-9003"),  # split CDR: sequences 22 and 27
    "rejected-stranger.ami": ("bd9af966-a97e-492d-b6f2-fb0388895de9-2", "", "9001",
                              "NO ANSWER", False, 0, 0, 21, 1, 49, "rejected"),  # Hangup(21)
    "agi-down.ami": ("2fef1daa-4a9e-4e3f-9eba-3c628537ab70-2", "", "9001", "NO ANSWER", False,
                     0, 0, 38, 1, 52, "agifail:FAILURE"),  # fail closed: Hangup(38)
}


def test_every_scenario_file_is_covered() -> None:
    on_disk = {p.name for p in FIXTURES.glob("*.ami")} - {"asterisk22-session.ami"}
    assert on_disk == set(SCENARIOS)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_one_billable_leg_per_recorded_call(name: str) -> None:
    uid, binding, x, disposition, answered, duration, billsec, cause, forks, end_s, user = (
        SCENARIOS[name])
    events = recorded_cdrs(name)
    assert len(events) >= 2  # the Local halves / outbound legs are there too ...
    (call,) = billable(events)  # ... and dropped
    assert (call.uniqueid, call.pn_binding, call.pn_x) == (uid, binding, x)
    assert (call.disposition, call.answer is not None) == (disposition, answered)
    assert (call.duration, call.billsec, call.hangup_cause) == (duration, billsec, cause)
    assert call.forks == forks and call.end.second == end_s and call.userfield == user
    assert call.system_name == "pnlab" and call.start.tzinfo is UTC
    untagged = [e for e in events if e.uniqueid != uid]
    assert untagged and not any(e.is_call_record for e in untagged)


def test_session_gives_each_call_once_in_first_seen_order() -> None:
    calls = billable(recorded_cdrs("asterisk22-session.ami"))
    assert [c.uniqueid for c in calls] == [SCENARIOS[n][0] for n in (
        "bridged-local-9001.ami", "bridged-local-9002-a.ami", "bridged-local-9002-b.ami",
        "rejected-stranger.ami", "bridged-sip-9003.ami", "agi-down.ami")]


def test_safety_net_csv_agrees_with_ami() -> None:
    """Same calls, same UTC times and counters from either source (the CSV lacks the user
    field, so the rejected/agifail markers only come over AMI)."""
    ami = {c.uniqueid: c for c in billable(recorded_cdrs("asterisk22-session.ami"))}
    from_csv = {c.uniqueid: c for c in billable(_csv_events())}
    assert set(ami) == set(from_csv)
    for uid, call in ami.items():
        other = from_csv[uid]
        assert (other.start, other.answer, other.end) == (call.start, call.answer, call.end)
        assert (other.duration, other.billsec, other.disposition, other.forks) == (
            call.duration, call.billsec, call.disposition, call.forks)
        assert (other.pn_binding, other.pn_x) == (call.pn_binding, call.pn_x)
        # The CSV contract has no ``lastdata`` column and these two recordings predate
        # pn_reason, so Hangup(21)/Hangup(38) reads as the disposition's default cause there
        # (NO ANSWER -> 19); with pn_reason set the cause follows it (test_cdr_records).
        hung_up = uid in (SCENARIOS["rejected-stranger.ami"][0], SCENARIOS["agi-down.ami"][0])
        assert other.hangup_cause == (19 if hung_up else call.hangup_cause)


@given(st.permutations(range(len(recorded_cdrs("asterisk22-session.ami")))))
def test_billable_does_not_depend_on_arrival_order(order: list[int]) -> None:
    events = recorded_cdrs("asterisk22-session.ami")
    expected = {c.key: c for c in billable(events)}
    assert {c.key: c for c in billable([events[i] for i in order])} == expected


# ---- split CDRs (same uniqueid, two sequences)

def _fork(sequence: int, **changes: object) -> CdrEvent:
    base = CdrEvent(system_name="pbx", uniqueid="u-1", linkedid="l-1", sequence=sequence,
                    start=T0, answer=None, end=T0 + timedelta(seconds=5), duration=5,
                    billsec=0, disposition="NO ANSWER", lastapp="Dial", hangup_cause=19)
    return replace(base, **changes)  # type: ignore[arg-type]


def test_merge_of_a_split_cdr() -> None:
    first = _fork(22, pn_binding="B-1", pn_x="9001", pn_caller="13800000001",
                  userfield="B-1")
    second = _fork(27, start=T0 + timedelta(seconds=5), answer=T0 + timedelta(seconds=6),
                   end=T0 + timedelta(seconds=30), duration=25, billsec=24,
                   disposition="ANSWERED", lastapp="Hangup", hangup_cause=16,
                   pn_reason="bridged")
    merged = merge_forks(second, first)
    assert merged == merge_forks(first, second)  # argument order does not matter
    assert (merged.sequence, merged.forks) == (22, 2)
    assert (merged.start, merged.answer, merged.end) == (
        T0, T0 + timedelta(seconds=6), T0 + timedelta(seconds=30))
    assert (merged.duration, merged.billsec) == (30, 24)
    assert (merged.disposition, merged.lastapp, merged.hangup_cause) == (
        "ANSWERED", "Hangup", 16)
    assert (merged.pn_binding, merged.pn_x, merged.pn_reason, merged.pn_caller) == (
        "B-1", "9001", "bridged", "13800000001")


@pytest.mark.parametrize(("a", "b", "best"), [
    ("ANSWERED", "NO ANSWER", "ANSWERED"), ("NO ANSWER", "BUSY", "BUSY"),
    ("CONGESTION", "NO ANSWER", "NO ANSWER"), ("FAILED", "CONGESTION", "CONGESTION"),
    ("", "FAILED", "FAILED"), ("", "", ""),
])
def test_merge_keeps_the_best_disposition(a: str, b: str, best: str) -> None:
    assert merge_forks(_fork(1, disposition=a), _fork(2, disposition=b)).disposition == best
    assert merge_forks(_fork(2, disposition=b), _fork(1, disposition=a)).disposition == best


def test_merge_keeps_the_earlier_cause_when_the_later_has_none() -> None:
    merged = merge_forks(_fork(1, hangup_cause=21), _fork(2, hangup_cause=None))
    assert merged.hangup_cause == 21


def test_three_forks_merge_into_one_record_and_other_systems_stay_apart() -> None:
    forks = [_fork(n, pn_x="9001", duration=1, billsec=1) for n in (3, 1, 2)]
    other_pbx = _fork(1, system_name="pbx2", pn_x="9001")
    (call, other) = billable([*forks, other_pbx])
    assert (call.forks, call.duration, call.billsec, call.sequence) == (3, 3, 3, 1)
    assert other.system_name == "pbx2" and other.forks == 1


def test_untagged_legs_are_not_call_records() -> None:
    assert billable([_fork(1), _fork(2, uniqueid="u-2", userfield="B-1")]) == []


@pytest.mark.parametrize("tag", ["pn_x", "pn_binding", "pn_reason", "pn_caller", "pn_shop"])
def test_any_routing_fact_tags_the_call_record(tag: str) -> None:
    (call,) = billable([_fork(1, **{tag: "v"})])
    assert call.uniqueid == "u-1"

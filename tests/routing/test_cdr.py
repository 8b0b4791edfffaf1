"""``routing.cdr`` parsing: AMI headers, zone-less local times, CSV rows, malformed input.

Pure: no store, no socket. Field names come from the dialplan contract (``agi.channel_vars``).
"""

from __future__ import annotations

import csv
import io
import string
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from agi import channel_vars as cv
from agi.ami_cdr import cdr_from_ami
from routing.call_ids import is_call_id
from routing.cdr import (
    STANDARD_AMI_HEADERS,
    CdrEvent,
    ami_to_fields,
    encode_ami_message,
    iter_ami_messages,
    local_to_utc,
    parse_cdr,
    split_ami_stream,
)
from routing.errors import CdrFormatError
from tests.routing.cdr_fixtures import NAMES

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
KOLKATA = ZoneInfo("Asia/Kolkata")
CHATHAM = ZoneInfo("Pacific/Chatham")
BUYER = "13900000001"
BASE = {"uniqueid": "u-1", "start": "2026-11-28 20:35:42", "end": "2026-11-28 20:35:44"}


def _cdr(zone: tzinfo = UTC, /, **fields: str) -> CdrEvent:
    return parse_cdr({**BASE, **fields}, NAMES, zone)


# ---- AMI headers -> CDR variables

def test_ami_headers_map_to_cdr_variables_case_insensitively() -> None:
    headers = {"Event": "Cdr", "uniqueid": "u-9", "SOURCE": "13800000001", "Destination": "9001",
               "StartTime": "2026-11-28 12:00:00", "BillableSeconds": "7", "PnX": "9001",
               "pnbinding": "B-1", "LinkedID": "l-9", "Sequence": "4", "SystemName": "pbx1"}
    fields = ami_to_fields(headers, cv.CDR_AMI_HEADERS)
    assert fields["uniqueid"] == "u-9" and fields["src"] == "13800000001"
    assert fields["billsec"] == "7" and fields[cv.CDR_X] == "9001"
    assert fields[cv.CDR_BINDING] == "B-1" and fields["linkedid"] == "l-9"
    assert fields["systemname"] == "pbx1"
    # every standard and custom variable is present; absent headers are empty
    assert set(STANDARD_AMI_HEADERS) | set(cv.CDR_AMI_HEADERS) <= set(fields)
    assert fields["answer"] == "" and fields[cv.CDR_REASON] == ""


def test_non_text_header_values_are_ignored() -> None:
    headers: dict[str, object] = {"UniqueID": "u-1", "StartTime": "2026-11-28 12:00:00",
                                  "Duration": 5, "Source": None}
    fields = ami_to_fields(headers, cv.CDR_AMI_HEADERS)  # type: ignore[arg-type]
    assert fields["duration"] == "" and fields["src"] == ""
    assert parse_cdr(fields, NAMES, UTC).duration == 0


def test_system_name_from_event_else_configured() -> None:
    assert parse_cdr({**BASE, "systemname": "pbx1"}, NAMES, UTC, "fallback").system_name == "pbx1"
    assert parse_cdr(BASE, NAMES, UTC, "fallback").system_name == "fallback"


def test_linkedid_defaults_to_uniqueid_and_end_to_start() -> None:
    event = parse_cdr({"uniqueid": "u-7", "start": "2026-11-28 12:00:00"}, NAMES, UTC)
    assert event.linkedid == "u-7" and event.end == event.start and event.answer is None


@pytest.mark.parametrize(("uniqueid", "linkedid"), [
    ("x" * 65, ""), (BUYER, ""), ("+86" + BUYER, "pnlab-1795869349.1"), ("a b", "a b"),
    ("pnlab-1390000000.1", ""),  # Asterisk's shape, but the digits are the caller's number
])
def test_an_id_that_is_not_asterisks_is_replaced_the_same_way_from_ami_and_csv(
        uniqueid: str, linkedid: str) -> None:
    fields = {**BASE, "uniqueid": uniqueid, "linkedid": linkedid, "src": BUYER,
              "sequence": "42"}
    event = parse_cdr(fields, NAMES, UTC)
    again = parse_cdr({**fields, "start": BASE["start"] + ".250000"}, NAMES, UTC)
    assert event.uniqueid.startswith("cdr-") and event.uniqueid == again.uniqueid
    assert event.linkedid in (event.uniqueid, linkedid)
    assert BUYER not in repr(event) + event.uniqueid + event.linkedid
    other = parse_cdr({**fields, "sequence": "43"}, NAMES, UTC)
    assert other.uniqueid != event.uniqueid  # another record, another id


def test_a_linkedid_holding_the_callers_number_becomes_the_uniqueid() -> None:
    event = _cdr(linkedid=BUYER, src=BUYER)
    assert (event.uniqueid, event.linkedid) == ("u-1", "u-1")


def test_a_cdr_error_never_echoes_its_uniqueid() -> None:
    with pytest.raises(CdrFormatError) as caught:
        parse_cdr({"uniqueid": BUYER}, NAMES, UTC)
    assert BUYER not in str(caught.value)


def test_raw_numbers_stay_out_of_repr() -> None:
    event = _cdr(src=BUYER, dst=BUYER, **{cv.CDR_CALLER: BUYER},
                 channel=f"Local/{BUYER}@pn-buyer-1;2")
    assert BUYER not in repr(event) and BUYER not in str(event)


def test_ami_stream_split_banner_repeats_and_empty_values() -> None:
    raw = (b"Asterisk Call Manager/11.0.0\r\n"
           b"Event: Cdr\r\nUniqueID: a\r\nUniqueID: b\r\nPeerAccount:\r\nLastData: x: y\r\n\r\n"
           b"Event: FullyBooted\r\n\r\n\r\n")
    banner, messages = split_ami_stream(raw)
    assert banner == "Asterisk Call Manager/11.0.0"
    assert messages == [{"Event": "Cdr", "UniqueID": "b", "PeerAccount": "", "LastData": "x: y"},
                        {"Event": "FullyBooted"}]


_header_name = st.text(string.ascii_letters + string.digits + "-", min_size=1, max_size=20)
_header_value = st.text(st.characters(blacklist_characters="\r\n", codec="utf-8"), max_size=40)


@given(st.lists(st.dictionaries(_header_name, _header_value, min_size=1, max_size=8),
                max_size=6))
def test_ami_messages_round_trip(messages: list[dict[str, str]]) -> None:
    data = b"".join(encode_ami_message(m) for m in messages).decode()
    assert list(iter_ami_messages(data)) == messages


# ---- zone-less local times -> UTC

@pytest.mark.parametrize(("zone", "local", "utc"), [
    (UTC, "2026-11-28 12:35:42", datetime(2026, 11, 28, 12, 35, 42, tzinfo=UTC)),
    (SHANGHAI, "2026-11-28 20:35:42", datetime(2026, 11, 28, 12, 35, 42, tzinfo=UTC)),
    (SHANGHAI, "2026-01-01 07:59:59", datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)),
    (KOLKATA, "2026-11-28 18:05:42", datetime(2026, 11, 28, 12, 35, 42, tzinfo=UTC)),
    (CHATHAM, "2026-07-01 00:45:00", datetime(2026, 6, 30, 12, 0, tzinfo=UTC)),  # +12:45
    (NEW_YORK, "2026-01-15 12:00:00", datetime(2026, 1, 15, 17, 0, tzinfo=UTC)),  # EST
    (NEW_YORK, "2026-07-15 12:00:00", datetime(2026, 7, 15, 16, 0, tzinfo=UTC)),  # EDT
    (BERLIN, "2026-01-15 12:00:00", datetime(2026, 1, 15, 11, 0, tzinfo=UTC)),  # CET
    (BERLIN, "2026-07-15 12:00:00", datetime(2026, 7, 15, 10, 0, tzinfo=UTC)),  # CEST
    # DST fall-back (01:00-02:00 happens twice): the first occurrence, still EDT
    (NEW_YORK, "2026-11-01 01:30:00", datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),
    (BERLIN, "2026-10-25 02:30:00", datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
    # spring-forward gap (02:00-03:00 does not exist): read with the offset before the jump
    (NEW_YORK, "2026-03-08 02:30:00", datetime(2026, 3, 8, 7, 30, tzinfo=UTC)),
    # 'T' separator, microseconds, surrounding blanks
    (UTC, "2026-11-28T12:35:42", datetime(2026, 11, 28, 12, 35, 42, tzinfo=UTC)),
    (SHANGHAI, " 2026-11-28 20:35:42.250000 ",
     datetime(2026, 11, 28, 12, 35, 42, 250000, tzinfo=UTC)),
    (UTC, "2026-11-28 12:35:42.5", datetime(2026, 11, 28, 12, 35, 42, 500000, tzinfo=UTC)),
])
def test_local_time_to_utc(zone: tzinfo, local: str, utc: datetime) -> None:
    got = local_to_utc(local, zone)
    assert got == utc and got is not None and got.utcoffset() == timedelta(0)


@pytest.mark.parametrize("zone", [UTC, SHANGHAI, NEW_YORK, BERLIN])
def test_every_cdr_time_is_utc(zone: tzinfo) -> None:
    event = _cdr(zone, answer="2026-11-28 20:35:43")
    for value in (event.start, event.answer, event.end):
        assert value is not None and value.tzinfo is UTC
    assert event.end - event.start == timedelta(seconds=2)


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_time_is_none(text: str) -> None:
    assert local_to_utc(text, SHANGHAI) is None


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31),
                    timezones=st.just(UTC)),
       st.sampled_from([UTC, SHANGHAI, NEW_YORK, BERLIN, KOLKATA, CHATHAM]))
def test_local_time_round_trip(moment: datetime, zone: ZoneInfo) -> None:
    """What Asterisk writes for an instant (its local wall clock) reads back as that instant,
    except the second pass through a fall-back hour, which the text cannot tell apart."""
    wall = moment.astimezone(zone)
    assume(wall.fold == 0)
    text = wall.replace(tzinfo=None).isoformat(sep=" ")
    assert local_to_utc(text, zone) == moment


# ---- the safety-net CSV (cdr_custom), columns in agi.channel_vars.CDR_CSV_COLUMNS order

def _csv_line(values: dict[str, str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\n").writerow(
        [values.get(c, "") for c in cv.CDR_CSV_COLUMNS])
    return buf.getvalue()


def _from_csv(line: str, zone: tzinfo = UTC) -> CdrEvent:
    (row,) = list(csv.reader(io.StringIO(line)))
    # Recorded rows may predate the columns of cv.CDR_CSV_LATER (they then end before them).
    assert len(cv.CDR_CSV_COLUMNS) - len(cv.CDR_CSV_LATER) <= len(row) <= len(cv.CDR_CSV_COLUMNS)
    return parse_cdr(dict(zip(cv.CDR_CSV_COLUMNS, row, strict=False)), NAMES, zone, "pnlab")


def test_csv_row_in_contract_order() -> None:
    line = ('"merchant42","13800000001","9001","pn-inbound","""Merchant"" <13800000001>",'
            '"Local/9001@pn-inbound-00000004;2","Local/13900000001@pn-buyer-00000005;1","Dial",'
            '"2026-11-28 20:35:42","2026-11-28 20:35:43","2026-11-28 20:35:44","2","1",'
            '"ANSWERED","DOCUMENTATION","uid-2","uid","9","B-9001","shop-1","O-1","9001",'
            '"bridged","merchant","13800000001"\n')
    event = _from_csv(line, SHANGHAI)
    assert (event.uniqueid, event.linkedid, event.sequence) == ("uid-2", "uid", 9)
    assert event.start == datetime(2026, 11, 28, 12, 35, 42, tzinfo=UTC)
    assert event.answer == datetime(2026, 11, 28, 12, 35, 43, tzinfo=UTC)
    assert (event.duration, event.billsec, event.disposition) == (2, 1, "ANSWERED")
    assert (event.pn_binding, event.pn_shop, event.pn_order, event.pn_x) == (
        "B-9001", "shop-1", "O-1", "9001")
    assert (event.pn_reason, event.pn_direction, event.pn_caller) == (
        "bridged", "merchant", "13800000001")
    assert event.accountcode == "merchant42" and event.lastapp == "Dial"
    assert event.system_name == "pnlab" and event.is_call_record


def test_csv_contract_covers_every_custom_field() -> None:
    assert set(NAMES.all) <= set(cv.CDR_CSV_COLUMNS)
    assert {"uniqueid", "linkedid", "sequence", "start", "answer", "end"} <= set(
        cv.CDR_CSV_COLUMNS)


_field_text = st.text(st.characters(codec="utf-8"), max_size=30)


@given(st.fixed_dictionaries(
    {"uniqueid": st.text(string.ascii_letters + string.digits + ".-", min_size=1, max_size=40),
     "start": st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1)).map(
         lambda d: d.isoformat(sep=" "))},
    optional={c: _field_text for c in cv.CDR_CSV_COLUMNS
              if c not in ("uniqueid", "start", "answer", "end")}))
def test_csv_round_trip_equals_direct_parse(values: dict[str, str]) -> None:
    """Quoting (commas, quotes, newlines inside fields) never changes what is parsed."""
    assert _from_csv(_csv_line(values)) == parse_cdr(values, NAMES, UTC, "pnlab")


# ---- malformed input: a CdrFormatError (the caller skips the CDR) or a neutral value

@pytest.mark.parametrize(("fields", "message"), [
    ({"uniqueid": ""}, "without uniqueid"),
    ({"uniqueid": "   "}, "without uniqueid"),
    ({"start": ""}, "without start time"),
    ({"start": "yesterday"}, "not an Asterisk CDR time"),
    ({"start": "2026-11-28"}, "not an Asterisk CDR time"),
    ({"start": "2026-11-28 12:00"}, "not an Asterisk CDR time"),
    ({"start": "28/11/2026 12:00:00"}, "not an Asterisk CDR time"),
    ({"start": "2026-11-28 12:00:00+08:00"}, "not an Asterisk CDR time"),
    ({"start": "2026-11-28 12:00:00.1234567"}, "not an Asterisk CDR time"),
    ({"start": "\u0662\u0660\u0662\u0666-11-28 12:00:00"}, "not an Asterisk CDR time"),
    ({"start": "2026-13-01 00:00:00"}, "out of range"),
    ({"start": "2026-02-30 00:00:00"}, "out of range"),
    ({"start": "2026-11-28 24:00:00"}, "out of range"),
    ({"start": "0001-01-01 00:00:00"}, "out of range"),  # before year 1 in UTC
    ({"end": "2026-11-28 25:61:61"}, "out of range"),
    ({"answer": "soon"}, "not an Asterisk CDR time"),
])
def test_malformed_cdr_is_a_clear_error(fields: dict[str, str], message: str) -> None:
    with pytest.raises(CdrFormatError, match=message):
        _cdr(SHANGHAI, **fields)


def test_missing_keys_are_empty_not_errors() -> None:
    event = parse_cdr({"uniqueid": "u-1", "start": "2026-11-28 12:00:00"}, NAMES, UTC)
    assert (event.duration, event.billsec, event.sequence) == (0, 0, 0)
    assert (event.disposition, event.hangup_cause, event.lastapp) == ("", None, "")
    assert not event.is_call_record


@pytest.mark.parametrize(("text", "value"), [
    ("7", 7), (" 7 ", 7), ("0", 0), ("2147483647", 2**31 - 1),
    ("", 0), ("abc", 0), ("-5", 0), ("--5", 0), ("+5", 0), ("1e3", 0), ("3.5", 0),
    ("\u00b2", 0), ("\u0667", 0), ("2147483648", 0), ("9" * 5000, 0),
])
def test_garbage_counters_become_zero(text: str, value: int) -> None:
    event = _cdr(duration=text, billsec=text, sequence=text)
    assert (event.duration, event.billsec, event.sequence) == (value, value, value)


@pytest.mark.parametrize(("disposition", "stored"), [
    ("ANSWERED", "ANSWERED"), ("answered", "ANSWERED"), (" NO ANSWER ", "NO ANSWER"),
    ("BUSY", "BUSY"), ("FAILED", "FAILED"), ("CONGESTION", "CONGESTION"),
    ("", ""), ("SOMETHING ELSE", ""), (BUYER, ""), ("x" * 100, ""),
])
def test_disposition_is_asterisks_word_or_empty(disposition: str, stored: str) -> None:
    assert _cdr(disposition=disposition).disposition == stored


@pytest.mark.parametrize("field", ["start", "answer", "end"])
def test_time_error_never_echoes_a_number(field: str) -> None:
    """A shifted CSV column can put a caller's number where a time belongs: the error (which is
    logged) shows the shape only."""
    with pytest.raises(CdrFormatError) as caught:
        _cdr(**{field: f"+86{BUYER}"})
    assert BUYER not in str(caught.value) and "99999999999" in str(caught.value)


_cdr_keys = st.sampled_from(sorted({*STANDARD_AMI_HEADERS, *NAMES.all, "linkedid", "sequence",
                                    "systemname", "lastdata"}))
_time_like = st.one_of(
    _field_text,
    st.from_regex(r"\A[0-9\u0660-\u0669]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}"
                  r"(\.[0-9]{1,7})?\Z"))


@given(st.dictionaries(_cdr_keys, _field_text, max_size=12),
       st.dictionaries(st.sampled_from(["start", "answer", "end"]), _time_like, max_size=3),
       st.sampled_from([UTC, SHANGHAI, NEW_YORK, CHATHAM]))
def test_parse_never_crashes(fields: dict[str, str], times: dict[str, str],
                             zone: ZoneInfo) -> None:
    """Any text in any field: a CdrEvent with UTC times and sane counters, or CdrFormatError."""
    try:
        event = parse_cdr({**fields, **times}, NAMES, zone)
    except CdrFormatError:
        return
    assert event.start.tzinfo is UTC and event.end.tzinfo is UTC
    assert 0 <= event.duration < 2**31 and 0 <= event.billsec < 2**31
    assert event.hangup_cause is None or 0 <= event.hangup_cause <= 127
    assert event.disposition in ("", "ANSWERED", "BUSY", "NO ANSWER", "CONGESTION", "FAILED")
    assert is_call_id(event.uniqueid) and is_call_id(event.linkedid)


@given(st.dictionaries(st.text(max_size=15), _field_text, max_size=15))
def test_any_ami_headers_parse_or_fail_cleanly(headers: dict[str, str]) -> None:
    try:
        event = parse_cdr(ami_to_fields(headers, cv.CDR_AMI_HEADERS), NAMES, SHANGHAI)
    except CdrFormatError:
        return
    assert event.uniqueid and event.start.tzinfo is UTC


def test_the_extension_field_is_read_and_only_digits_are_kept() -> None:
    base = {"UniqueID": "1700000000.1", "StartTime": "2026-06-01 12:00:00", "PnX": "9001",
            "PnReason": "bridged"}
    assert cdr_from_ami({**base, "PnExt": "0042"}, UTC).pn_ext == "0042"
    assert cdr_from_ami(base, UTC).pn_ext == ""
    for junk in ("13800000001", "12a", " "):
        assert cdr_from_ami({**base, "PnExt": junk}, UTC).pn_ext == ""

"""Buyer numbers stay off the AMI wire, on the real lab with the real ``privnum serve``.

An AMI client logged in as privnum's own AMI user (read classes ``cdr,system``, exactly what
the rendered ``manager.conf`` grants) taps every byte Asterisk sends while three calls happen,
each arriving the way a carrier trunk delivers it (the test's own half of the Local channel
carries no number):

* a bridged merchant call: A -> X -> B's phone answers;
* the buyer's callback: B -> X -> A's phone answers (and shows X);
* a stranger's call, refused.

Not one event, header or byte of the tap, and not one safety-net CSV row of those calls,
carries B's or the stranger's digits in any form (E.164, national, with or without +86,
separated); the call log still gets all three records, masked. With
``PRIVNUM_E2E_RECORD_DIR`` set, the tap's transcript and the CSV rows are written there (how
``tests/fixtures/ami/lab22/`` was recorded).
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agi import channel_vars as cv
from routing.cdr import encode_ami_message
from tests.e2e.ami import Event
from tests.e2e.baresip import BaresipUA
from tests.e2e.conftest import BUYER, MERCHANT, RunningLab
from tests.e2e.privnum_service import PrivnumStack, originate_as_trunk, privnum_stack, tagged_cdr
from tests.e2e.test_lab_smoke import with_retries
from tests.pg import scratch_database

pytestmark = [pytest.mark.asterisk, pytest.mark.slow]

STRANGER = "13900000002"
SECRETS = (BUYER, STRANGER)  # national digits: every other form contains them
H = cv.CDR_AMI_HEADERS
RECORD_DIR = "PRIVNUM_E2E_RECORD_DIR"
# Classes privnum's AMI user must never receive: they carry dial strings and variables.
FORBIDDEN_CLASSES = {"call", "dialplan", "agi", "reporting", "user"}


@pytest.fixture(scope="module")
def stack(asterisk_lab_running: RunningLab, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[PrivnumStack]:
    with scratch_database("e2e_tap") as url, privnum_stack(
            asterisk_lab_running, tmp_path_factory.mktemp("privnum-tap"), url) as st:
        yield st


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def carriers(messages: list[dict[str, str]], number: str) -> list[str]:
    """``Event.Header`` of every header whose value holds ``number`` in any form."""
    return [f"{m.get('Event', '?')}.{k}" for m in messages for k, v in m.items()
            if number in v or number in _digits(v)]


def csv_rows(lab: RunningLab, linkedids: set[str], timeout: float = 10.0
             ) -> list[dict[str, str]]:
    """Every safety-net CSV row of these calls (the test's own Local half included)."""
    path = lab.root / "var/log/asterisk/cdr-custom" / cv.CDR_CSV_FILE
    deadline = time.monotonic() + timeout
    while True:
        with path.open(newline="", encoding="utf-8") as fh:
            # Rows written before a column was added (the lab's CSV outlives upgrades) are
            # shorter; none of them is this test's.
            rows = [dict(zip(cv.CDR_CSV_COLUMNS, r, strict=True)) for r in csv.reader(fh)
                    if len(r) == len(cv.CDR_CSV_COLUMNS)]
        mine = [r for r in rows if r["linkedid"] in linkedids]
        tagged = {r["linkedid"] for r in mine if r[cv.CDR_REASON]}
        if tagged == linkedids or time.monotonic() > deadline:
            return mine
        time.sleep(0.2)


def test_no_event_or_csv_row_carries_a_buyer_number(
    stack: PrivnumStack, asterisk_lab_running: RunningLab, phones: Callable[..., BaresipUA]
) -> None:
    lab = asterisk_lab_running
    lab.cli("channel request hangup all")
    shop = stack.fresh_shop("tap", MERCHANT, "13800000002")
    b = stack.bind(shop, "order-tap", MERCHANT, BUYER)
    buyer = phones("buyer", BUYER, auto_answer=True)
    merchant = phones("merchant", MERCHANT, auto_answer=True)

    with lab.ami() as tap, lab.ami() as actions:
        start = tap.mark()

        def answered(caller: str, callee: BaresipUA, direction: str) -> tuple[Event, Any]:
            def attempt() -> tuple[Event, Any]:
                callee.drain()
                mark = tap.mark()
                originate_as_trunk(actions, b.x_dialled, caller, wait_seconds=3)
                seen = callee.wait_for({"CALL_ESTABLISHED"}, timeout=15)
                callee.wait_for({"CALL_CLOSED"}, timeout=15)
                cdr = tagged_cdr(tap, lambda e: e.get(H[cv.CDR_BINDING]) == b.binding_id
                                 and e.get(H[cv.CDR_DIRECTION]) == direction, after=mark)
                return cdr, seen
            return with_retries(f"{direction} call", lab, [callee], attempt)

        merchant_cdr, b_seen = answered(MERCHANT, buyer, cv.DIRECTION_MERCHANT)
        callback_cdr, a_seen = answered(BUYER, merchant, cv.DIRECTION_CALLBACK)
        mark = tap.mark()
        originate_as_trunk(actions, b.x_dialled, STRANGER, wait_seconds=2)
        refused_cdr = tagged_cdr(tap, lambda e: e.get(H[cv.CDR_REASON])
                                 == "caller_not_authorized", after=mark)
        calls = (merchant_cdr, callback_cdr, refused_cdr)
        ids = [c["UniqueID"] for c in calls]
        rows = stack.wait_rows("uniqueid IN (%s, %s, %s)", *ids, count=3)
        time.sleep(1.0)  # anything Asterisk still sends about these calls
        events = tap.events[start:]
        raw = bytes(tap.raw)

    # The calls really happened, each phone shown X.
    assert buyer.caller_id_seen(b_seen) == (b.x_dialled, b.x_dialled)
    assert merchant.caller_id_seen(a_seen) == (b.x_dialled, b.x_dialled)
    assert [c["Disposition"] for c in calls[:2]] == ["ANSWERED", "ANSWERED"]

    # Nothing the privnum AMI user received carries B or the stranger, in any form.
    assert any(e.get("Event") == "Cdr" for e in events)
    for number in SECRETS:
        assert carriers(events, number) == [], number
        assert number.encode() not in raw
        assert number not in _digits(raw.decode("utf-8", "replace"))
    classes = {c for e in events for c in e.get("Privilege", "").split(",")}
    assert not classes & FORBIDDEN_CLASSES, classes
    # What each record shows instead.
    assert merchant_cdr["LastApplication"] == "Dial"
    assert merchant_cdr["LastData"].startswith("Local/out@privnum-dial/n,")
    assert merchant_cdr["DestinationChannel"].startswith("Local/out@privnum-dial-")
    assert (merchant_cdr["Source"], merchant_cdr[H[cv.CDR_CALLER]]) == (MERCHANT, MERCHANT)
    assert (callback_cdr["Source"], callback_cdr[H[cv.CDR_CALLER]]) == ("139****0001",) * 2
    assert callback_cdr["CallerID"] == '"" <139****0001>'
    assert (refused_cdr["Source"], refused_cdr[H[cv.CDR_CALLER]]) == ("139****0002",) * 2

    # The safety-net CSV: the same, and no presented name/number at all.
    linkedids = {c["LinkedID"] for c in calls}
    csv_seen = csv_rows(lab, linkedids)
    assert {r["linkedid"] for r in csv_seen if r[cv.CDR_REASON]} == linkedids
    assert all(r["clid"] == "" for r in csv_seen)
    for number in SECRETS:
        assert carriers(csv_seen, number) == [], number
    by_id = {r["uniqueid"]: r for r in csv_seen}
    assert by_id[callback_cdr["UniqueID"]]["src"] == "139****0001"

    # The call log ingested all three from the new shape, masked.
    log = {r["uniqueid"]: r for r in rows}
    assert (log[ids[0]]["direction"], log[ids[0]]["outcome"]) == ("merchant", "answered")
    assert log[ids[0]]["caller_a"] == "+86" + MERCHANT
    assert (log[ids[1]]["direction"], log[ids[1]]["outcome"]) == ("callback", "answered")
    assert log[ids[1]]["caller_masked"] == "139****0001"
    assert (log[ids[2]]["reason"], log[ids[2]]["caller_masked"]) == (
        "caller_not_authorized", "139****0002")

    if os.environ.get(RECORD_DIR):
        _record(Path(os.environ[RECORD_DIR]), raw, events, csv_seen)


def _record(out: Path, raw: bytes, events: list[Event], rows: list[dict[str, str]]) -> None:
    """The tap as a transcript (banner + the events of these calls) and the CSV rows."""
    out.mkdir(parents=True, exist_ok=True)
    banner = raw.split(b"\r\n", 1)[0] + b"\r\n"
    (out / "tap.ami").write_bytes(banner + b"".join(encode_ami_message(e) for e in events))
    with (out / "cdr.csv").open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, quoting=csv.QUOTE_ALL).writerows(
            [r[c] for c in cv.CDR_CSV_COLUMNS] for r in rows)

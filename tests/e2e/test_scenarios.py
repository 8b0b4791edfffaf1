"""The mission scenarios on the real lab: real ``privnum serve`` process (FastAGI + AMI
listener, PostgreSQL + Redis), real Asterisk 22, real SIP phones (baresip) and AMI ``Originate``
on Local channels. Each test asserts what the phones saw and what the call log holds.

Known state per test: one privnum service per module (restarted if a test left it stopped), a
fresh shop per test (its own accounts, callers and bindings), fresh phones per test, no
channels left over in Asterisk.

The real-expiry scenario runs last: its binding is issued (ttl 60 s, the minimum) when the
module starts, so by then most of its minute has passed while the other scenarios ran.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest

from agi import channel_vars as cv
from routing.numbers import mask
from routing.reasons import Reason
from tests.e2e.ami import AmiClient
from tests.e2e.baresip import BaresipError, BaresipUA
from tests.e2e.conftest import BUYER, MERCHANT, RunningLab
from tests.e2e.privnum_service import (
    Binding,
    DialplanLog,
    PrivnumStack,
    Shop,
    originate_local,
    privnum_stack,
    tagged_cdr,
)
from tests.e2e.test_lab_smoke import channel_info, with_retries
from tests.pg import scratch_database

pytestmark = [pytest.mark.asterisk, pytest.mark.slow]

MERCHANT_2 = "13800000002"  # A': the sub-account's phone (lab merchant 2)
STRANGER = "13900000002"  # a registered lab phone that is no caller of any shop
OFF_NET = "13700000009"  # a caller that exists only as an AMI Originate caller ID
H = cv.CDR_AMI_HEADERS
EXPIRY_TTL = 60
PLAINTEXT = ("13900000001", "13900000002")  # buyer numbers never stored in clear


@pytest.fixture(scope="module")
def stack(asterisk_lab_running: RunningLab, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[PrivnumStack]:
    with scratch_database("e2e_scen") as url, privnum_stack(
            asterisk_lab_running, tmp_path_factory.mktemp("privnum-scenarios"), url) as st:
        yield st


@pytest.fixture(scope="module")
def expiring(stack: PrivnumStack) -> tuple[Shop, Binding]:
    """Issued as early as possible: the expiry scenario (last) waits only for what is left."""
    shop = stack.fresh_shop("exp", MERCHANT, MERCHANT_2)
    return shop, stack.bind(shop, "order-exp", MERCHANT, BUYER, ttl=EXPIRY_TTL)


@pytest.fixture(autouse=True)
def known_state(stack: PrivnumStack, expiring: tuple[Shop, Binding],
                asterisk_lab_running: RunningLab) -> Iterator[None]:
    asterisk_lab_running.cli("channel request hangup all")
    stack.serve.start()  # no-op when running; brings it back after a failed test
    yield
    asterisk_lab_running.cli("channel request hangup all")


@pytest.fixture
def lab(asterisk_lab_running: RunningLab) -> RunningLab:
    return asterisk_lab_running


# ---------------------------------------------------------------------------- helpers


def bridged_call(lab: RunningLab, caller: BaresipUA, callee: BaresipUA, x: str,
                 ami: AmiClient, mark: list[int], *, audio: bool = False) -> dict[str, Any]:
    """``caller`` dials X, ``callee`` (auto-answer) answers; retried on a baresip fault."""

    def attempt() -> dict[str, Any]:
        caller.drain()
        callee.drain()
        mark[0] = ami.mark()  # a retried call's CDR must come from the retry
        caller.dial(x)
        seen = callee.wait_for({"CALL_ESTABLISHED"}, timeout=15)
        caller.wait_for({"CALL_ESTABLISHED"}, timeout=10)
        if audio and not (callee.audio_flowed() and caller.audio_flowed()):
            raise BaresipError("no RTP within 10 s")
        return seen

    return with_retries(f"{caller.phone.name} -> X", lab, [caller, callee], attempt)


def rejected_call(lab: RunningLab, caller: BaresipUA, x: str, ami: AmiClient,
                  mark: list[int]) -> dict[str, Any]:
    """``caller`` dials X and is rejected: answered (the prompt plays), then hung up."""

    def attempt() -> dict[str, Any]:
        caller.drain()
        mark[0] = ami.mark()
        caller.dial(x)
        caller.wait_for({"CALL_ESTABLISHED"}, timeout=15)
        return caller.wait_for({"CALL_CLOSED"}, timeout=30)

    return with_retries(f"{caller.phone.name} -> X (reject)", lab, [caller], attempt)


def hang_up(caller: BaresipUA, callee: BaresipUA) -> None:
    caller.hangup()
    with contextlib.suppress(BaresipError):  # a crash on hang-up is the harness's fault
        callee.wait_for({"CALL_CLOSED"}, timeout=10)


def never_rang(phone: BaresipUA) -> None:
    calls = [e.get("type") for e in phone.events_seen() if e.get("class") == "call"]
    assert calls == [], f"{phone.phone.name} saw {calls}"


def no_plaintext(rows: list[dict[str, Any]]) -> None:
    text = json.dumps(rows, default=str)
    for number in PLAINTEXT:
        assert number not in text


def _cause(reason: str) -> str:
    """The Q.850 cause the dialplan hangs a reject up with (``PRIVNUM_HANGUP_CAUSE``)."""
    return str(Reason(reason).hangup_cause)


def _rx_packets(stats: dict[str, Any]) -> int:
    """Packets received, from a baresip ``CALL_RTCP`` report (``rtcp_stats``: ``tx``/``rx``
    each with ``sent``, ``lost``, ``jit``; ``rx.sent`` counts what arrived)."""
    try:
        return int(stats["rx"]["sent"])
    except (KeyError, TypeError, ValueError):
        raise AssertionError(f"no receive counter in baresip's RTCP stats {stats}") from None


# ---------------------------------------------------------------------------- scenarios


def test_1_merchant_dials_x_buyer_answers_audio_both_ways(
    stack: PrivnumStack, lab: RunningLab, ami: AmiClient, phones: Callable[..., BaresipUA]
) -> None:
    shop = stack.fresh_shop("s1", MERCHANT, MERCHANT_2)
    b = stack.bind(shop, "order-1", MERCHANT, BUYER)
    merchant = phones("merchant", MERCHANT)
    buyer = phones("buyer", BUYER, auto_answer=True)
    mark = [0]

    def call_up() -> tuple[dict[str, Any], dict[str, str], dict[str, str], int, int]:
        seen = bridged_call(lab, merchant, buyer, b.x_dialled, ami, mark, audio=True)
        # Asterisk's view while the call is up, then each phone's next RTCP report (~5 s)
        a_chan = channel_info(lab, f"PJSIP/{MERCHANT}-")
        b_chan = channel_info(lab, f"PJSIP/{BUYER}-")
        return (seen, a_chan, b_chan, _rx_packets(buyer.rtcp_stats()),
                _rx_packets(merchant.rtcp_stats()))

    # a baresip crash during the RTCP wait is retried like one at answer
    seen, a_chan, b_chan, buyer_rx, merchant_rx = with_retries(
        "bridged call with RTCP", lab, [merchant, buyer], call_up)

    # B's phone shows X (number and name), never A.
    assert buyer.caller_id_seen(seen) == (b.x_dialled, b.x_dialled)
    assert MERCHANT not in json.dumps([seen, *buyer.events_seen()])
    # A's leg keeps the true caller and is connected to X; B's leg shows X.
    assert a_chan["Caller ID"] == MERCHANT
    assert a_chan["Connected Line ID"] == b.x_dialled  # what A's phone is told it reached
    assert b_chan["Caller ID"] == b.x_dialled
    assert b_chan["Connected Line ID"] == b.x_dialled
    # Audio both ways: each phone's RTCP report counts packets received from the other.
    assert buyer_rx > 0 and merchant_rx > 0
    hang_up(merchant, buyer)

    cdr = tagged_cdr(ami, lambda e: e.get(H[cv.CDR_BINDING]) == b.binding_id, after=mark[0])
    assert cdr["Disposition"] == "ANSWERED"
    # A harness retry (baresip crash) leaves earlier attempts' rows, which may land before the
    # answered call's: wait for that one, then check there is one row per call.
    stack.wait_rows("binding_id = %s AND uniqueid = %s", b.binding_id, cdr["UniqueID"])
    rows = stack.wait_rows("binding_id = %s", b.binding_id)
    assert len({r["uniqueid"] for r in rows}) == len(rows)
    row, = (r for r in rows if r["uniqueid"] == cdr["UniqueID"])
    assert (row["uniqueid"], row["system_name"]) == (cdr["UniqueID"], "pnlab")
    assert (row["shop_id"], row["order_id"]) == (shop.shop_id, "order-1")
    assert row["direction"] == "merchant" and row["outcome"] == "answered"
    assert row["reason"] == "bridged" and row["disposition"] == "ANSWERED"
    assert row["caller_a"] == "+86" + MERCHANT and row["virtual_x"] == b.x
    assert row["buyer_masked"] == "139****0001"
    assert row["billsec"] >= 1 and row["duration"] >= row["billsec"]
    assert row["answer_utc"] is not None and row["end_utc"] >= row["answer_utc"]
    no_plaintext(rows)
    listed = stack.cli("calls", "list", "--shop", shop.shop_id)
    assert "order-1" in listed and "answered" in listed and BUYER not in listed


def test_2_stranger_is_rejected_with_prompt_and_buyer_never_rings(
    stack: PrivnumStack, lab: RunningLab, ami: AmiClient, phones: Callable[..., BaresipUA]
) -> None:
    shop = stack.fresh_shop("s2", MERCHANT, MERCHANT_2)
    b = stack.bind(shop, "order-2", MERCHANT, BUYER)
    buyer = phones("buyer", BUYER, auto_answer=True)
    stranger = phones("stranger", STRANGER)
    log = DialplanLog(lab)
    mark = [0]
    closed = rejected_call(lab, stranger, b.x_dialled, ami, mark)
    # not the shop's caller (maybe a buyer): Asterisk's CDR records the number masked
    sip_cdr = tagged_cdr(ami, lambda e: e.get("Source") == mask(STRANGER), after=mark[0])
    # Also from a caller that is no phone at all: AMI Originate on a Local channel.
    mark_local = ami.mark()
    originate_local(ami, b.x_dialled, OFF_NET)
    local_cdr = tagged_cdr(ami, lambda e: e.get("Source") == mask(OFF_NET), after=mark_local)

    assert closed["type"] == "CALL_CLOSED"
    assert log.played(f"PJSIP/{STRANGER}-", "privacy-incorrect")
    assert log.played(f"Local/{b.x_dialled}@privnum-inbound-", "privacy-incorrect")
    never_rang(buyer)
    for cdr, number in ((sip_cdr, STRANGER), (local_cdr, OFF_NET)):
        assert cdr[H[cv.CDR_CALLER]] == mask(number)
        assert number not in cdr["CallerID"]
        assert cdr[H[cv.CDR_REASON]] == "caller_not_authorized"
        assert cdr["DestinationChannel"] == "" and cdr["LastApplication"] == "Hangup"
        assert cdr["LastData"] == _cause("caller_not_authorized")
    rows = stack.wait_rows("uniqueid IN (%s, %s)", sip_cdr["UniqueID"], local_cdr["UniqueID"],
                           count=2)
    assert len(rows) == 2
    for row in rows:
        assert row["reason"] == "caller_not_authorized" and row["outcome"] == "rejected"
        # answered for the prompt (Answer, Playback): Asterisk bills the announcement seconds
        assert row["virtual_x"] == b.x and row["buyer_masked"] == ""
    assert {r["caller_masked"] for r in rows} == {"139****0002", "137****0009"}
    no_plaintext(rows)
    # What the shop sees, when the reject is filed under it
    listed = stack.cli("calls", "list", "--shop", shop.shop_id, "--outcome", "rejected")
    if any(r["shop_id"] == shop.shop_id for r in rows):
        assert "caller not authorized" in listed


def test_4_caller_disabled_after_binding_is_rejected(
    stack: PrivnumStack, lab: RunningLab, ami: AmiClient, phones: Callable[..., BaresipUA]
) -> None:
    shop = stack.fresh_shop("s4", MERCHANT, MERCHANT_2)
    b = stack.bind(shop, "order-4", MERCHANT_2, BUYER)  # the sub-account's number calls
    stack.cli("callers", "set-status", shop.shop_id, MERCHANT_2, "disabled")
    buyer = phones("buyer", BUYER, auto_answer=True)
    sub = phones("sub", MERCHANT_2)
    log = DialplanLog(lab)
    mark = [0]
    rejected_call(lab, sub, b.x_dialled, ami, mark)
    cdr = tagged_cdr(ami, lambda e: e.get("Source") == MERCHANT_2, after=mark[0])
    assert cdr[H[cv.CDR_REASON]] == "caller_disabled"
    assert (cdr["LastApplication"], cdr["LastData"]) == ("Hangup", _cause("caller_disabled"))
    assert cdr[H[cv.CDR_BINDING]] == b.binding_id
    assert log.played(f"PJSIP/{MERCHANT_2}-", "privacy-incorrect")
    never_rang(buyer)
    row, = stack.wait_rows("uniqueid = %s", cdr["UniqueID"])
    assert (row["reason"], row["outcome"]) == ("caller_disabled", "rejected")
    assert (row["binding_id"], row["shop_id"], row["order_id"]) == (
        b.binding_id, shop.shop_id, "order-4")
    listed = stack.cli("calls", "list", "--shop", shop.shop_id)
    assert "caller number disabled" in listed


def test_5_buyer_calls_x_back_and_reaches_merchant(
    stack: PrivnumStack, lab: RunningLab, ami: AmiClient, phones: Callable[..., BaresipUA]
) -> None:
    shop = stack.fresh_shop("s5", MERCHANT, MERCHANT_2)
    b = stack.bind(shop, "order-5", MERCHANT, BUYER)
    merchant = phones("merchant", MERCHANT, auto_answer=True)
    buyer = phones("buyer", BUYER)
    mark = [0]
    seen = bridged_call(lab, buyer, merchant, b.x_dialled, ami, mark)
    # A's phone shows X, never B; B's leg is connected to X.
    assert merchant.caller_id_seen(seen) == (b.x_dialled, b.x_dialled)
    assert BUYER not in json.dumps([seen, *merchant.events_seen()])
    b_chan = channel_info(lab, f"PJSIP/{BUYER}-")
    a_chan = channel_info(lab, f"PJSIP/{MERCHANT}-")
    assert b_chan["Connected Line ID"] == b.x_dialled
    assert a_chan["Caller ID"] == b.x_dialled
    hang_up(buyer, merchant)

    cdr = tagged_cdr(ami, lambda e: e.get(H[cv.CDR_BINDING]) == b.binding_id, after=mark[0])
    assert cdr[H[cv.CDR_DIRECTION]] == cv.DIRECTION_CALLBACK
    row, = stack.wait_rows("uniqueid = %s", cdr["UniqueID"])
    assert (row["direction"], row["outcome"], row["reason"]) == ("callback", "answered",
                                                                  "bridged")
    assert row["caller_masked"] == "139****0001" and row["buyer_masked"] == "139****0001"
    assert row["caller_a"] == "+86" + MERCHANT  # the caller number the callback reached
    assert row["order_id"] == "order-5" and row["shop_id"] == shop.shop_id
    no_plaintext([row])


def test_6_service_stopped_fails_closed_and_is_reconciled(
    stack: PrivnumStack, lab: RunningLab, ami: AmiClient, phones: Callable[..., BaresipUA]
) -> None:
    shop = stack.fresh_shop("s6", MERCHANT, MERCHANT_2)
    b = stack.bind(shop, "order-6", MERCHANT, BUYER)
    merchant = phones("merchant", MERCHANT)
    buyer = phones("buyer", BUYER, auto_answer=True)
    log = DialplanLog(lab)
    stack.serve.stop()  # FastAGI and its AMI listener are gone: no host answers
    try:
        mark = [0]

        def attempt() -> dict[str, Any]:
            merchant.drain()
            mark[0] = ami.mark()
            merchant.dial(b.x_dialled)
            return merchant.wait_for({"CALL_CLOSED"}, timeout=30)

        # baresip 1.1.0 can crash when early media ends in an error response
        closed = with_retries("fail-closed call", lab, [merchant], attempt)
        # privnum never decided: the dialplan masks whoever called
        cdr = tagged_cdr(ami, lambda e: e.get("Source") == mask(MERCHANT)
                         and e.get("Destination") == b.x_dialled, after=mark[0])
    finally:
        stack.serve.start()
    assert closed["param"].startswith("500")  # cause 38 -> SIP 500
    assert (cdr["LastApplication"], cdr["LastData"]) == ("Hangup", "38")
    assert cdr[H[cv.CDR_REASON]] == "routing_error" and cdr["DestinationChannel"] == ""
    assert log.played(f"PJSIP/{MERCHANT}-", "all-circuits-busy-now")
    never_rang(buyer)
    # The listener was down during the call: the row comes from reconcile of the CSV.
    row, = stack.wait_rows("uniqueid = %s", cdr["UniqueID"], timeout=30)
    assert row["reason"] == "routing_error" and row["source"] != "ami"
    assert row["outcome"] == "failed" and row["disposition"] == "NO ANSWER"
    # Reconciled from the CSV (no lastdata column): the cause comes from pn_reason, the same
    # 38 the dialplan hung up with; X is normalised like every other record's.
    assert row["hangup_cause"] == 38
    assert row["virtual_x"] == b.x


def test_7_switched_caller_gets_through_old_caller_does_not(
    stack: PrivnumStack, lab: RunningLab, ami: AmiClient, phones: Callable[..., BaresipUA]
) -> None:
    shop = stack.fresh_shop("s7", MERCHANT, MERCHANT_2)
    old = stack.bind(shop, "order-7", MERCHANT, BUYER)
    out = stack.cli("switch-caller", old.binding_id, "--caller", MERCHANT_2)
    new = stack.binding_of(out)
    assert new.caller == "+86" + MERCHANT_2
    buyer = phones("buyer", BUYER, auto_answer=True)
    sub = phones("sub", MERCHANT_2)
    merchant = phones("merchant", MERCHANT)

    mark = [0]
    seen = bridged_call(lab, sub, buyer, new.x_dialled, ami, mark)
    assert buyer.caller_id_seen(seen) == (new.x_dialled, new.x_dialled)
    hang_up(sub, buyer)
    ok = tagged_cdr(ami, lambda e: e.get("Source") == MERCHANT_2, after=mark[0])
    assert ok[H[cv.CDR_BINDING]] == new.binding_id and ok["Disposition"] == "ANSWERED"

    buyer.drain()
    rejected_call(lab, merchant, new.x_dialled, ami, mark)
    refused = tagged_cdr(ami, lambda e: e.get("Source") == MERCHANT, after=mark[0])
    never_rang(buyer)
    # A's pair with X now belongs to a superseded binding: "number expired" for A
    assert refused[H[cv.CDR_REASON]] == "binding_expired"
    assert refused["DestinationChannel"] == ""
    rows = stack.wait_rows("uniqueid IN (%s, %s)", ok["UniqueID"], refused["UniqueID"],
                           count=2)
    by_id = {r["uniqueid"]: r for r in rows}
    assert by_id[ok["UniqueID"]]["outcome"] == "answered"
    assert by_id[ok["UniqueID"]]["caller_a"] == "+86" + MERCHANT_2
    assert by_id[refused["UniqueID"]]["outcome"] == "rejected"


def test_3b_released_binding_is_rejected(stack: PrivnumStack, ami: AmiClient) -> None:
    """``privnum release`` ends a binding at once (what a platform does when an order closes);
    the call is refused like an expired one. Driven by AMI Originate only."""
    shop = stack.fresh_shop("s3b", MERCHANT, MERCHANT_2)
    b = stack.bind(shop, "order-3b", MERCHANT, BUYER)
    stack.cli("release", b.binding_id)
    mark = ami.mark()
    originate_local(ami, b.x_dialled, MERCHANT)
    cdr = tagged_cdr(ami, lambda e: e.get("Source") == MERCHANT
                     and e.get("Destination") == b.x_dialled, after=mark)
    assert cdr[H[cv.CDR_REASON]] == "binding_expired"
    assert (cdr["LastApplication"], cdr["LastData"]) == ("Hangup", _cause("binding_expired"))
    row, = stack.wait_rows("uniqueid = %s", cdr["UniqueID"])
    assert (row["reason"], row["binding_id"]) == ("binding_expired", b.binding_id)


def test_3_expired_binding_is_rejected_then_reissued_goes_through(
    stack: PrivnumStack, lab: RunningLab, ami: AmiClient, phones: Callable[..., BaresipUA],
    expiring: tuple[Shop, Binding],
) -> None:
    shop, b = expiring
    left = (datetime.fromisoformat(b.expires) - datetime.now(tz=datetime.fromisoformat(
        b.expires).tzinfo)).total_seconds()
    time.sleep(max(0.0, left) + 1.0)  # a real expiry: nothing released, nothing faked
    # AMI Originate on a Local channel, as A: refused, the buyer's phone is not even needed
    mark = ami.mark()
    originate_local(ami, b.x_dialled, MERCHANT)
    expired = tagged_cdr(ami, lambda e: e.get("Source") == MERCHANT
                         and e.get("Destination") == b.x_dialled, after=mark)
    assert expired[H[cv.CDR_REASON]] == "binding_expired"
    assert expired[H[cv.CDR_BINDING]] == b.binding_id
    assert expired["DestinationChannel"] == ""
    assert (expired["LastApplication"], expired["LastData"]) == (
        "Hangup", _cause("binding_expired"))  # the prompt played out, then the reason's cause
    row, = stack.wait_rows("uniqueid = %s", expired["UniqueID"])
    assert (row["reason"], row["outcome"], row["order_id"]) == (
        "binding_expired", "rejected", "order-exp")
    assert "number expired" in stack.cli("calls", "list", "--shop", shop.shop_id)

    again = stack.bind(shop, "order-exp", MERCHANT, BUYER)  # re-issued for the same order
    assert again.binding_id != b.binding_id
    merchant = phones("merchant", MERCHANT)
    buyer = phones("buyer", BUYER, auto_answer=True)
    mark2 = [0]
    seen = bridged_call(lab, merchant, buyer, again.x_dialled, ami, mark2)
    assert buyer.caller_id_seen(seen)[0] == again.x_dialled
    hang_up(merchant, buyer)
    ok = tagged_cdr(ami, lambda e: e.get(H[cv.CDR_BINDING]) == again.binding_id,
                    after=mark2[0])
    assert ok["Disposition"] == "ANSWERED"
    row2, = stack.wait_rows("uniqueid = %s", ok["UniqueID"])
    assert (row2["outcome"], row2["order_id"]) == ("answered", "order-exp")

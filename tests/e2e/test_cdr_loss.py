"""Not one call record lost (issue 5) on the real lab: the AMI listener (``privnum ami listen``,
its own process next to ``privnum serve``) is killed with SIGKILL, calls happen — bridged,
rejected, and one while FastAGI is down too — then the listener comes back and its automatic
reconcile reads Asterisk's safety-net CSV. Every call Asterisk reported is then in the call log
exactly once; ``privnum cdr reconcile`` finds nothing new, ``privnum cdr verify`` is happy and
no row holds a buyer's number in clear.

Asterisk's truth is a separate AMI client of the test's own: the tagged ``Cdr`` events it saw.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from agi import channel_vars as cv
from routing.numbers import mask
from tests.e2e.ami import Event
from tests.e2e.baresip import BaresipUA
from tests.e2e.conftest import BUYER, MERCHANT, RunningLab
from tests.e2e.privnum_service import PrivnumStack, originate_local, privnum_stack, tagged_cdr
from tests.e2e.test_lab_smoke import with_retries
from tests.pg import scratch_database

pytestmark = [pytest.mark.asterisk, pytest.mark.slow]

OFF_NET = "13700000009"
PLAINTEXT = ("13900000001", "+8613900000001", "13900000002")
H = cv.CDR_AMI_HEADERS


@pytest.fixture(scope="module")
def stack(asterisk_lab_running: RunningLab, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[PrivnumStack]:
    with scratch_database("e2e_loss") as url, privnum_stack(
            asterisk_lab_running, tmp_path_factory.mktemp("privnum-cdr-loss"), url,
            ami_in_serve=False) as st:
        yield st


def test_killed_listener_loses_no_call_record(
    stack: PrivnumStack, asterisk_lab_running: RunningLab, phones: Callable[..., BaresipUA]
) -> None:
    lab = asterisk_lab_running
    lab.cli("channel request hangup all")
    shop = stack.fresh_shop("loss", MERCHANT, "13800000002")
    b = stack.bind(shop, "order-loss", MERCHANT, BUYER)
    buyer = phones("buyer", BUYER, auto_answer=True)
    stack.listener.start()

    with lab.ami() as ami:
        start = ami.mark()

        def bridged() -> Event:
            """A (by AMI Originate on a Local channel) -> X -> B's phone answers."""
            def attempt() -> Event:
                buyer.drain()
                mark = ami.mark()
                originate_local(ami, b.x_dialled, MERCHANT, wait_seconds=2)
                buyer.wait_for({"CALL_ESTABLISHED"}, timeout=15)
                buyer.wait_for({"CALL_CLOSED"}, timeout=15)
                return tagged_cdr(ami, lambda e: e.get(H[cv.CDR_BINDING]) == b.binding_id,
                                  after=mark)
            return with_retries("bridged Local call", lab, [buyer], attempt)

        def rejected() -> Event:
            mark = ami.mark()
            originate_local(ami, b.x_dialled, OFF_NET, wait_seconds=1)
            # not the shop's caller: Asterisk's CDR records the number masked
            return tagged_cdr(ami, lambda e: e.get("Source") == mask(OFF_NET), after=mark)

        # 1. listener up: the record arrives over AMI
        first = bridged()
        row, = stack.wait_rows("uniqueid = %s", first["UniqueID"])
        assert row["source"] == "ami"

        # 2. listener killed (no flush, no goodbye); calls go on
        stack.listener.kill()
        missed = [bridged(), rejected()]
        # 3. FastAGI down as well: the dialplan fails closed, Asterisk still writes the CDR
        stack.serve.stop()
        try:
            mark = ami.mark()
            originate_local(ami, b.x_dialled, MERCHANT, wait_seconds=1)
            missed.append(tagged_cdr(ami, lambda e: e.get("Source") == mask(MERCHANT)
                                     and e.get(H[cv.CDR_REASON]) == "routing_error",
                                     after=mark))
        finally:
            stack.serve.start()
        assert [c[H[cv.CDR_REASON]] for c in missed] == [
            "bridged", "caller_not_authorized", "routing_error"]
        # every call privnum's dialplan tagged since the start (retries included)
        reason = H[cv.CDR_REASON]
        asterisk_saw = {e["UniqueID"] for e in ami.events[start:]
                        if e.get("Event") == "Cdr" and e.get(reason)}
    assert {first["UniqueID"], *(c["UniqueID"] for c in missed)} <= asterisk_saw

    # 4. the listener comes back and reconciles by itself
    stack.listener.start()
    ids = sorted(asterisk_saw)
    marks = ", ".join(["%s"] * len(ids))
    rows = stack.wait_rows(f"system_name = 'pnlab' AND uniqueid IN ({marks})", *ids,
                           count=len(ids), timeout=30)
    assert sorted(r["uniqueid"] for r in rows) == ids  # each exactly once
    by_id = {r["uniqueid"]: r for r in rows}
    for cdr in missed:
        got = by_id[cdr["UniqueID"]]
        assert got["source"] != "ami"  # came from the CSV
        assert got["reason"] == cdr[reason]
        assert got["disposition"] == cdr["Disposition"]
        assert (got["duration"], got["billsec"]) == (int(cdr["Duration"]),
                                                      int(cdr["BillableSeconds"]))
    assert by_id[missed[0]["UniqueID"]]["outcome"] == "answered"
    assert by_id[missed[1]["UniqueID"]]["outcome"] == "rejected"
    assert by_id[missed[2]["UniqueID"]]["outcome"] == "failed"

    # 5. reconcile again: nothing new; the chain verifies; no plaintext buyer number anywhere
    total = stack.query("SELECT count(*) AS n, count(DISTINCT (system_name, uniqueid)) AS d "
                        "FROM cdrs")[0]
    assert total["n"] == total["d"]
    out = stack.cli("cdr", "reconcile")
    assert stack.query("SELECT count(*) AS n FROM cdrs")[0]["n"] == total["n"], out
    stack.cli("cdr", "verify")
    everything = json.dumps(stack.cdr_rows(), default=str)
    for number in PLAINTEXT:
        assert number not in everything

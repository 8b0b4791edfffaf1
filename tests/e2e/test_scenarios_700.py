"""A 15-digit 700 number as X on the real lab: real ``privnum serve`` (PostgreSQL + Redis),
real Asterisk 22 and baresip phones. The merchant dials the 700 X and the buyer's phone shows
it; the buyer calls it back (dialled as +86 700...) and reaches the merchant; with privnum
down the call fails closed and the reconciled record holds X in its stored form.

The 700 numbers are imported next to the lab's usual pool, in a region of their own that
``privnum bind --region`` prefers, exactly as a deployer mid-transition would run it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from agi import channel_vars as cv
from routing.numbers import mask
from tests.e2e.ami import AmiClient
from tests.e2e.baresip import BaresipUA
from tests.e2e.conftest import BUYER, MERCHANT, RunningLab
from tests.e2e.privnum_service import (
    Binding,
    PrivnumStack,
    Shop,
    originate_local,
    privnum_stack,
    tagged_cdr,
)
from tests.e2e.test_lab_smoke import channel_info
from tests.e2e.test_scenarios import bridged_call, hang_up, no_plaintext
from tests.pg import scratch_database

pytestmark = [pytest.mark.asterisk, pytest.mark.slow]

MERCHANT_2 = "13800000002"
POOL_700 = [f"7001234567890{i:02d}" for i in range(1, 5)]  # 15 digits each
H = cv.CDR_AMI_HEADERS


@pytest.fixture(scope="module")
def stack(asterisk_lab_running: RunningLab, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[PrivnumStack]:
    work = tmp_path_factory.mktemp("privnum-700")
    with scratch_database("e2e_700") as url, privnum_stack(asterisk_lab_running, work,
                                                           url) as st:
        pool = work / "pool-700.csv"
        pool.write_text("number,region\n" + "".join(f"{n},n700\n" for n in POOL_700),
                        encoding="utf-8")
        out = st.cli("pool", "import", "-q", str(pool))
        assert f"{len(POOL_700)} imported" in out, out
        yield st


@pytest.fixture(autouse=True)
def known_state(stack: PrivnumStack, asterisk_lab_running: RunningLab) -> Iterator[None]:
    asterisk_lab_running.cli("channel request hangup all")
    stack.serve.start()  # no-op when running; brings it back after a failed test
    yield
    asterisk_lab_running.cli("channel request hangup all")


def bind_700(stack: PrivnumStack, tag: str) -> tuple[Shop, Binding]:
    shop = stack.fresh_shop(tag, MERCHANT, MERCHANT_2)
    out = stack.cli("bind", "--shop", shop.shop_id, "--order", f"order-{tag}", "--caller",
                    MERCHANT, "--buyer", BUYER, "--buyer-id", f"buyer-{tag}", "--region",
                    "n700")
    b = stack.binding_of(out)
    assert b.x_dialled in POOL_700 and b.x == "+86" + b.x_dialled, out
    return shop, b


def test_700_merchant_dials_x_and_the_buyer_sees_the_700_number(
    stack: PrivnumStack, asterisk_lab_running: RunningLab, ami: AmiClient,
    phones: Callable[..., BaresipUA]
) -> None:
    lab = asterisk_lab_running
    shop, b = bind_700(stack, "m700")
    merchant = phones("merchant", MERCHANT)
    buyer = phones("buyer", BUYER, auto_answer=True)
    mark = [0]
    seen = bridged_call(lab, merchant, buyer, b.x_dialled, ami, mark)  # 15 digits
    assert buyer.caller_id_seen(seen) == (b.x_dialled, b.x_dialled)
    assert MERCHANT not in json.dumps([seen, *buyer.events_seen()])
    assert channel_info(lab, f"PJSIP/{MERCHANT}-")["Connected Line ID"] == b.x_dialled
    hang_up(merchant, buyer)

    cdr = tagged_cdr(ami, lambda e: e.get(H[cv.CDR_BINDING]) == b.binding_id, after=mark[0])
    assert (cdr["Disposition"], cdr[H[cv.CDR_X]]) == ("ANSWERED", b.x)
    row, = stack.wait_rows("uniqueid = %s", cdr["UniqueID"])
    assert (row["direction"], row["outcome"], row["virtual_x"]) == ("merchant", "answered", b.x)
    assert row["buyer_masked"] == "139****0001"
    no_plaintext([row])
    listed = stack.cli("calls", "list", "--shop", shop.shop_id)
    assert b.x in listed and BUYER not in listed


def test_700_buyer_calls_back_with_the_country_code_and_reaches_the_merchant(
    stack: PrivnumStack, asterisk_lab_running: RunningLab, ami: AmiClient,
    phones: Callable[..., BaresipUA]
) -> None:
    lab = asterisk_lab_running
    _, b = bind_700(stack, "c700")
    merchant = phones("merchant", MERCHANT, auto_answer=True)
    buyer = phones("buyer", BUYER)
    mark = [0]
    seen = bridged_call(lab, buyer, merchant, b.x, ami, mark)  # +86 700...: E.164 style
    assert merchant.caller_id_seen(seen) == (b.x_dialled, b.x_dialled)
    assert BUYER not in json.dumps([seen, *merchant.events_seen()])
    hang_up(buyer, merchant)

    cdr = tagged_cdr(ami, lambda e: e.get(H[cv.CDR_BINDING]) == b.binding_id, after=mark[0])
    assert cdr[H[cv.CDR_DIRECTION]] == cv.DIRECTION_CALLBACK
    row, = stack.wait_rows("uniqueid = %s", cdr["UniqueID"])
    assert (row["direction"], row["outcome"], row["virtual_x"]) == ("callback", "answered", b.x)
    assert row["caller_masked"] == "139****0001"
    no_plaintext([row])


def test_700_with_privnum_down_fails_closed_and_the_record_holds_the_stored_form(
    stack: PrivnumStack, ami: AmiClient
) -> None:
    _, b = bind_700(stack, "f700")
    dialled = "86" + b.x_dialled  # the dialplan copies the digits as dialled
    stack.serve.stop()
    try:
        mark = ami.mark()
        originate_local(ami, dialled, MERCHANT)
        # privnum never decided: the dialplan masks whoever called
        cdr = tagged_cdr(ami, lambda e: e.get("Source") == mask(MERCHANT)
                         and e.get("Destination") == dialled, after=mark)
    finally:
        stack.serve.start()  # reconciles the CSV the dialplan wrote meanwhile
    assert (cdr[H[cv.CDR_REASON]], cdr[H[cv.CDR_X]]) == ("routing_error", dialled)
    assert cdr["DestinationChannel"] == ""
    row, = stack.wait_rows("uniqueid = %s", cdr["UniqueID"], timeout=30)
    assert (row["reason"], row["outcome"], row["virtual_x"]) == ("routing_error", "failed", b.x)

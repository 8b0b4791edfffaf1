"""The last-minute warning on the real lab: with a call-length limit of 15 s and a warning 10 s
before it, both parties hear the warning sound 5 s into the call (Asterisk plays it to the
calling channel and to the called one), and the call ends at the limit."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from agi import channel_vars as cv
from tests.e2e.ami import AmiClient
from tests.e2e.baresip import BaresipUA
from tests.e2e.conftest import BUYER, MERCHANT, RunningLab
from tests.e2e.privnum_service import DialplanLog, tagged_cdr
from tests.e2e.test_call_rules import RulesStack, rules_stack
from tests.e2e.test_lab_smoke import with_retries
from tests.e2e.test_scenarios import bridged_call
from tests.pg import scratch_database

pytestmark = [pytest.mark.asterisk, pytest.mark.slow]

MERCHANT_2 = "13800000002"
LIMIT, WARNING = 15, 10


class LimitedStack(RulesStack):
    def _toml(self) -> str:
        return super()._toml().replace("[agi]\n", f"[agi]\nmax_call_seconds = {LIMIT}\n")


@pytest.fixture(scope="module")
def stack(asterisk_lab_running: RunningLab, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[RulesStack]:
    with scratch_database("call_rules_warn") as url, rules_stack(
            asterisk_lab_running, tmp_path_factory.mktemp("privnum-warning"), url,
            cls=LimitedStack) as st:
        yield st


def test_both_parties_hear_the_warning_before_the_limit(
        stack: RulesStack, ami: AmiClient, asterisk_lab_running: RunningLab,
        phones: Callable[..., BaresipUA]) -> None:
    lab = asterisk_lab_running
    lab.cli("channel request hangup all")
    shop = stack.fresh_shop("cr-warn", MERCHANT, MERCHANT_2)
    stack.cli("shop", "rules", shop.shop_id, "--warning-seconds", str(WARNING))
    b = stack.bind(shop, "order-warn", MERCHANT, BUYER)
    merchant = phones("merchant", MERCHANT)
    buyer = phones("buyer", BUYER, auto_answer=True)
    log = DialplanLog(lab)
    mark = [0]

    def limited_call() -> dict[str, Any]:
        bridged_call(lab, merchant, buyer, b.x_dialled, ami, mark)
        return merchant.wait_for({"CALL_CLOSED"}, timeout=LIMIT + 10)  # the limit ends it

    # baresip can crash (SIGSEGV) as a call with media ends: the whole call again, since the
    # CDR checked below must be the retried call's (``mark``)
    closed = with_retries("limited call", lab, [merchant, buyer], limited_call)
    assert closed["type"] == "CALL_CLOSED"
    time.sleep(0.5)
    text = log.text()
    dial = re.search(r'Dial\("PJSIP/' + MERCHANT + r'-[^"]*", "([^"]*)"\)', text)
    assert dial and re.search(rf"L\({LIMIT}000:{WARNING}000:0+\)", dial[1]), dial
    played = re.findall(r"<([^>]+)> Playing 'beep\.", text)
    # the calling channel (the merchant's) and the called one (privnum's Local channel, which
    # carries the audio to the buyer's phone) both played it
    assert any(ch.startswith(f"PJSIP/{MERCHANT}-") for ch in played), played
    assert any(ch.startswith("Local/out@privnum-dial-") for ch in played), played
    cdr = tagged_cdr(ami, lambda e: e.get(cv.CDR_AMI_HEADERS[cv.CDR_BINDING]) == b.binding_id,
                     after=mark[0])
    assert cdr["Disposition"] == "ANSWERED"
    assert LIMIT - 1 <= int(cdr["BillableSeconds"]) <= LIMIT + 1

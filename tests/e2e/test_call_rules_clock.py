"""Quiet hours on the real lab with the clock injected into the service: ``privnum serve
--allow-test-clock`` started with ``PRIVNUM_TESTING__CLOCK`` at 03:00 in the shop's zone
refuses the shop's call (``quiet_hours``: the prompt, the CDR, the call log); started at 12:00
it bridges the same call. The shop's window is fixed (08:00-21:00); only the service's clock
moves, so the test means the same on any date and at any hour.

The instants are the next 03:00 and the next 12:00 in the shop's zone (within a day of the real
time); the binding lives two days, so a few seconds between this test's clock and the service's
change nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from agi import channel_vars as cv
from routing.reasons import Reason
from tests.e2e.ami import AmiClient
from tests.e2e.conftest import BUYER, MERCHANT, RunningLab
from tests.e2e.privnum_service import DialplanLog, PrivnumProcess
from tests.e2e.test_call_rules import RulesStack, refused, routed
from tests.pg import scratch_database

pytestmark = [pytest.mark.asterisk, pytest.mark.slow]

MERCHANT_2 = "13800000002"
SHANGHAI = ZoneInfo("Asia/Shanghai")  # a shop's zone when it sets none
WINDOW = "08:00-21:00"
H = cv.CDR_AMI_HEADERS


def next_local(hour: int, zone: ZoneInfo) -> datetime:
    """The next ``hour``:00 in ``zone``, within a day of now."""
    now = datetime.now(UTC).astimezone(zone)
    at = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    return at + timedelta(days=1) if at <= now else at


@pytest.fixture(scope="module")
def stack(asterisk_lab_running: RunningLab, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[RulesStack]:
    """Schema, keys and pool; no service: each scenario starts its own, on its own clock."""
    with scratch_database("call_rules_clock") as url:
        st = RulesStack(asterisk_lab_running, tmp_path_factory.mktemp("privnum-clock"), url)
        try:
            st.prepare()
            yield st
        finally:
            st.close()


@contextlib.contextmanager
def serving_at(stack: RulesStack, at: datetime) -> Iterator[PrivnumProcess]:
    """``privnum serve --allow-test-clock`` (FastAGI and the AMI listener) whose clock starts
    at ``at``."""
    proc = PrivnumProcess(
        "privnum serve --allow-test-clock", ["serve", "--allow-test-clock"], stack.config,
        stack.workdir / "serve-clock.log", ["privnum serving FastAGI on", "AMI connected to"],
        extra_env={"PRIVNUM_TESTING__CLOCK": at.astimezone(UTC).isoformat()})
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def test_quiet_hours_follow_the_clock_injected_into_the_service(
        stack: RulesStack, ami: AmiClient, asterisk_lab_running: RunningLab) -> None:
    lab = asterisk_lab_running
    lab.cli("channel request hangup all")
    shop = stack.fresh_shop("clk-quiet", MERCHANT, MERCHANT_2)
    stack.cli("shop", "rules", shop.shop_id, "--merchant-window", WINDOW)
    b = stack.bind(shop, "order-clock", MERCHANT, BUYER, ttl=2 * 86_400)

    night = next_local(3, SHANGHAI)
    log = DialplanLog(lab)
    with serving_at(stack, night) as service:
        assert "TEST CLOCK" in service.log_since_start()
        cdr, attempt = routed(stack, ami, b.x_dialled, MERCHANT)
        refused(cdr, attempt, Reason.QUIET_HOURS)
        assert log.played(f"Local/{b.x_dialled}@privnum-inbound-", Reason.QUIET_HOURS.prompt)
        # decided at the service's 03:00, whatever the time on the host
        assert attempt["at"].astimezone(SHANGHAI).hour == 3
        # the buyer's callback has no window of its own: it goes through at night
        back, back_attempt = routed(stack, ami, b.x_dialled, BUYER)
        assert back[H[cv.CDR_REASON]] == "bridged" and back_attempt["action"] == "bridge"
        rows = stack.wait_rows("uniqueid = %s", cdr["UniqueID"])
    assert [(r["outcome"], r["reason"], r["binding_id"]) for r in rows] == [
        ("rejected", Reason.QUIET_HOURS.value, b.binding_id)]
    listed = stack.cli("calls", "list", "--shop", shop.shop_id, "--outcome", "rejected")
    assert "permitted call hours" in listed

    with serving_at(stack, next_local(12, SHANGHAI)):
        cdr, attempt = routed(stack, ami, b.x_dialled, MERCHANT)
        rows = stack.wait_rows("uniqueid = %s", cdr["UniqueID"])
    assert cdr[H[cv.CDR_REASON]] == "bridged"
    assert (attempt["action"], attempt["reason"]) == ("bridge", "bridged")
    assert attempt["at"].astimezone(SHANGHAI).hour == 12
    assert [r["reason"] for r in rows] == ["bridged"]

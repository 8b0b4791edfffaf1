"""The carrier call rules on the real lab: direction, quiet hours in the shop's time zone, grace
after expiry and the fallback service line. Real ``privnum serve`` (PostgreSQL + Redis), real
Asterisk 22, AMI ``Originate`` on Local channels as the caller, real SIP phones where a call
must reach someone.

The service reads the shops' rules with no cache (``call_rules.cache_seconds = 0``), so a rule
set with the CLI applies to the next call. Quiet hours are tested against the service's own
clock: the windows are built around the current time in the shop's zone (one that excludes it,
one that includes it), so the test means the same at any hour and on any date.

The grace scenario runs last: its bindings (ttl 60 s, the minimum) are issued when the module
starts and really expire.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis

from agi import channel_vars as cv
from routing.numbers import mask
from routing.reasons import Reason
from tests.e2e.ami import AmiClient
from tests.e2e.baresip import BaresipUA
from tests.e2e.conftest import BUYER, MERCHANT, RunningLab
from tests.e2e.privnum_service import (
    REDIS_URL,
    Binding,
    DialplanLog,
    PrivnumStack,
    ServiceError,
    Shop,
    originate_local,
    tagged_cdr,
)
from tests.pg import scratch_database

pytestmark = [pytest.mark.asterisk, pytest.mark.slow]

MERCHANT_2 = "13800000002"  # the sub-account's phone; also the "service line" of one shop
H = cv.CDR_AMI_HEADERS
TTL = 60
SHANGHAI = ZoneInfo("Asia/Shanghai")


class RulesStack(PrivnumStack):
    """The scenario stack with the rules read on every call (no cache)."""

    def _toml(self) -> str:
        return super()._toml() + "\n[call_rules]\ncache_seconds = 0\n"

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(REDIS_URL, socket_timeout=2)


@contextlib.contextmanager
def rules_stack(lab: RunningLab, workdir: Path, url: str,
                cls: type[RulesStack] = RulesStack) -> Iterator[RulesStack]:
    stack = cls(lab, workdir, url)
    try:
        stack.prepare()
        stack.serve.start()
        yield stack
    finally:
        stack.close()


@pytest.fixture(scope="module")
def stack(asterisk_lab_running: RunningLab, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[RulesStack]:
    with scratch_database("call_rules_e2e") as url, rules_stack(
            asterisk_lab_running, tmp_path_factory.mktemp("privnum-call-rules"), url) as st:
        yield st


@pytest.fixture(scope="module")
def expiring(stack: RulesStack) -> dict[str, tuple[Shop, Binding]]:
    """Issued first thing: by the last scenario most of their minute has passed. ``grace``:
    an hour of grace; ``fallback``: no grace, the service line MERCHANT_2; ``plain``: no
    rules."""
    out = {}
    for tag in ("grace", "fallback", "plain"):
        shop = stack.fresh_shop(f"cr-{tag}", MERCHANT, MERCHANT_2)
        out[tag] = (shop, stack.bind(shop, f"order-{tag}", MERCHANT, BUYER, ttl=TTL))
    stack.cli("shop", "rules", out["grace"][0].shop_id, "--grace-seconds", "3600")
    stack.cli("shop", "rules", out["fallback"][0].shop_id, "--grace-seconds", "0",
              "--fallback", MERCHANT_2)
    return out


@pytest.fixture(autouse=True)
def known_state(stack: RulesStack, expiring: dict[str, tuple[Shop, Binding]],
                asterisk_lab_running: RunningLab) -> Iterator[None]:
    asterisk_lab_running.cli("channel request hangup all")
    stack.serve.start()
    yield
    asterisk_lab_running.cli("channel request hangup all")


def routed(stack: RulesStack, ami: AmiClient, x_dialled: str, caller: str
           ) -> tuple[dict[str, str], dict[str, Any]]:
    """``caller`` dials X (AMI Originate on a Local channel): the tagged CDR and the decision
    privnum recorded (``call_attempts``)."""
    mark = ami.mark()
    originate_local(ami, x_dialled, caller)
    as_recorded = (caller, mask("+86" + caller))  # A plain, anyone else masked
    cdr = tagged_cdr(ami, lambda e: e.get("Source") in as_recorded
                     and e.get("Destination") == x_dialled, after=mark)
    return dict(cdr), attempt_of(stack, cdr["UniqueID"])


def attempt_of(stack: RulesStack, uniqueid: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        rows = stack.query("SELECT * FROM call_attempts WHERE uniqueid = %s", uniqueid)
        if rows:
            return rows[0]
        if time.monotonic() > deadline:
            raise ServiceError(f"no call attempt {uniqueid} within {timeout:.0f} s")
        time.sleep(0.2)


def refused(cdr: dict[str, str], attempt: dict[str, Any], reason: Reason) -> None:
    assert cdr[H[cv.CDR_REASON]] == reason.value
    assert cdr["DestinationChannel"] == ""  # nobody was dialled
    assert (cdr["LastApplication"], cdr["LastData"]) == ("Hangup", str(reason.hangup_cause))
    assert (attempt["action"], attempt["reason"]) == ("reject", reason.value)


def window_around(now_local: datetime, start_h: int, end_h: int) -> str:
    start = (now_local + timedelta(hours=start_h)).strftime("%H:00")
    end = (now_local + timedelta(hours=end_h)).strftime("%H:00")
    return f"{start}-{end}"


# ---------------------------------------------------------------------------- direction


def test_direction_rule_refuses_the_forbidden_way_only(
        stack: RulesStack, ami: AmiClient, asterisk_lab_running: RunningLab) -> None:
    shop = stack.fresh_shop("cr-dir", MERCHANT, MERCHANT_2)
    b = stack.bind(shop, "order-dir", MERCHANT, BUYER)
    out = stack.cli("shop", "rules", shop.shop_id, "--direction", "callback_only")
    assert "callback_only" in out
    log = DialplanLog(asterisk_lab_running)

    cdr, attempt = routed(stack, ami, b.x_dialled, MERCHANT)
    refused(cdr, attempt, Reason.DIRECTION_REFUSED)
    assert cdr[H[cv.CDR_BINDING]] == b.binding_id and cdr[H[cv.CDR_DIRECTION]] == "merchant"
    assert log.played(f"Local/{b.x_dialled}@privnum-inbound-", Reason.DIRECTION_REFUSED.prompt)
    cdr, attempt = routed(stack, ami, b.x_dialled, BUYER)  # the buyer may still call back
    assert cdr[H[cv.CDR_REASON]] == "bridged" and cdr[H[cv.CDR_DIRECTION]] == "callback"

    stack.cli("shop", "rules", shop.shop_id, "--direction", "merchant_only")
    cdr, attempt = routed(stack, ami, b.x_dialled, BUYER)
    refused(cdr, attempt, Reason.DIRECTION_REFUSED)
    assert attempt["direction"] == "callback" and attempt["caller_masked"] == "139****0001"
    cdr, attempt = routed(stack, ami, b.x_dialled, MERCHANT)
    assert cdr[H[cv.CDR_REASON]] == "bridged" and attempt["action"] == "bridge"
    audit = stack.query("SELECT * FROM audit_events WHERE kind = 'shop.call_rules' "
                        "AND shop_id = %s", shop.shop_id)
    assert len(audit) == 2


# ---------------------------------------------------------------------------- quiet hours


def test_quiet_hours_in_the_shops_zone(
        stack: RulesStack, ami: AmiClient, asterisk_lab_running: RunningLab) -> None:
    shop = stack.fresh_shop("cr-quiet", MERCHANT, MERCHANT_2)
    b = stack.bind(shop, "order-quiet", MERCHANT, BUYER)
    now_local = datetime.now(UTC).astimezone(SHANGHAI)  # the shop's zone: the default
    stack.cli("shop", "rules", shop.shop_id, "--merchant-window", window_around(now_local, 2, 4))
    log = DialplanLog(asterisk_lab_running)

    cdr, attempt = routed(stack, ami, b.x_dialled, MERCHANT)
    refused(cdr, attempt, Reason.QUIET_HOURS)
    assert log.played(f"Local/{b.x_dialled}@privnum-inbound-", Reason.QUIET_HOURS.prompt)
    # callbacks have a window of their own (none here): the buyer still gets through
    cdr, attempt = routed(stack, ami, b.x_dialled, BUYER)
    assert cdr[H[cv.CDR_REASON]] == "bridged"
    # the same hours in a zone where now is inside them: through
    now_there = datetime.now(UTC).astimezone(ZoneInfo("UTC"))
    stack.cli("shop", "set-timezone", shop.shop_id, "UTC")
    stack.cli("shop", "rules", shop.shop_id, "--merchant-window", window_around(now_there, -1, 1))
    cdr, attempt = routed(stack, ami, b.x_dialled, MERCHANT)
    assert cdr[H[cv.CDR_REASON]] == "bridged" and attempt["action"] == "bridge"
    listed = stack.cli("calls", "list", "--shop", shop.shop_id, "--outcome", "rejected")
    assert "permitted call hours" in listed


# ---------------------------------------------------------------------------- caller reporting


def test_unreported_caller_is_bound_but_refused_until_reported(
        stack: RulesStack, ami: AmiClient, asterisk_lab_running: RunningLab) -> None:
    shop = stack.fresh_shop("cr-report", MERCHANT, MERCHANT_2)
    stack.cli("shop", "rules", shop.shop_id, "--require-caller-report", "yes")
    b = stack.bind(shop, "order-report", MERCHANT, BUYER)  # binding an unreported A works
    log = DialplanLog(asterisk_lab_running)
    cdr, attempt = routed(stack, ami, b.x_dialled, MERCHANT)
    refused(cdr, attempt, Reason.CALLER_UNREPORTED)
    assert log.played(f"Local/{b.x_dialled}@privnum-inbound-", Reason.CALLER_UNREPORTED.prompt)
    cdr, attempt = routed(stack, ami, b.x_dialled, BUYER)  # the buyer still reaches the shop
    assert cdr[H[cv.CDR_REASON]] == "bridged"
    out = stack.cli("shop", "report-caller", shop.shop_id, MERCHANT, "reported")
    assert "reported" in out
    cdr, attempt = routed(stack, ami, b.x_dialled, MERCHANT)
    assert cdr[H[cv.CDR_REASON]] == "bridged" and attempt["action"] == "bridge"
    audit = stack.query("SELECT * FROM audit_events WHERE kind = 'caller.reporting' "
                        "AND shop_id = %s", shop.shop_id)
    assert [a["subject"] for a in audit] == ["+86" + MERCHANT]


# ---------------------------------------------------------------------------- quarantined X


def test_quarantined_x_keeps_its_bindings_and_is_not_allocated(
        stack: RulesStack, ami: AmiClient) -> None:
    shop = stack.fresh_shop("cr-quar", MERCHANT, MERCHANT_2)
    b = stack.bind(shop, "order-quar", MERCHANT, BUYER)
    out = stack.cli("pool", "quarantine", b.x, "--reason", "complaints")
    assert "quarantined" in out and "1 active binding" in out
    cdr, attempt = routed(stack, ami, b.x_dialled, MERCHANT)  # the binding keeps working
    assert cdr[H[cv.CDR_REASON]] == "bridged" and attempt["binding_id"] == b.binding_id
    issued = [stack.bind(shop, f"order-quar-{i}", MERCHANT_2, BUYER) for i in range(3)]
    assert b.x not in {n.x for n in issued}  # out of allocation at once
    stack.cli("pool", "release-quarantine", b.x)
    kinds = [r["kind"] for r in stack.query(
        "SELECT kind FROM audit_events WHERE subject = %s AND kind LIKE 'pool.%%' ORDER BY id",
        b.x)]
    assert kinds == ["pool.quarantined", "pool.quarantine_released"]
    events = [r["type"] for r in stack.query(
        "SELECT type FROM webhook_events WHERE stream = %s ORDER BY id", f"number:{b.x}")]
    assert events == ["number.quarantined", "number.quarantine_released"]


# ---------------------------------------------------------------------------- call caps


def test_caps_refuse_the_call_over_the_limit(
        stack: RulesStack, ami: AmiClient, asterisk_lab_running: RunningLab) -> None:
    shop = stack.fresh_shop("cr-caps", MERCHANT, MERCHANT_2)
    stack.cli("shop", "rules", shop.shop_id, "--caps", "buyer=2/5")
    b = stack.bind(shop, "order-caps", MERCHANT, BUYER)
    log = DialplanLog(asterisk_lab_running)
    reasons = []
    for caller in (MERCHANT, BUYER, MERCHANT):  # the buyer takes part in every one of them
        cdr, attempt = routed(stack, ami, b.x_dialled, caller)
        reasons.append(attempt["reason"])
    assert reasons == ["bridged", "bridged", "cap_buyer"]
    refused(cdr, attempt, Reason.CAP_BUYER)
    assert log.played(f"Local/{b.x_dialled}@privnum-inbound-", Reason.CAP_BUYER.prompt)
    # counted in Redis under the buyer's blind index, never in clear
    with contextlib.closing(stack.redis()) as client:
        keys = [k.decode() for k in client.scan_iter(match=f"{stack.redis_prefix}:cap:*")]
    assert any(k.startswith(f"{stack.redis_prefix}:cap:buyer:") for k in keys)
    assert not any(BUYER in k for k in keys)


@pytest.mark.parametrize(("caps", "callers", "reason"), [
    ("caller=2/5", (MERCHANT, MERCHANT, MERCHANT), Reason.CAP_CALLER),
    ("caller=9/9,buyer=9/9,number=2/5", (MERCHANT, BUYER, BUYER), Reason.CAP_NUMBER),
], ids=["caller", "number"])
def test_caller_and_number_caps(stack: RulesStack, ami: AmiClient,
                                asterisk_lab_running: RunningLab, caps: str,
                                callers: tuple[str, ...], reason: Reason) -> None:
    shop = stack.fresh_shop(f"cr-{reason.value.replace('_', '-')}", MERCHANT, MERCHANT_2)
    stack.cli("shop", "rules", shop.shop_id, "--caps", caps)
    b = stack.bind(shop, f"order-{reason.value}", MERCHANT, BUYER)
    log = DialplanLog(asterisk_lab_running)
    reasons = []
    for caller in callers:
        cdr, attempt = routed(stack, ami, b.x_dialled, caller)
        reasons.append(attempt["reason"])
    assert reasons == ["bridged", "bridged", reason.value]
    refused(cdr, attempt, reason)
    assert log.played(f"Local/{b.x_dialled}@privnum-inbound-", reason.prompt)
    subject = reason.value.removeprefix("cap_")
    with contextlib.closing(stack.redis()) as client:
        keys = [k.decode() for k in client.scan_iter(
            match=f"{stack.redis_prefix}:cap:{subject}:*")]
    assert keys  # counted in Redis, where the call path's counter lives


# ---------------------------------------------------------------------------- grace (last)


def test_z_grace_after_expiry_and_fallback_line(
        stack: RulesStack, ami: AmiClient, asterisk_lab_running: RunningLab,
        phones: Callable[..., BaresipUA], expiring: dict[str, tuple[Shop, Binding]]) -> None:
    latest = max(datetime.fromisoformat(b.expires) for _, b in expiring.values())
    left = (latest - datetime.now(tz=latest.tzinfo)).total_seconds()
    time.sleep(max(0.0, left) + 1.0)  # a real expiry: nothing released, nothing faked
    merchant = phones("merchant", MERCHANT, auto_answer=True)
    service = phones("service", MERCHANT_2, auto_answer=True)

    # within the grace window the buyer's callback reaches the shop (A), marked "grace"
    shop, b = expiring["grace"]
    cdr, attempt = routed(stack, ami, b.x_dialled, BUYER)
    seen = merchant.wait_for({"CALL_ESTABLISHED"}, timeout=15)
    assert merchant.caller_id_seen(seen)[0] == b.x_dialled  # A's phone shows X
    merchant.hangup()
    assert cdr[H[cv.CDR_REASON]] == "bridged" and cdr[H[cv.CDR_DIRECTION]] == "callback"
    assert (attempt["action"], attempt["mark"], attempt["binding_id"]) == (
        "bridge", "grace", b.binding_id)
    assert attempt["caller_a"] == "+86" + MERCHANT
    # the call log says so too: the stored row (hash-chained) and the shop's call list
    row, = stack.wait_rows("uniqueid = %s", cdr["UniqueID"])
    assert (row["mark"], row["reason"], row["binding_id"]) == ("grace", "bridged", b.binding_id)
    listed = json.loads(stack.cli("calls", "list", "--shop", shop.shop_id, "--json"))
    assert "grace" in {c["mark"] for c in listed if c["binding_id"] == b.binding_id}
    # the shop calling out after expiry: refused, grace or not
    cdr, attempt = routed(stack, ami, b.x_dialled, MERCHANT)
    refused(cdr, attempt, Reason.BINDING_EXPIRED)

    # after the window: the shop's service line
    _, b = expiring["fallback"]
    cdr, attempt = routed(stack, ami, b.x_dialled, BUYER)
    service.wait_for({"CALL_ESTABLISHED"}, timeout=15)
    service.hangup()
    assert (attempt["action"], attempt["mark"]) == ("bridge", "fallback")
    assert attempt["caller_a"] == "+86" + MERCHANT_2
    row, = stack.wait_rows("uniqueid = %s", cdr["UniqueID"])
    assert row["mark"] == "fallback"

    # no rules: the expired prompt, as before
    _, b = expiring["plain"]
    cdr, attempt = routed(stack, ami, b.x_dialled, BUYER)
    refused(cdr, attempt, Reason.BINDING_EXPIRED)
    assert attempt["mark"] == ""
    row, = stack.wait_rows("uniqueid = %s", cdr["UniqueID"])
    assert row["mark"] is None

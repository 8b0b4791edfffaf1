"""The console's use case over an in-memory reader (pure): who may read what, the 30-day
rule, another shop's call, the chart window, Q.850 in words."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import pytest

from routing.api_ports import Principal, PrincipalKind
from routing.call_log_views import CallRecord, LinkTemplates, Outcome, Source
from routing.console_views import ChainCheck, ChainFinding, DayCalls, PoolUse, StoredCall
from routing.errors import CallLogQueryError, CallLogUnavailable, NotFound, PermissionDenied
from routing.model import AccountRole, Direction
from routing.q850 import cause_text
from routing.usecases.console import Console

NOW = datetime(2026, 11, 28, 13, 0, tzinfo=UTC)
ADMIN = Principal(kind=PrincipalKind.PLATFORM, token_id="t0")
MAIN = Principal(kind=PrincipalKind.ACCOUNT, token_id="t1", shop_id="s1", account_id="m1",
                 role=AccountRole.MAIN)
OTHER = Principal(kind=PrincipalKind.ACCOUNT, token_id="t2", shop_id="s2", account_id="m2",
                  role=AccountRole.MAIN)
AUDITOR = Principal(kind=PrincipalKind.AUDITOR, token_id="t3", shops=frozenset({"s1"}))
LINKS = LinkTemplates(order="https://shop/o/{order_id}", chat="")


def record(shop: str, start: datetime) -> CallRecord:
    return CallRecord(
        system_name="pbx", uniqueid="u1", linkedid="u1", shop_id=shop, order_id="O-1",
        binding_id="b1", buyer_id="", caller_a="+8613800000001", caller_masked="",
        virtual_x="+8617000000001", buyer_masked="139****0001", start_utc=start,
        answer_utc=None, end_utc=start, duration=0, billsec=0, disposition="NO ANSWER",
        hangup_cause=19, direction=Direction.MERCHANT, outcome=Outcome.NOT_ANSWERED,
        reason="bridged", source=Source.AMI)


@dataclass
class FakeReader:
    calls: dict[int, StoredCall] = field(default_factory=dict)
    windows: list[tuple[datetime, datetime, tzinfo]] = field(default_factory=list)
    findings: list[ChainFinding] = field(default_factory=list)

    async def call(self, row_id: int) -> StoredCall | None:
        return self.calls.get(row_id)

    async def calls_per_day(self, since: datetime, until: datetime, zone: tzinfo
                            ) -> list[DayCalls]:
        self.windows.append((since, until, zone))
        return []

    async def pool_use(self, now: datetime, cooldown: timedelta) -> list[PoolUse]:
        return [PoolUse(region="east", free=1)]

    async def verify_chain(self) -> ChainCheck:
        return ChainCheck(ok=not self.findings, rows=9, findings=tuple(self.findings))


def console(reader: FakeReader | None) -> Console:
    return Console(reader=reader, links=LINKS, cooldown=timedelta(hours=1))


async def test_a_call_is_read_by_its_shop_and_the_platform_only() -> None:
    reader = FakeReader({1: StoredCall(1, record("s1", NOW - timedelta(hours=1))),
                         2: StoredCall(2, record("s1", NOW - timedelta(days=31)))})
    entry = await console(reader).call(MAIN, "s1", 1, NOW)
    assert entry.order_link == "https://shop/o/O-1"
    assert (await console(reader).call(ADMIN, "s1", 1, NOW)).id == 1
    assert (await console(reader).call(AUDITOR, "s1", 1, NOW)).id == 1  # granted s1
    with pytest.raises(PermissionDenied):
        await console(reader).call(AUDITOR, "s2", 1, NOW)
    with pytest.raises(PermissionDenied):
        await console(reader).call(OTHER, "s1", 1, NOW)
    with pytest.raises(NotFound):  # asked through its own shop's page: not found
        await console(reader).call(OTHER, "s2", 1, NOW)
    with pytest.raises(NotFound):  # the platform, through the wrong shop's page
        await console(reader).call(ADMIN, "s2", 1, NOW)
    with pytest.raises(NotFound):  # older than the call log's 30 days
        await console(reader).call(MAIN, "s1", 2, NOW)
    with pytest.raises(CallLogUnavailable):
        await console(None).call(MAIN, "s1", 1, NOW)


async def test_operations_and_the_chain_are_the_platforms() -> None:
    reader = FakeReader()
    zone = ZoneInfo("Asia/Shanghai")
    for denied in (console(reader).calls_per_day(MAIN, days=7, zone=zone, now=NOW),
                   console(reader).pool_use(MAIN, NOW), console(reader).verify_chain(MAIN, None)):
        with pytest.raises(PermissionDenied):
            await denied
    await console(reader).calls_per_day(ADMIN, days=7, zone=zone, now=NOW)
    since, until, _ = reader.windows[0]
    # Seven days in Shanghai, today's included: from midnight six days ago, up to now.
    assert since == datetime(2026, 11, 22, tzinfo=zone) and until == NOW
    with pytest.raises(CallLogQueryError):
        await console(reader).calls_per_day(ADMIN, days=31, zone=zone, now=NOW)
    assert (await console(reader).pool_use(ADMIN, NOW))[0].free == 1
    assert (await console(reader).verify_chain(ADMIN, None)).ok


def test_q850_causes_in_words() -> None:
    assert cause_text(17) == "17 user busy"
    assert cause_text(None) == ""
    assert cause_text(99) == "99 (cause not in Q.850 table 1)"


async def test_an_auditor_verifies_for_its_shops_and_sees_their_findings_only() -> None:
    findings = [ChainFinding("altered", 2, "s1", "altered: chain seq 2"),
                ChainFinding("altered", 3, "s2", "altered: chain seq 3"),
                ChainFinding("deleted", 5, None, "deleted: chain seq 5")]
    reader = FakeReader(findings=findings)
    check = await console(reader).verify_chain(AUDITOR, "s1")
    assert not check.ok and check.elsewhere == 1
    assert [(f.position, f.shop_id) for f in check.findings] == [(2, "s1"), (5, None)]
    assert len((await console(reader).verify_chain(ADMIN, None)).findings) == 3
    for shop in ("s2", None):  # a shop not granted; every shop's
        with pytest.raises(PermissionDenied):
            await console(reader).verify_chain(AUDITOR, shop)
    with pytest.raises(PermissionDenied):  # a shop's own account exports nothing
        await console(reader).verify_chain(MAIN, "s1")
    many = FakeReader(findings=[ChainFinding("altered", n, "s1", "") for n in range(25)])
    check = await console(many).verify_chain(AUDITOR, "s1")
    assert len(check.findings) == 20 and check.more == 5

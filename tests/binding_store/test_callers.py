from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from binding_store.accounts import AccountRepository
from binding_store.audit import AuditLog
from binding_store.callers import CallerRepository
from binding_store.db import Database
from binding_store.models import CallerNumber
from binding_store.shops import ShopRepository
from routing.errors import (
    CallerRefused,
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    ServiceNotEnabled,
)
from routing.model import CallerStatus
from routing.shop_views import BatchOutcome, BatchRow
from tests.binding_store.shop_helpers import (
    MAIN_PHONE,
    NOW,
    SUB_REVIEWED,
    SUB_UNREVIEWED,
    enabled_shop,
)

S2_SUB1 = "+8613600136001"  # sub-account of shop s2 (reviewed)


async def _numbers(db: Database, shop_id: str = "s1") -> list[tuple[str, str]]:
    return [(c.number, c.status.value) for c in await CallerRepository(db).list_callers(shop_id)]


async def test_main_number_is_the_default_caller(database: Database) -> None:
    await enabled_shop(database)
    callers = await CallerRepository(database).list_callers("s1")
    assert [(c.number, c.status, c.is_main, c.account_id) for c in callers] == [
        (MAIN_PHONE, CallerStatus.APPROVED, True, "s1-main")]
    assert await CallerRepository(database).approved_numbers("s1") == [MAIN_PHONE]


async def test_add_reviewed_is_approved_unreviewed_is_pending(database: Database) -> None:
    await enabled_shop(database)
    repo = CallerRepository(database)
    ok = await repo.add("s1", "139-0013-9001", actor="s1-main", now=NOW)
    assert (ok.number, ok.status, ok.account_id, ok.is_main) == (
        SUB_REVIEWED, CallerStatus.APPROVED, "s1-sub1", False)
    pending = await repo.add("s1", "0086 13900139002", actor="s1-main", now=NOW)
    assert (pending.number, pending.status) == (SUB_UNREVIEWED, CallerStatus.PENDING)
    assert await repo.approved_numbers("s1") == [MAIN_PHONE, SUB_REVIEWED]
    assert (await repo.get("s1", "13900139001")) == ok
    assert await repo.get("s1", "garbage") is None
    events = await AuditLog(database).events(kind="caller.added")
    assert [(e.subject, e.actor, e.detail["status"]) for e in events] == [
        (SUB_UNREVIEWED, "s1-main", "pending"), (SUB_REVIEWED, "s1-main", "approved")]


@pytest.mark.parametrize(("number", "outcome"), [
    ("12345", BatchOutcome.INVALID_NUMBER),
    ("010-12345678", BatchOutcome.NOT_MOBILE),
    (MAIN_PHONE, BatchOutcome.DUPLICATE),
    ("+8613500135000", BatchOutcome.NOT_SUB_ACCOUNT),
    (S2_SUB1, BatchOutcome.NOT_SUB_ACCOUNT),  # a sub-account of another shop
])
async def test_add_refusals(database: Database, number: str, outcome: BatchOutcome) -> None:
    await enabled_shop(database)
    await enabled_shop(database, "s2")
    with pytest.raises(CallerRefused) as caught:
        await CallerRepository(database).add("s1", number, actor="s1-main", now=NOW)
    assert caught.value.outcome is outcome
    assert await _numbers(database) == [(MAIN_PHONE, "approved")]


async def test_add_twice_is_a_duplicate_and_account_must_match(database: Database) -> None:
    await enabled_shop(database)
    repo = CallerRepository(database)
    with pytest.raises(CallerRefused) as caught:
        await repo.add("s1", SUB_REVIEWED, actor="s1-main", now=NOW, account_id="s1-sub2")
    assert caught.value.outcome is BatchOutcome.NOT_SUB_ACCOUNT
    await repo.add("s1", SUB_REVIEWED, actor="s1-main", now=NOW, account_id="s1-sub1")
    with pytest.raises(CallerRefused) as again:
        await repo.add("s1", SUB_REVIEWED, actor="s1-main", now=NOW)
    assert again.value.outcome is BatchOutcome.DUPLICATE


async def test_only_the_admin_changes_callers(database: Database) -> None:
    await enabled_shop(database)
    await enabled_shop(database, "s2")
    repo = CallerRepository(database)
    await repo.add("s1", SUB_REVIEWED, actor="s1-main", now=NOW)
    for actor in ("s1-sub1", "s2-main", "nobody"):
        with pytest.raises(PermissionDenied):
            await repo.add("s1", SUB_UNREVIEWED, actor=actor, now=NOW)
        with pytest.raises(PermissionDenied):
            await repo.remove("s1", SUB_REVIEWED, actor=actor, now=NOW)
        with pytest.raises(PermissionDenied):
            await repo.set_status("s1", SUB_REVIEWED, CallerStatus.DISABLED, actor=actor, now=NOW)
        with pytest.raises(PermissionDenied):
            await repo.batch_add("s1", [BatchRow(1, SUB_UNREVIEWED)], actor=actor, now=NOW)
    assert await _numbers(database) == [(MAIN_PHONE, "approved"), (SUB_REVIEWED, "approved")]


async def test_main_number_cannot_be_removed_or_switched_off(database: Database) -> None:
    await enabled_shop(database)
    repo = CallerRepository(database)
    with pytest.raises(Conflict, match="cannot be removed"):
        await repo.remove("s1", MAIN_PHONE, actor="s1-main", now=NOW)
    for status in (CallerStatus.DISABLED, CallerStatus.REJECTED, CallerStatus.PENDING):
        with pytest.raises(Conflict, match="stays approved"):
            await repo.set_status("s1", MAIN_PHONE, status, actor="s1-main", now=NOW)
    assert await _numbers(database) == [(MAIN_PHONE, "approved")]


async def test_remove_and_set_status(database: Database) -> None:
    await enabled_shop(database)
    repo = CallerRepository(database)
    await repo.add("s1", SUB_REVIEWED, actor="s1-main", now=NOW)
    await repo.add("s1", SUB_UNREVIEWED, actor="s1-main", now=NOW)
    disabled = await repo.set_status("s1", SUB_REVIEWED, CallerStatus.DISABLED,
                                     actor="s1-main", now=NOW)
    assert disabled.status is CallerStatus.DISABLED
    assert await repo.approved_numbers("s1") == [MAIN_PHONE]
    with pytest.raises(CallerRefused) as caught:  # approval needs the platform's review
        await repo.set_status("s1", SUB_UNREVIEWED, CallerStatus.APPROVED, actor="s1-main",
                              now=NOW)
    assert caught.value.outcome is BatchOutcome.NOT_REVIEWED
    await AccountRepository(database).set_phone_reviewed("s1-sub2", True, actor="p", now=NOW)
    approved = await repo.set_status("s1", SUB_UNREVIEWED, CallerStatus.APPROVED,
                                     actor="s1-main", now=NOW)
    assert approved.status is CallerStatus.APPROVED
    removed = await repo.remove("s1", "13900139001", actor="s1-main", now=NOW)
    assert removed.number == SUB_REVIEWED
    assert await _numbers(database) == [(MAIN_PHONE, "approved"), (SUB_UNREVIEWED, "approved")]
    with pytest.raises(NotFound):
        await repo.remove("s1", SUB_REVIEWED, actor="s1-main", now=NOW)
    kinds = [e.kind for e in await AuditLog(database).events(shop_id="s1")]
    assert kinds[:3] == ["caller.removed", "caller.status", "account.reviewed"]
    assert kinds.count("caller.status") == 2


async def test_batch_reports_every_row_and_lands_the_good_ones(database: Database) -> None:
    await enabled_shop(database)
    await enabled_shop(database, "s2")
    accounts = AccountRepository(database)
    await accounts.add_sub_account("s1", "s1-sub3", actor="s1-main", now=NOW,
                                   phone="+8613900139003", phone_reviewed=True)
    rows = [
        BatchRow(2, "139 0013 9001"),           # ok
        BatchRow(3, "abc"),                     # invalid_number
        BatchRow(4, "010-12345678"),            # not_mobile
        BatchRow(5, SUB_UNREVIEWED),            # not_reviewed
        BatchRow(6, MAIN_PHONE),                # duplicate (already a caller)
        BatchRow(7, S2_SUB1),                   # not_sub_account (another shop's)
        BatchRow(8, "+8613900139001"),          # duplicate (earlier in this batch)
        BatchRow(9, "13900139003", "s1-sub3"),  # ok, account given
        BatchRow(10, "13900139003", "s1-sub1"),  # duplicate
    ]
    report = await CallerRepository(database).batch_add("s1", rows, actor="s1-main", now=NOW)
    assert [(r.line, r.outcome) for r in report.rows] == [
        (2, BatchOutcome.OK), (3, BatchOutcome.INVALID_NUMBER), (4, BatchOutcome.NOT_MOBILE),
        (5, BatchOutcome.NOT_REVIEWED), (6, BatchOutcome.DUPLICATE),
        (7, BatchOutcome.NOT_SUB_ACCOUNT), (8, BatchOutcome.DUPLICATE), (9, BatchOutcome.OK),
        (10, BatchOutcome.DUPLICATE)]
    assert (report.added, report.refused) == (2, 7)
    assert report.rows[0].number == SUB_REVIEWED and report.rows[0].account_id == "s1-sub1"
    assert report.counts()[BatchOutcome.DUPLICATE] == 3
    assert await _numbers(database) == [
        (MAIN_PHONE, "approved"), (SUB_REVIEWED, "approved"), ("+8613900139003", "approved")]
    assert len(await AuditLog(database).events(kind="caller.added")) == 2

    again = await CallerRepository(database).batch_add("s1", rows[:1] + rows[7:8],
                                                        actor="s1-main", now=NOW)
    assert [r.outcome for r in again.rows] == [BatchOutcome.DUPLICATE, BatchOutcome.DUPLICATE]


async def test_callers_need_an_enabled_service(database: Database) -> None:
    await enabled_shop(database)
    await ShopRepository(database).disable("s1", actor="ops", now=NOW)
    repo = CallerRepository(database)
    with pytest.raises(ServiceNotEnabled):
        await repo.add("s1", SUB_REVIEWED, actor="s1-main", now=NOW)
    with pytest.raises(ServiceNotEnabled):
        await repo.batch_add("s1", [BatchRow(1, SUB_REVIEWED)], actor="s1-main", now=NOW)
    with pytest.raises(NotFound):
        await repo.add("nope", SUB_REVIEWED, actor="s1-main", now=NOW)


async def test_database_keeps_shop_numbers_unique(database: Database) -> None:
    await enabled_shop(database)
    async with database.session() as s:
        count = await s.scalar(select(func.count()).select_from(CallerNumber).where(
            CallerNumber.number == MAIN_PHONE))
    assert count == 1
    # The same number may be a caller of two shops (a staff member working for both).
    await enabled_shop(database, "s2", subs=False)
    await AccountRepository(database).add_sub_account(
        "s2", "s2-x", actor="s2-main", now=NOW, phone=SUB_REVIEWED, phone_reviewed=True)
    await CallerRepository(database).add("s1", SUB_REVIEWED, actor="s1-main", now=NOW)
    await CallerRepository(database).add("s2", SUB_REVIEWED, actor="s2-main", now=NOW)
    assert (SUB_REVIEWED, "approved") in await _numbers(database, "s2")


async def test_batch_size_is_bounded(database: Database) -> None:
    from routing.shop_views import MAX_BATCH_ROWS

    await enabled_shop(database)
    rows = [BatchRow(i, SUB_REVIEWED) for i in range(MAX_BATCH_ROWS + 1)]
    with pytest.raises(InvalidInput, match="at most"):
        await CallerRepository(database).batch_add("s1", rows, actor="s1-main", now=NOW)
    assert await _numbers(database) == [(MAIN_PHONE, "approved")]


async def test_concurrent_batches_land_each_number_once(database: Database) -> None:
    await enabled_shop(database, subs=False)
    accounts = AccountRepository(database)
    numbers = [f"+86139{i:08d}" for i in range(40)]
    for i, number in enumerate(numbers):
        await accounts.add_sub_account("s1", f"sub{i}", actor="s1-main", now=NOW, phone=number,
                                       phone_reviewed=True)
    repo = CallerRepository(database)
    rows = [BatchRow(i + 1, n) for i, n in enumerate(numbers)]
    reports = await asyncio.gather(*(
        repo.batch_add("s1", rows[k:] + rows[:k], actor="s1-main", now=NOW)
        for k in (0, 13, 27)))
    for number in numbers:
        outcomes = [r.outcome for report in reports for r in report.rows if r.number == number]
        assert sorted(outcomes) == [BatchOutcome.DUPLICATE, BatchOutcome.DUPLICATE,
                                    BatchOutcome.OK], number
    assert len(await _numbers(database)) == 41
    assert len(await AuditLog(database).events(kind="caller.added", limit=1000)) == 40

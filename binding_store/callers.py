"""Caller numbers (主叫号码) per shop.

Rules: only the shop's main account changes them; the main account's number is created at
enablement and can be neither removed nor switched off; every other number must be the phone of
a sub-account of the same shop. A batch add reports one result per row and lands every good
row: rows are checked first, then all good rows are written in one transaction, so either the
report is exactly what happened or an error says nothing was written (re-running the same file
is safe: rows already added come back as ``duplicate``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from binding_store import audit, watermark
from binding_store.db import Database
from binding_store.models import Account, CallerNumber
from binding_store.redis_index import RedisIndex, hold_states_strict, publish_states
from binding_store.shops import require_admin, require_enabled
from routing.errors import Conflict, InvalidNumber, NotFound, NotMobileNumber
from routing.model import AccountRole, CallerStatus
from routing.numbers import normalize, normalize_mobile
from routing.shop_views import (
    BatchOutcome,
    BatchReport,
    BatchRow,
    BatchRowResult,
    CallerRefused,
    CallerView,
    InvalidInput,
)

MAX_BATCH_ROWS = 5_000  # one transaction; stays well inside the session time limit
_RAW_ECHO = 32


def caller_view(row: CallerNumber) -> CallerView:
    return CallerView(id=row.id, shop_id=row.shop_id, number=row.number,
                      account_id=row.account_id, status=CallerStatus(row.status),
                      is_main=row.is_main, created_at=row.created_at, updated_at=row.updated_at)


class _ShopState:
    """What a classification needs: the shop's sub-accounts by phone and its callers."""

    def __init__(self, subs: Sequence[Account], existing: Iterable[str]) -> None:
        self.subs_by_phone: dict[str, list[Account]] = {}
        for acc in subs:
            if acc.phone:
                self.subs_by_phone.setdefault(acc.phone, []).append(acc)
        self.taken: set[str] = set(existing)

    def classify(self, raw: str, account_id: str | None, *, need_reviewed: bool
                 ) -> tuple[BatchOutcome, str | None, Account | None]:
        try:
            e164 = normalize_mobile(raw)
        except NotMobileNumber:
            return BatchOutcome.NOT_MOBILE, _try_normalize(raw), None
        except InvalidNumber:
            return BatchOutcome.INVALID_NUMBER, None, None
        if e164 in self.taken:
            return BatchOutcome.DUPLICATE, e164, None
        owners = [a for a in self.subs_by_phone.get(e164, [])
                  if account_id is None or a.id == account_id]
        if not owners:
            return BatchOutcome.NOT_SUB_ACCOUNT, e164, None
        reviewed = [a for a in owners if a.phone_reviewed]
        if need_reviewed and not reviewed:
            return BatchOutcome.NOT_REVIEWED, e164, owners[0]
        return BatchOutcome.OK, e164, (reviewed or owners)[0]


def _try_normalize(raw: str) -> str | None:
    try:
        return normalize(raw)
    except InvalidNumber:
        return None


async def _shop_state(session: AsyncSession, shop_id: str) -> _ShopState:
    subs = (await session.scalars(select(Account).where(
        Account.shop_id == shop_id, Account.role == AccountRole.SUB.value))).all()
    numbers = (await session.scalars(
        select(CallerNumber.number).where(CallerNumber.shop_id == shop_id))).all()
    return _ShopState(subs, numbers)


def _insert_stmt(dialect: str) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING number: what landed comes back."""
    table = CallerNumber.metadata.tables[CallerNumber.__tablename__]
    make = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return make(table).on_conflict_do_nothing().returning(table.c.number)


async def _insert_caller(session: AsyncSession, dialect: str, values: dict[str, object]) -> bool:
    """Insert unless (shop, number) exists already (a concurrent add); True if inserted."""
    return bool(await _insert_callers(session, dialect, [values]))


async def _insert_callers(session: AsyncSession, dialect: str,
                          values: list[dict[str, object]]) -> set[str]:
    if not values:
        return set()
    result = await session.execute(_insert_stmt(dialect), values)
    return set(result.scalars().all())


class CallerRepository:
    """Caller numbers of a shop. Every change raises the index watermark in its transaction;
    with an ``index``, a change that takes a number's right to call away first marks its
    Redis state as being changed (a Redis fault aborts it) and every committed change is
    pushed to the index (see ``binding_store.redis_index``)."""

    def __init__(self, db: Database, index: RedisIndex | None = None) -> None:
        self._db = db
        self._index = index

    async def list_callers(self, shop_id: str, *, status: CallerStatus | None = None
                   ) -> list[CallerView]:
        """The main number first, then by number."""
        query = select(CallerNumber).where(CallerNumber.shop_id == shop_id)
        if status is not None:
            query = query.where(CallerNumber.status == status.value)
        query = query.order_by(CallerNumber.is_main.desc(), CallerNumber.number)
        async with self._db.session() as session:
            return [caller_view(r) for r in (await session.scalars(query)).all()]

    async def get(self, shop_id: str, number: str) -> CallerView | None:
        e164 = _try_normalize(number)
        if e164 is None:
            return None
        async with self._db.session() as session:
            row = await self._row(session, shop_id, e164)
        return caller_view(row) if row else None

    async def approved_numbers(self, shop_id: str) -> list[str]:
        """What the confirm-dial step may offer as caller numbers (main first)."""
        return [c.number for c in await self.list_callers(shop_id, status=CallerStatus.APPROVED)]

    async def add(
        self,
        shop_id: str,
        number: str,
        *,
        actor: str,
        now: datetime,
        account_id: str | None = None,
    ) -> CallerView:
        """Add a sub-account's phone: approved if the phone passed review, else pending."""
        async with self._db.session() as session:
            shop, _ = await require_admin(session, shop_id, actor)
            require_enabled(shop)
            state = await _shop_state(session, shop_id)
            outcome, e164, owner = state.classify(number, account_id, need_reviewed=False)
            if outcome is not BatchOutcome.OK or owner is None or e164 is None:
                raise CallerRefused(outcome, e164 or number[:_RAW_ECHO])
            status = CallerStatus.APPROVED if owner.phone_reviewed else CallerStatus.PENDING
            values = _values(shop_id, e164, owner.id, status, now)
            if not await _insert_caller(session, self._db.dialect, values):
                raise CallerRefused(BatchOutcome.DUPLICATE, e164)
            audit.record(session, now=now, actor=actor, kind=audit.CALLER_ADDED, shop_id=shop_id,
                         subject=e164, detail={"account": owner.id, "status": status.value})
            version = await watermark.bump(session)
            await session.commit()
            row = await self._row(session, shop_id, e164)
        assert row is not None
        await publish_states(self._index, version, callers=[(shop_id, e164, status.value)])
        return caller_view(row)

    async def batch_add(
        self,
        shop_id: str,
        rows: Sequence[BatchRow],
        *,
        actor: str,
        now: datetime,
    ) -> BatchReport:
        """Batch enabling: only reviewed mobile numbers of this shop's sub-accounts, approved."""
        if len(rows) > MAX_BATCH_ROWS:
            raise InvalidInput(f"a batch holds at most {MAX_BATCH_ROWS} rows, got {len(rows)}")
        async with self._db.session() as session:
            shop, _ = await require_admin(session, shop_id, actor)
            require_enabled(shop)
            state = await _shop_state(session, shop_id)
            planned: list[tuple[BatchRow, BatchOutcome, str | None, Account | None]] = []
            for row in rows:
                outcome, e164, owner = state.classify(row.number, row.account_id,
                                                      need_reviewed=True)
                if outcome is BatchOutcome.OK and e164 is not None:
                    state.taken.add(e164)  # a repeat later in the file is a duplicate
                planned.append((row, outcome, e164, owner))
            good = [(row, e164, owner) for row, outcome, e164, owner in planned
                    if outcome is BatchOutcome.OK and e164 is not None and owner is not None]
            # One statement for all good rows; a number a concurrent add took meanwhile is
            # skipped by the database and reported as a duplicate.
            inserted = await _insert_callers(session, self._db.dialect, [
                _values(shop_id, e164, owner.id, CallerStatus.APPROVED, now)
                for _, e164, owner in good])
            for row, e164, owner in good:
                if e164 in inserted:
                    audit.record(session, now=now, actor=actor, kind=audit.CALLER_ADDED,
                                 shop_id=shop_id, subject=e164,
                                 detail={"account": owner.id, "status": "approved",
                                         "via": "batch", "line": row.line})
            version = await watermark.bump(session) if inserted else 0
            await session.commit()
        results = []
        for row, planned_outcome, e164, owner in planned:
            lost_race = planned_outcome is BatchOutcome.OK and e164 not in inserted
            results.append(BatchRowResult(
                line=row.line, raw=row.number.strip()[:_RAW_ECHO],
                outcome=BatchOutcome.DUPLICATE if lost_race else planned_outcome,
                number=e164, account_id=owner.id if owner else row.account_id))
        if inserted:
            await publish_states(self._index, version, callers=[
                (shop_id, n, CallerStatus.APPROVED.value) for n in sorted(inserted)])
        return BatchReport(rows=tuple(results))

    async def remove(self, shop_id: str, number: str, *, actor: str, now: datetime
                     ) -> CallerView:
        e164 = normalize(number)
        async with self._db.session() as session:
            await require_admin(session, shop_id, actor)
            row = await self._existing(session, shop_id, e164)
            if row.is_main:
                raise Conflict(f"{e164} is the main account's caller number and cannot be removed")
            view = caller_view(row)
            await session.execute(delete(CallerNumber).where(CallerNumber.id == row.id))
            audit.record(session, now=now, actor=actor, kind=audit.CALLER_REMOVED,
                         shop_id=shop_id, subject=e164,
                         detail={"account": row.account_id, "status": row.status})
            version = await watermark.bump(session)
            await hold_states_strict(self._index, version, callers=[(shop_id, e164)])
            await session.commit()
        await publish_states(self._index, version, callers=[(shop_id, e164, None)])
        return view

    async def set_status(
        self, shop_id: str, number: str, status: CallerStatus, *, actor: str, now: datetime
    ) -> CallerView:
        e164 = normalize(number)
        async with self._db.session() as session:
            await require_admin(session, shop_id, actor)
            row = await self._existing(session, shop_id, e164)
            if row.is_main and status is not CallerStatus.APPROVED:
                raise Conflict(f"{e164} is the main account's caller number and stays approved")
            if status is CallerStatus.APPROVED and not row.is_main:
                owner = await session.get(Account, row.account_id)
                if owner is None or not owner.phone_reviewed:
                    raise CallerRefused(BatchOutcome.NOT_REVIEWED, e164)
            version = 0
            if row.status != status.value:
                audit.record(session, now=now, actor=actor, kind=audit.CALLER_STATUS,
                             shop_id=shop_id, subject=e164,
                             detail={"from": row.status, "to": status.value})
                row.status = status.value
                row.updated_at = now
                version = await watermark.bump(session)
                if status is not CallerStatus.APPROVED:
                    await hold_states_strict(self._index, version, callers=[(shop_id, e164)])
                await session.commit()
            view = caller_view(row)
        if version:
            await publish_states(self._index, version, callers=[(shop_id, e164, status.value)])
        return view

    @staticmethod
    async def _row(session: AsyncSession, shop_id: str, e164: str) -> CallerNumber | None:
        return (await session.scalars(select(CallerNumber).where(
            CallerNumber.shop_id == shop_id, CallerNumber.number == e164))).first()

    async def _existing(self, session: AsyncSession, shop_id: str, e164: str) -> CallerNumber:
        row = await self._row(session, shop_id, e164)
        if row is None:
            raise NotFound(f"{e164} is not a caller number of shop {shop_id}")
        return row


def _values(shop_id: str, e164: str, account_id: str, status: CallerStatus, now: datetime
            ) -> dict[str, object]:
    return {"shop_id": shop_id, "number": e164, "account_id": account_id,
            "status": status.value, "is_main": False, "created_at": now, "updated_at": now}

"""The console's reads (``routing.console_views.ConsoleReader``): one call record, calls per
day, the pool's use per region, the chain check."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import Select, and_, func, select

from binding_store.call_log import record_of
from binding_store.call_log_audit import verify
from binding_store.call_log_query import stream_rows
from binding_store.cdr_models import Cdr
from binding_store.db import Database
from binding_store.extension_models import PoolExtension
from binding_store.models import Binding, PoolNumber
from routing.call_log_views import Outcome
from routing.console_views import ChainCheck, ChainFinding, DayCalls, PoolUse, StoredCall
from routing.extensions import NumberMode
from routing.model import BindingState, PoolState
from routing.reasons import Reason


def call_bucket(outcome: str, reason: str) -> str:
    """``"bridged"`` for a call privnum put through, else the reason it was refused."""
    if outcome in (Outcome.ANSWERED, Outcome.NOT_ANSWERED) or reason == Reason.BRIDGED:
        return Reason.BRIDGED.value
    return reason or "unknown"


class ConsoleReader:
    """``db`` is the call log's (a replica when configured); ``pool_db`` the primary."""

    def __init__(self, db: Database, pool_db: Database | None = None) -> None:
        self._db = db
        self._pool_db = pool_db or db

    async def call(self, row_id: int) -> StoredCall | None:
        async with self._db.session() as session:
            row = (await session.execute(
                select(Cdr.__table__).where(Cdr.id == row_id))).first()
        return None if row is None else StoredCall(id=row.id, record=record_of(row))

    async def calls_per_day(self, since: datetime, until: datetime, zone: tzinfo
                            ) -> list[DayCalls]:
        # Streamed and bucketed here: a day in the platform's zone is no SQL date in every
        # dialect, and three narrow columns over at most 30 days are cheap to read.
        stmt: Select[Any] = (select(Cdr.__table__.c.start_utc, Cdr.__table__.c.outcome,
                                    Cdr.__table__.c.reason)
                .where(Cdr.start_utc >= since, Cdr.start_utc < until))
        days: dict[date, Counter[str]] = {}
        first, last = since.astimezone(zone).date(), until.astimezone(zone).date()
        day = first
        while day <= last:
            days[day] = Counter()
            day += timedelta(days=1)
        async for row in stream_rows(self._db, stmt):
            local = row.start_utc.astimezone(zone).date()
            days.setdefault(local, Counter())[call_bucket(row.outcome, row.reason)] += 1
        return [DayCalls(day=d, counts=dict(c)) for d, c in sorted(days.items())]

    async def pool_use(self, now: datetime, cooldown: timedelta) -> list[PoolUse]:
        active = and_(Binding.state == BindingState.ACTIVE.value, Binding.expires_at > now)
        in_use = PoolNumber.number.in_(select(Binding.virtual_x).where(active))
        cooling = and_(PoolNumber.last_released_at.is_not(None),
                       PoolNumber.last_released_at > now - cooldown)
        available = PoolNumber.state == PoolState.AVAILABLE.value
        numbers = select(
            PoolNumber.region, PoolNumber.mode,
            func.count().filter(available, in_use),
            func.count().filter(available, ~in_use, cooling),
            func.count().filter(available, ~in_use, ~cooling),
            func.count().filter(PoolNumber.state == PoolState.QUARANTINED.value),
            func.count().filter(PoolNumber.state == PoolState.RETIRED.value),
        ).group_by(PoolNumber.region, PoolNumber.mode)
        # An extension number's slots: those of numbers in service, and those an active
        # binding holds (the binding, not the slot's hint, is what holds it).
        slots = (select(PoolNumber.region, func.count())
                 .join(PoolExtension, PoolExtension.number == PoolNumber.number)
                 .where(available).group_by(PoolNumber.region))
        held = (select(PoolNumber.region, func.count())
                .join(Binding, Binding.virtual_x == PoolNumber.number)
                .where(active, Binding.extension != "").group_by(PoolNumber.region))
        async with self._pool_db.session() as session:
            rows = (await session.execute(numbers)).all()
            slot_rows = {r[0]: int(r[1]) for r in (await session.execute(slots)).all()}
            held_rows = {r[0]: int(r[1]) for r in (await session.execute(held)).all()}
        ext = NumberMode.EXTENSION.value
        found = [PoolUse(region=r[0], mode=r[1], in_use=int(r[2]), cooling_down=int(r[3]),
                         free=int(r[4]), quarantined=int(r[5]), retired=int(r[6]),
                         slots=slot_rows.get(r[0], 0) if r[1] == ext else 0,
                         slots_in_use=held_rows.get(r[0], 0) if r[1] == ext else 0)
                 for r in rows]
        return sorted(found, key=lambda p: (p.region, p.mode))

    async def verify_chain(self) -> ChainCheck:
        report = await verify(self._db)
        return ChainCheck(ok=report.ok, rows=report.checked, findings=tuple(
            ChainFinding(kind=p.kind.value, position=p.chain_seq, shop_id=p.shop_id,
                         detail=str(p)) for p in report.problems))

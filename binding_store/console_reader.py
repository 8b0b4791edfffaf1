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
from binding_store.models import Binding, PoolNumber
from routing.call_log_views import Outcome
from routing.console_views import ChainCheck, ChainFinding, DayCalls, PoolUse, StoredCall
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
        active = (select(Binding.virtual_x)
                  .where(Binding.state == BindingState.ACTIVE.value, Binding.expires_at > now))
        in_use = PoolNumber.number.in_(active)
        cooling = and_(PoolNumber.last_released_at.is_not(None),
                       PoolNumber.last_released_at > now - cooldown)
        available = PoolNumber.state == PoolState.AVAILABLE.value
        stmt = select(
            PoolNumber.region,
            func.count().filter(available, in_use),
            func.count().filter(available, ~in_use, cooling),
            func.count().filter(available, ~in_use, ~cooling),
            func.count().filter(PoolNumber.state == PoolState.QUARANTINED.value),
            func.count().filter(PoolNumber.state == PoolState.RETIRED.value),
        ).group_by(PoolNumber.region).order_by(PoolNumber.region)
        async with self._pool_db.session() as session:
            rows = (await session.execute(stmt)).all()
        return [PoolUse(region=r[0], in_use=int(r[1]), cooling_down=int(r[2]), free=int(r[3]),
                        quarantined=int(r[4]), retired=int(r[5])) for r in rows]

    async def verify_chain(self) -> ChainCheck:
        report = await verify(self._db)
        return ChainCheck(ok=report.ok, rows=report.checked, findings=tuple(
            ChainFinding(kind=p.kind.value, position=p.chain_seq, shop_id=p.shop_id,
                         detail=str(p)) for p in report.problems))

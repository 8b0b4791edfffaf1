"""The call log's write side: idempotent, batched, hash-chained appends (the ``CdrSink``).

Every append runs in one transaction that first takes the chain lock (the single
``cdr_chain`` row: a write on SQLite, a row lock on PostgreSQL), then drops records already
stored, computes each new row's hash over the previous one and inserts with
``ON CONFLICT DO NOTHING``. Appends from several tasks or processes are therefore serialized
and the chain never forks or skips.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, insert, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from binding_store.cdr_models import Cdr, CdrChain
from binding_store.db import Database
from binding_store.models import Binding, CallAttempt
from binding_store.outbox import Outbox
from routing.binding_views import BindingView
from routing.call_log_views import (
    GENESIS_HASH,
    CallRecord,
    Source,
    record_from_attempt,
    record_from_cdr,
    row_digest,
)
from routing.cdr import CdrEvent, billable
from routing.events import hangup_side, record_events
from routing.model import Action, Direction
from routing.model import CallAttempt as AttemptValue
from routing.reasons import Reason

RECORD_FIELDS = tuple(f.name for f in dataclasses.fields(CallRecord))
# Attempts older than this are never closed as orphans (they may have been purged).
ORPHAN_LOOKBACK = timedelta(days=7)
# How far a stored record's time may lie from the time of a CDR for the same call: a record
# closed from its routing decision carries the decision's instant (privnum's clock), the CDR the
# channel's start (Asterisk's). Look-ups are bounded by it so they touch only the time
# partitions the call can be in.
SAME_CALL_SLACK = timedelta(days=2)


class ChainConflict(RuntimeError):
    """A row appeared outside the chain lock; the append is rolled back and retried."""


def stored_columns(row: Cdr | Any) -> dict[str, Any]:
    """The record columns of a ``Cdr`` or of a result row carrying them, as stored (the
    chain's hash input)."""
    return {name: getattr(row, name) for name in RECORD_FIELDS}


def record_of(row: Cdr | Any) -> CallRecord:
    return CallRecord.from_stored(stored_columns(row))


def attempt_value(row: CallAttempt) -> AttemptValue | None:
    try:
        return AttemptValue(
            uniqueid=row.uniqueid, linkedid=row.linkedid, at=row.at,
            caller_masked=row.caller_masked, caller_a=row.caller_a, virtual_x=row.virtual_x,
            action=Action(row.action), reason=Reason(row.reason),
            direction=Direction(row.direction) if row.direction else None,
            binding_id=row.binding_id, shop_id=row.shop_id, order_id=row.order_id,
            system_name=row.system_name, extension=row.extension or None,
            mark=row.mark or "")
    except ValueError:
        return None


class CallLogStore:
    """Implements ``routing.cdr_ports.CdrSink`` over a :class:`Database`."""

    def __init__(self, db: Database, outbox: Outbox | None = None) -> None:
        self.db = db
        # Each appended record's call events (call.ringing|answered|ended, cdr) are written
        # in the append's transaction; without an outbox none are.
        self._outbox = outbox or Outbox(enabled=False)

    # ---- CdrSink

    async def write_batch(self, events: Sequence[CdrEvent], source: str = "ami") -> int:
        calls = billable(events)
        if not calls:
            return 0
        for attempt in range(2):
            try:
                async with self.db.session() as session:
                    stored = await self._append_cdrs(session, calls, Source(source))
                    await session.commit()
                    return stored
            except ChainConflict:
                if attempt:
                    raise
        return 0  # pragma: no cover

    async def close_orphans(self, now: datetime, grace_seconds: float) -> int:
        cutoff = now - timedelta(seconds=grace_seconds)
        total = 0
        while True:
            async with self.db.session() as session:
                await self.lock_chain(session, now)
                orphan = ~exists().where(and_(
                    Cdr.uniqueid == CallAttempt.uniqueid,
                    or_(Cdr.system_name == CallAttempt.system_name,
                        CallAttempt.system_name == ""),
                    Cdr.start_utc >= now - ORPHAN_LOOKBACK - SAME_CALL_SLACK))
                rows = (await session.scalars(
                    select(CallAttempt).options(undefer(CallAttempt.mark))
                    .where(CallAttempt.at < cutoff)
                    .where(CallAttempt.at >= now - ORPHAN_LOOKBACK)
                    .where(orphan)
                    .order_by(CallAttempt.at).limit(500))).all()
                values = [(r, v) for r in rows if (v := attempt_value(r)) is not None]
                if not values:
                    return total
                bindings = await _bindings(session, {v.binding_id for _, v in values}, now)
                records = [record_from_attempt(v, bindings.get(v.binding_id)) for _, v in values]
                total += await self._insert_chained(session, records, now)
                await session.commit()

    async def last_system_name(self) -> str:
        """The Asterisk system name of the newest record that came over AMI ("" if none)."""
        async with self.db.session() as session:
            name = await session.scalar(
                select(Cdr.system_name).where(Cdr.source == Source.AMI.value)
                .order_by(Cdr.id.desc()).limit(1))
        return name or ""

    # ---- internals

    async def _append_cdrs(self, session: AsyncSession, calls: list[CdrEvent],
                           source: Source) -> int:
        now = datetime.now(UTC)
        await self.lock_chain(session, now)
        stored = {(r.system_name, r.uniqueid) for r in (await session.execute(
            select(Cdr.system_name, Cdr.uniqueid)
            .where(tuple_(Cdr.system_name, Cdr.uniqueid).in_([c.key for c in calls]))
            .where(*_near(Cdr.start_utc, [c.start for c in calls])))).all()}
        fresh = [c for c in calls if c.key not in stored]
        if not fresh:
            return 0
        attempts = await _attempts(session, fresh)
        binding_ids = {a.binding_id for a in attempts.values() if a.binding_id}
        binding_ids |= {c.pn_binding for c in fresh if c.pn_binding}
        bindings = await _bindings(session, binding_ids, now)
        records = []
        for cdr in fresh:
            attempt = attempts.get(cdr.uniqueid)
            binding_id = (attempt.binding_id if attempt else "") or cdr.pn_binding
            records.append(record_from_cdr(cdr, attempt, bindings.get(binding_id), source))
        lastapps = [cdr.lastapp for cdr in fresh]
        return await self._insert_chained(session, records, now, lastapps)

    async def lock_chain(self, session: AsyncSession, now: datetime) -> tuple[int, str]:
        """Take the chain lock (first statement of the transaction: a write) and read the head."""
        await session.execute(_upsert(session).values(
            id=1, head_seq=0, head_hash=GENESIS_HASH, anchor_seq=0, anchor_hash=GENESIS_HASH,
            updated_at=now).on_conflict_do_nothing(index_elements=["id"]))
        head = (await session.execute(
            update(CdrChain).where(CdrChain.id == 1).values(updated_at=now)
            .returning(CdrChain.head_seq, CdrChain.head_hash))).one()
        return int(head[0]), str(head[1])

    async def _insert_chained(self, session: AsyncSession, records: list[CallRecord],
                              now: datetime, lastapps: Sequence[str] = ()) -> int:
        """Append ``records`` after the head (the chain lock must be held), with their call
        events (``lastapps``: each record's CDR's last application, where there is one)."""
        head = (await session.execute(
            select(CdrChain.head_seq, CdrChain.head_hash).where(CdrChain.id == 1))).one()
        seq, prev = int(head[0]), str(head[1])
        rows: list[dict[str, Any]] = []
        for record in records:
            seq += 1
            columns = record.columns()
            digest = row_digest(prev, seq, columns, now)
            rows.append({**columns, "chain_seq": seq, "prev_hash": prev,
                         "row_hash": digest, "ingested_at": now})
            prev = digest
        # No conflict target: the idempotency key is (system_name, uniqueid) on SQLite and
        # (system_name, uniqueid, start_utc) on partitioned PostgreSQL.
        stmt = _insert_cdr(session).on_conflict_do_nothing().returning(Cdr.id)
        inserted = len((await session.execute(stmt, rows)).all())
        if inserted != len(rows):
            await session.rollback()
            raise ChainConflict("call record stored outside the chain lock")
        await session.execute(update(CdrChain).where(CdrChain.id == 1)
                              .values(head_seq=seq, head_hash=prev, updated_at=now))
        if self._outbox.enabled:
            apps = list(lastapps) or [""] * len(records)
            events = [event for record, row, app in zip(records, rows, apps, strict=True)
                      for event in record_events(record, chain_seq=row["chain_seq"],
                                                 row_hash=row["row_hash"],
                                                 hangup_by=hangup_side(record, app))]
            await self._outbox.write(session, events, now)
        return inserted


def _near(column: Any, times: list[datetime]) -> tuple[Any, Any]:
    """``column`` within ``SAME_CALL_SLACK`` of the batch's times (partition pruning)."""
    return column >= min(times) - SAME_CALL_SLACK, column <= max(times) + SAME_CALL_SLACK


def _dialect(session: AsyncSession) -> str:
    bind = session.bind
    assert bind is not None
    return bind.dialect.name


def _upsert(session: AsyncSession) -> Any:
    if _dialect(session) == "postgresql":
        return postgresql.insert(CdrChain)
    return sqlite.insert(CdrChain)


def _insert_cdr(session: AsyncSession) -> Any:
    dialect = _dialect(session)
    if dialect == "postgresql":
        return postgresql.insert(Cdr)
    if dialect == "sqlite":
        return sqlite.insert(Cdr)
    return insert(Cdr)  # pragma: no cover


async def _attempts(session: AsyncSession, cdrs: list[CdrEvent]) -> dict[str, AttemptValue]:
    """The routing decision of each CDR: same uniqueid (same or unnamed system), else the
    decision recorded for the same linkedid."""
    keys = {k for c in cdrs for k in (c.key, ("", c.uniqueid))}
    links = {c.linkedid for c in cdrs}
    rows = (await session.scalars(select(CallAttempt).options(undefer(CallAttempt.mark)).where(
        or_(tuple_(CallAttempt.system_name, CallAttempt.uniqueid).in_(keys),
            CallAttempt.linkedid.in_(links)))
        .where(*_near(CallAttempt.at, [c.start for c in cdrs])))).all()
    by_uid: dict[tuple[str, str], AttemptValue] = {}
    by_link: dict[str, AttemptValue] = {}
    for row in rows:
        value = attempt_value(row)
        if value is None:
            continue
        by_uid[(row.system_name, row.uniqueid)] = value
        if row.linkedid:
            by_link.setdefault(row.linkedid, value)
    found: dict[str, AttemptValue] = {}
    for cdr in cdrs:
        match = (by_uid.get((cdr.system_name, cdr.uniqueid)) or by_uid.get(("", cdr.uniqueid))
                 or by_link.get(cdr.linkedid))
        if match is not None:
            found[cdr.uniqueid] = match
    return found


async def _bindings(session: AsyncSession, ids: set[str], now: datetime
                    ) -> dict[str, BindingView]:
    ids.discard("")
    if not ids:
        return {}
    rows = (await session.scalars(select(Binding).where(Binding.id.in_(ids)))).all()
    return {row.id: row.view(now) for row in rows}

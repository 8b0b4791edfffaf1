"""Retention of the partitioned call log (PostgreSQL): whole partitions are dropped, the hash
chain stays verifiable.

The chain may only lose a prefix (``verify`` starts at the anchor). A time partition is not a
prefix: a call that started before the partition's end can be appended after calls of the next
partition started (its CDR comes at hang-up; late imports and closed orphans come later still).
So a purge, under the chain lock:

1. takes the partitions that end on or before the cutoff, plus the DEFAULT partition's rows
   older than the cutoff: the *due* rows;
2. finds the chain position of the oldest row that stays (``keep_from``); every due row before
   it is deleted, the chain's anchor moves to the last of them;
3. drops each due partition after moving its rows at or after ``keep_from`` (a few late
   appends, if any) into the DEFAULT partition, where the next purge deletes them once they are
   a prefix as well.

Records are therefore kept ``retention_days`` at least and at most one partition period more.
The routing decisions (``call_attempts``) are dropped by partition the same way, without a
chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from binding_store.partitioned import default_partition
from binding_store.partitions import Partition, is_partitioned, list_partitions


@dataclass(frozen=True)
class DropPlan:
    rows: int  # call records leaving the chain
    first_seq: int | None
    last_seq: int | None
    partitions: tuple[str, ...]  # partitions dropped (cdrs and call_attempts)
    kept_late: int  # due records kept for now (appended after a record that stays)
    attempts: int  # routing decisions dropped


async def plan_and_drop(session: AsyncSession, cutoff: datetime, dry_run: bool
                        ) -> tuple[DropPlan, str | None]:
    """Purge the partitioned ``cdrs`` and ``call_attempts`` (the chain lock must be held).
    Returns the plan and the new anchor's hash (``None`` if nothing left the chain)."""
    conn = await session.connection()
    await session.execute(text("SET LOCAL TimeZone = 'UTC'"))
    await session.execute(text("SET LOCAL lock_timeout = '10s'"))
    due = _due(await list_partitions(conn, "cdrs"), cutoff)
    in_default = f"tableoid = CAST('{default_partition('cdrs')}' AS regclass)"
    # due: the rows of the due partitions (all before the last one's end) and the DEFAULT
    # partition's rows before the cutoff
    is_due = f"({in_default} AND start_utc < :cutoff)"
    if due:
        is_due = f"(start_utc < :upper OR {is_due})"
    args = {"cutoff": cutoff, "upper": due[-1].upper if due else None}
    keep_from = (await session.execute(text(
        f"SELECT min(chain_seq) FROM cdrs WHERE NOT {is_due}"), args)).scalar()
    leaving = "" if keep_from is None else "WHERE chain_seq < :keep"
    count, first, last = (await session.execute(text(
        f"SELECT count(*), min(chain_seq), max(chain_seq) FROM cdrs {leaving}"),
        {"keep": keep_from})).one()
    late = 0
    if keep_from is not None:
        late = int((await session.execute(text(
            f"SELECT count(*) FROM cdrs WHERE chain_seq >= :keep AND {is_due}"),
            {**args, "keep": keep_from})).scalar_one())
    attempt_parts, attempts = await _attempts_due(session, cutoff)
    plan = DropPlan(rows=int(count or 0), first_seq=first, last_seq=last,
                    partitions=tuple(p.name for p in (*due, *attempt_parts)),
                    kept_late=late, attempts=attempts)
    if dry_run:
        return plan, None
    anchor_hash = None
    if plan.rows:
        anchor_hash = (await session.execute(text(
            "SELECT row_hash FROM cdrs WHERE chain_seq = :s"), {"s": last})).scalar_one()
        await session.execute(text(
            f"DELETE FROM {default_partition('cdrs')} WHERE chain_seq <= :last"), {"last": last})
    for part in due:  # rows after the new anchor stay (in the DEFAULT partition)
        await _detach_keeping(session, "cdrs", part.name, "chain_seq > :last",
                              {"last": last if plan.rows else -1})
    for part in attempt_parts:
        await _detach_keeping(session, "call_attempts", part.name, None, {})
    await session.execute(text(
        f"DELETE FROM {default_partition('call_attempts')} WHERE at < :cutoff"),
        {"cutoff": cutoff})
    return plan, anchor_hash


async def _attempts_due(session: AsyncSession, cutoff: datetime
                        ) -> tuple[list[Partition], int]:
    conn = await session.connection()
    if not await is_partitioned(conn, "call_attempts"):
        return [], 0
    parts = _due(await list_partitions(conn, "call_attempts"), cutoff)
    count = (await session.execute(text(
        "SELECT count(*) FROM call_attempts WHERE at < :cutoff"
        + (" AND (at < :upper OR tableoid = CAST(:d AS regclass))" if parts else
           " AND tableoid = CAST(:d AS regclass)")),
        {"cutoff": cutoff, "upper": parts[-1].upper if parts else None,
         "d": default_partition("call_attempts")})).scalar_one()
    return parts, int(count)


async def _detach_keeping(session: AsyncSession, table: str, partition: str,
                          keep: str | None, args: dict[str, object]) -> None:
    """Detach and drop ``partition``; its rows matching ``keep`` go back into ``table``
    (its DEFAULT partition: no other covers their range any more)."""
    await session.execute(text(f"ALTER TABLE {table} DETACH PARTITION {partition}"))
    if keep is not None:
        await session.execute(text(
            f"INSERT INTO {table} SELECT * FROM {partition} WHERE {keep}"), args)
    await session.execute(text(f"DROP TABLE {partition}"))


def _due(parts: list[Partition], cutoff: datetime) -> list[Partition]:
    """Partitions wholly before ``cutoff``, oldest first (sorted, they never overlap: the
    first that ends after the cutoff ends the list)."""
    due = []
    for part in parts:
        if part.is_default or part.upper is None or part.upper > cutoff:
            break
        due.append(part)
    return due

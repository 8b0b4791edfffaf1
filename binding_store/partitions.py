"""Partition upkeep on PostgreSQL: the time partitions of ``cdrs``, ``call_attempts`` and
``audit_events`` are created ahead (by ``privnum serve`` and ``privnum db partitions create``)
and listed; dropping them for retention is ``binding_store.call_log_retention``.

Creating is idempotent and safe to run from several nodes at once: each partition is created
in its own short transaction under an advisory lock, after re-reading what exists. A new
partition is built detached and then attached (``ATTACH PARTITION`` locks the parent less
than ``CREATE TABLE ... PARTITION OF``); rows the DEFAULT partition caught for its range (the
service was down past the partitions it had made) are moved into it first. DDL waits at most
``lock_timeout`` for the tables' locks; what could not be done now is done on the next run.
SQLite keeps one table per log: every function here is a no-op there.
"""

from __future__ import annotations

import calendar
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from binding_store.db import Database, guard
from binding_store.partitioned import PARTITION_KEYS, PARTITION_STORAGE, default_partition

log = logging.getLogger(__name__)

Period = Literal["day", "week", "month"]
PERIODS: tuple[Period, ...] = ("day", "week", "month")
# pg_advisory_xact_lock key ("privnum" partitions): one partition change at a time, all nodes.
LOCK_KEY = 0x7072_6976_6E75_6D
LOCK_TIMEOUT = "5s"
_BOUND = re.compile(r"FROM \((.+)\) TO \((.+)\)")


@dataclass(frozen=True)
class Partition:
    table: str
    name: str
    lower: datetime | None  # None: the DEFAULT partition (or an unbounded side)
    upper: datetime | None
    rows: int  # the planner's estimate (pg_class.reltuples), -1 if never analysed

    @property
    def is_default(self) -> bool:
        return self.lower is None and self.upper is None


@dataclass
class EnsureReport:
    created: list[str] = field(default_factory=list)
    moved: dict[str, int] = field(default_factory=dict)  # partition -> rows moved in from DEFAULT
    waiting: list[str] = field(default_factory=list)  # not created now: lock busy
    in_default: dict[str, int] = field(default_factory=dict)  # table -> rows left in DEFAULT


# ---- pure: periods and the partitions a span still needs

def period_start(moment: datetime, period: Period) -> datetime:
    """Start (UTC) of the day, ISO week (Monday) or month holding ``moment``."""
    day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def next_period(start: datetime, period: Period) -> datetime:
    if period == "day":
        return start + timedelta(days=1)
    if period == "week":
        return start + timedelta(weeks=1)
    days = calendar.monthrange(start.year, start.month)[1]
    return start.replace(day=1) + timedelta(days=days)


def periods_ahead(now: datetime, period: Period, ahead: int) -> tuple[datetime, datetime]:
    """The span to keep covered: from the current period's start to ``ahead`` periods later."""
    start = end = period_start(now, period)
    for _ in range(ahead + 1):
        end = next_period(end, period)
    return start, end


def missing_ranges(existing: Sequence[tuple[datetime, datetime]], start: datetime,
                   end: datetime, period: Period) -> list[tuple[datetime, datetime]]:
    """The pieces of ``[start, end)`` no existing range covers, cut at period boundaries (a
    partition never overlaps another, whatever period made the existing ones)."""
    gaps: list[tuple[datetime, datetime]] = []
    cursor = start
    for lo, hi in sorted(existing):
        if hi <= cursor:
            continue
        if lo >= end:
            break
        if lo > cursor:
            gaps.append((cursor, lo))
        cursor = max(cursor, hi)
    if cursor < end:
        gaps.append((cursor, end))
    pieces: list[tuple[datetime, datetime]] = []
    for gap_start, gap_end in gaps:
        lo = gap_start
        while lo < gap_end:
            cut = min(gap_end, next_period(period_start(lo, period), period))
            pieces.append((lo, cut))
            lo = cut
    return pieces


def partition_name(table: str, lower: datetime) -> str:
    """``cdrs_p20261130``: the table and the partition's first day (and time, if not 00:00)."""
    lower = lower.astimezone(UTC)
    return f"{table}_p{lower:%Y%m%d}" + ("" if lower.time() == datetime.min.time()
                                        else f"_{lower:%H%M%S}")


# ---- PostgreSQL

def _bound(value: str) -> datetime | None:
    value = value.strip()
    if not value.startswith("'"):
        return None  # MINVALUE / MAXVALUE
    return datetime.fromisoformat(value.strip("'")).astimezone(UTC)


async def _utc_session(conn: AsyncConnection) -> None:
    # Partition bounds are printed in the session's time zone: read them in UTC.
    await conn.execute(text("SET LOCAL TimeZone = 'UTC'"))
    await conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))


async def list_partitions(conn: AsyncConnection, table: str) -> list[Partition]:
    """The partitions of ``table``, oldest first, the DEFAULT partition last."""
    rows = (await conn.execute(text(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), c.reltuples "
        "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = CAST(:t AS regclass)"), {"t": table})).all()
    found = []
    for name, bound, tuples in rows:
        match = _BOUND.search(str(bound))
        lower, upper = (_bound(match[1]), _bound(match[2])) if match else (None, None)
        found.append(Partition(table, str(name), lower, upper, int(tuples)))
    epoch = datetime.min.replace(tzinfo=UTC)
    return sorted(found, key=lambda p: (p.is_default, p.lower or epoch, p.name))


async def is_partitioned(conn: AsyncConnection, table: str) -> bool:
    kind = (await conn.execute(text(
        "SELECT relkind FROM pg_class WHERE oid = to_regclass(:t)"), {"t": table})).scalar()
    return kind == "p"


async def ensure_partitions(db: Database, now: datetime, period: Period = "week",
                            ahead: int = 4, since: datetime | None = None) -> EnsureReport:
    """Create the partitions of every partitioned table for the current period and ``ahead``
    periods after it (from ``since``'s period on, if given: loading old records).
    Idempotent: what exists is left alone."""
    report = EnsureReport()
    if db.dialect != "postgresql":
        return report
    start, end = periods_ahead(now, period, ahead)
    if since is not None:
        start = min(start, period_start(since, period))
    for table, key in PARTITION_KEYS.items():
        async with guard(db.timeout * 30), db.engine.connect() as conn:
            if not await is_partitioned(conn, table):
                continue
            existing = await list_partitions(conn, table)
        ranges = [(p.lower, p.upper) for p in existing if p.lower and p.upper]
        for lo, hi in missing_ranges(ranges, start, end, period):
            await _create_one(db, table, key, lo, hi, period, report)
        async with guard(db.timeout * 30), db.engine.connect() as conn:
            left = int((await conn.execute(text(
                f"SELECT count(*) FROM (SELECT 1 FROM {default_partition(table)} "
                "LIMIT 1000000) AS d"))).scalar_one())
        if left:
            report.in_default[table] = left
            log.warning("%d row(s) of %s are in its DEFAULT partition (outside every time "
                        "partition); they move into a partition when one is created for "
                        "their period, or go with 'privnum cdr purge'", left, table)
    return report


async def _create_one(db: Database, table: str, key: str, lo: datetime, hi: datetime,
                      period: Period, report: EnsureReport) -> None:
    name = partition_name(table, lo)
    try:
        async with guard(db.timeout * 30), db.engine.begin() as conn:
            await _utc_session(conn)
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
            now_there = await list_partitions(conn, table)  # another node may have made it
            ranges = [(p.lower, p.upper) for p in now_there if p.lower and p.upper]
            if not missing_ranges(ranges, lo, hi, period):
                return
            bounds = {"lo": lo, "hi": hi}
            storage = f" WITH ({PARTITION_STORAGE[table]})" if table in PARTITION_STORAGE else ""
            await conn.execute(text(
                f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS){storage}"))
            moved = (await conn.execute(text(
                f"WITH moved AS (DELETE FROM {default_partition(table)} "
                f"WHERE {key} >= :lo AND {key} < :hi RETURNING *) "
                f"INSERT INTO {name} SELECT * FROM moved"), bounds)).rowcount
            await conn.execute(text(
                f"ALTER TABLE {table} ATTACH PARTITION {name} "
                f"FOR VALUES FROM ('{lo.isoformat()}') TO ('{hi.isoformat()}')"))
    except Exception as exc:  # lock_timeout and kin: retried on the next run
        if "lock timeout" not in str(exc).lower():
            raise
        log.warning("partition %s not created now (tables busy): %s", name, exc)
        report.waiting.append(name)
        return
    report.created.append(name)
    log.info("created partition %s for %s [%s, %s)", name, table, lo.isoformat(),
             hi.isoformat())
    if moved:
        report.moved[name] = moved
        log.warning("moved %d row(s) of %s from its DEFAULT partition into %s", moved, table,
                    name)


async def partitions_of(db: Database) -> dict[str, list[Partition]]:
    """Every partitioned table's partitions (empty on SQLite)."""
    if db.dialect != "postgresql":
        return {}
    found: dict[str, list[Partition]] = {}
    async with guard(db.timeout * 5), db.engine.begin() as conn:
        await _utc_session(conn)
        for table in PARTITION_KEYS:
            if await is_partitioned(conn, table):
                found[table] = await list_partitions(conn, table)
    return found

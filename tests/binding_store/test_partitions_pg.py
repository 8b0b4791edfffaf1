"""Partition upkeep on a real PostgreSQL: created ahead, idempotent, safe from two nodes at
once, rows caught by the DEFAULT partition moved into their period's partition; the shop
query reads only the partitions of its window (EXPLAIN). SQLite has nothing to do."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from bench.call_log_data import executed_relations, explain_list, planned_relations
from binding_store.all_models import Base
from binding_store.call_log_query import CallLogQuery, list_calls
from binding_store.db import Database
from binding_store.partitions import ensure_partitions, partitions_of
from routing.call_log_views import LinkTemplates
from tests.binding_store.call_log_weeks import every, write_calls
from tests.fixtures.ami.scenario import SHOP, seed

NOW = datetime(2026, 12, 3, 19, 0, tzinfo=UTC)  # a Thursday; partitions start on Mondays


def _names(found: dict[str, list]) -> dict[str, list[str]]:  # type: ignore[type-arg]
    return {table: [p.name for p in parts] for table, parts in found.items()}


async def _rows_by_partition(db: Database, table: str) -> dict[str, int]:
    async with db.engine.connect() as conn:
        rows = (await conn.execute(text(
            f"SELECT tableoid::regclass::text, count(*) FROM {table} GROUP BY 1"))).all()
    return {str(name): int(n) for name, n in rows}


@pytest.mark.postgres
async def test_partitions_are_created_ahead_once(pg_database: Database) -> None:
    first = await ensure_partitions(pg_database, NOW, "week", 2)
    assert first.created == [f"{t}_p{d}" for t in ("cdrs", "call_attempts", "audit_events")
                             for d in ("20261130", "20261207", "20261214")]
    again = await ensure_partitions(pg_database, NOW + timedelta(days=2), "week", 2)
    assert again.created == [] and not again.waiting
    found = await partitions_of(pg_database)
    assert _names(found)["cdrs"] == ["cdrs_p20261130", "cdrs_p20261207", "cdrs_p20261214",
                                     "cdrs_default"]
    week = found["cdrs"][0]
    assert (week.lower, week.upper) == (datetime(2026, 11, 30, tzinfo=UTC),
                                        datetime(2026, 12, 7, tzinfo=UTC))
    # cdrs partitions are vacuumed early (index-only scans need all-visible pages)
    async with pg_database.engine.connect() as conn:
        options = dict((await conn.execute(text(
            "SELECT relname, array_to_string(reloptions, ',') FROM pg_class "
            "WHERE relname IN ('cdrs_p20261130', 'call_attempts_p20261130')"))).all())
    assert options == {"cdrs_p20261130": "autovacuum_vacuum_insert_scale_factor=0.01",
                       "call_attempts_p20261130": None}
    # A week later one more partition keeps two weeks ahead covered.
    later = await ensure_partitions(pg_database, NOW + timedelta(weeks=1), "week", 2)
    assert later.created == ["cdrs_p20261221", "call_attempts_p20261221",
                             "audit_events_p20261221"]


@pytest.mark.postgres
async def test_two_nodes_creating_at_once_make_each_partition_once(
        pg_database: Database, pg_url: str) -> None:
    other = Database(pg_url, timeout=5.0)
    try:
        reports = await asyncio.gather(ensure_partitions(pg_database, NOW, "day", 6),
                                       ensure_partitions(other, NOW, "day", 6))
    finally:
        await other.dispose()
    created = reports[0].created + reports[1].created
    assert sorted(created) == sorted(set(created)) and len(created) == 3 * 7
    assert len((await partitions_of(pg_database))["cdrs"]) == 7 + 1


@pytest.mark.postgres
async def test_rows_caught_by_the_default_partition_move_into_their_partition(
        pg_database: Database) -> None:
    await seed(pg_database, attempts=False)
    await ensure_partitions(pg_database, NOW, "week", 0)
    # The service was down for weeks: calls of a week without a partition land in DEFAULT.
    later = NOW + timedelta(weeks=3)
    assert await write_calls(pg_database, every(later, timedelta(hours=1), 5), "gap") == 5
    assert await _rows_by_partition(pg_database, "cdrs") == {"cdrs_default": 5}
    report = await ensure_partitions(pg_database, later, "week", 1)
    assert report.moved == {"cdrs_p20261221": 5}
    assert await _rows_by_partition(pg_database, "cdrs") == {"cdrs_p20261221": 5}
    assert report.in_default == {}


async def test_sqlite_has_no_partitions(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        assert (await ensure_partitions(db, NOW, "week", 4)).created == []
        assert await partitions_of(db) == {}
    finally:
        await db.dispose()


@pytest.mark.postgres
async def test_the_30_day_query_reads_only_its_windows_partitions(
        pg_database: Database) -> None:
    await seed(pg_database, attempts=False)
    await ensure_partitions(pg_database, NOW, "week", 1, since=NOW - timedelta(days=70))
    await write_calls(pg_database, every(NOW - timedelta(days=69), timedelta(hours=5), 330),
                      "call")
    async with pg_database.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE cdrs"))
    since = NOW - timedelta(days=30)
    window = {p.name for p in (await partitions_of(pg_database))["cdrs"]
              if p.lower is not None and p.upper is not None and p.upper > since
              and p.lower < NOW}
    assert len(window) == 5  # 30 days starting on a Tuesday touch five weeks

    first = await explain_list(pg_database, CallLogQuery(shop_id=SHOP, since=since, until=NOW,
                                                          limit=50), NOW)
    planned = planned_relations(first["plan"])
    assert planned <= window, planned  # older weeks, later weeks and DEFAULT pruned
    assert set(first["scanned"]) <= window and first["scanned"]
    # The newest 51 rows are in the newest week(s): the scan stops before the older ones.
    assert len(first["scanned"]) < len(window)

    # A later page (cursor) prunes the weeks after its position too.
    links = LinkTemplates(order="o/{order_id}", chat="c")
    page = await list_calls(pg_database, CallLogQuery(shop_id=SHOP, since=since, until=NOW,
                                                      limit=50), NOW, links)
    page = await list_calls(pg_database, CallLogQuery(shop_id=SHOP, since=since, until=NOW,
                                                      limit=50, cursor=page.next_cursor),
                            NOW, links)
    deeper = await explain_list(pg_database, CallLogQuery(
        shop_id=SHOP, since=since, until=NOW, limit=50, cursor=page.next_cursor), NOW)
    newest = max(window)
    assert newest not in planned_relations(deeper["plan"])
    assert executed_relations(deeper["plan"]) <= window

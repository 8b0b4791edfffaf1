"""The migration to the partitioned call log, on databases with rows in them: on PostgreSQL
every row, the hash chain and the shop query's answers survive the move into partitions (and
the way back); on SQLite the tables are left exactly as they were."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import create_engine, func, select, text

from binding_store import migrate
from binding_store.audit import AuditLog
from binding_store.call_log_audit import verify
from binding_store.call_log_query import CallLogQuery, export_rows, list_calls
from binding_store.cdr_models import Cdr
from binding_store.db import Database, sync_url
from binding_store.models import CallAttempt
from routing.call_log_views import LinkTemplates
from tests.binding_store.call_log_weeks import every, write_attempts_and_audit, write_calls
from tests.binding_store.shop_helpers import empty_pg_url
from tests.fixtures.ami.scenario import SHOP, seed

__all__ = ["empty_pg_url"]

BEFORE = "0004_index_watermark"
PARTITIONED = "0005_partitioned_call_log"
LINKS_ORDER = "https://m.example/o/{order_id}"


# Columns a later migration adds that today's models read when the call log's writer looks
# up a CDR's binding: lent to the old schema while the test writes and reads it there.
LATER_COLUMNS = (("bindings", "extension", "VARCHAR(4) NOT NULL DEFAULT ''"),
                 ("cdrs", "extension", "VARCHAR(4)"),
                 ("call_attempts", "extension", "VARCHAR(4)"),
                 ("cdrs", "mark", "VARCHAR(16)"),
                 ("call_attempts", "mark", "VARCHAR(16)"))


@asynccontextmanager
async def _later_columns(db: Database) -> AsyncIterator[None]:
    async with db.engine.begin() as conn:
        for table, name, kind in LATER_COLUMNS:
            await conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {name} {kind}"))
    try:
        yield
    finally:
        async with db.engine.begin() as conn:
            for table, name, _ in LATER_COLUMNS:
                await conn.execute(text(f"ALTER TABLE {table} DROP COLUMN {name}"))


async def _fill(db: Database, now: datetime) -> None:
    """About two months of calls, one imported late (its chain position is after newer calls),
    routing decisions and audit events."""
    await seed(db, attempts=False)
    await write_calls(db, every(now - timedelta(days=63), timedelta(hours=7), 200), "call")
    await write_calls(db, [now - timedelta(days=60, minutes=30)], "late")
    await write_attempts_and_audit(db, every(now - timedelta(days=62), timedelta(days=1), 60))


async def _fill_old(db: Database, now: datetime) -> dict[str, Any]:
    """:func:`_fill` and :func:`_snapshot` on the schema before the partitioning."""
    async with _later_columns(db):
        await _fill(db, now)
        return await _snapshot(db, now)


async def _snapshot(db: Database, now: datetime) -> dict[str, Any]:
    links = LinkTemplates(order=LINKS_ORDER, chat="https://m.example/c")
    pages = []
    cursor = None
    while True:
        page = await list_calls(db, CallLogQuery(shop_id=SHOP, since=now - timedelta(days=30),
                                                 until=now, limit=40, cursor=cursor), now, links)
        pages.append(page.entries)
        cursor = page.next_cursor
        if cursor is None:
            break
    exported = [(r.id, r.chain_seq, r.record, r.row_hash) async for r in export_rows(
        db, now - timedelta(days=90), now + timedelta(days=1))]
    report = await verify(db)
    async with db.session() as s:
        attempts = (await s.execute(select(CallAttempt.id, CallAttempt.uniqueid, CallAttempt.at)
                                    .order_by(CallAttempt.id))).all()
    events = await AuditLog(db).events(limit=1000)
    return {"pages": pages, "exported": exported, "verify": (report.ok, report.checked,
                                                             report.head_seq),
            "attempts": attempts, "events": events}


def _where_rows_are(url: str, table: str) -> dict[str, int]:
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(
                f"SELECT tableoid::regclass::text, count(*) FROM {table} GROUP BY 1")).all()
    finally:
        engine.dispose()
    return {str(name): int(n) for name, n in rows}


@pytest.mark.postgres
@pytest.mark.slow
async def test_postgres_rows_chain_and_queries_survive_partitioning(empty_pg_url: str) -> None:
    url = empty_pg_url
    migrate.upgrade(url, BEFORE)
    now = datetime.now(UTC).replace(microsecond=0)
    db = Database(url, timeout=10.0)
    try:
        before = await _fill_old(db, now)
    finally:
        await db.dispose()
    assert before["verify"] == (True, 201, 201) and len(before["pages"]) > 1
    assert len(before["exported"]) == 201 and len(before["attempts"]) == 60

    assert migrate.upgrade(url) == migrate.head()
    migrate.check(url)  # the partitioned schema is what the models describe
    for table in ("cdrs", "call_attempts", "audit_events"):
        where = _where_rows_are(url, table)
        assert f"{table}_default" not in where, where  # every row in its week's partition
        assert len(where) >= 9, where
    db = Database(url, timeout=10.0)
    try:
        assert await _snapshot(db, now) == before
        # The chain goes on after the move, and new ids continue after the old ones.
        old_max = max(row[0] for row in before["exported"])
        assert await write_calls(db, [now - timedelta(minutes=5)], "new") == 1
        report = await verify(db)
        assert report.ok and report.checked == 202
        async with db.session() as s:
            assert await s.scalar(select(func.max(Cdr.id))) > old_max
    finally:
        await db.dispose()

    command.downgrade(migrate.config(url), BEFORE)  # and back to one table, rows kept
    assert set(_where_rows_are(url, "cdrs")) == {"cdrs"}
    db = Database(url, timeout=10.0)
    try:
        async with _later_columns(db):
            back = await _snapshot(db, now)
    finally:
        await db.dispose()
    assert back["verify"] == (True, 202, 202)
    assert back["attempts"] == before["attempts"] and back["events"] == before["events"]
    assert back["exported"][:-1] == before["exported"]


async def test_sqlite_keeps_its_tables_and_rows(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'lite.db'}"
    migrate.upgrade(url, BEFORE)
    now = datetime(2026, 11, 28, 13, 0, tzinfo=UTC)
    db = Database(url)
    try:
        before = await _fill_old(db, now)
    finally:
        await db.dispose()
    schema = _sqlite_schema(url)
    assert migrate.upgrade(url, PARTITIONED) == PARTITIONED
    assert _sqlite_schema(url) == schema  # no-op: the same tables, keys and indexes
    assert migrate.upgrade(url) == migrate.head()  # the later migrations on top
    migrate.check(url)
    db = Database(url)
    try:
        assert await _snapshot(db, now) == before
    finally:
        await db.dispose()


def _sqlite_schema(url: str) -> list[tuple[str, str]]:
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            return [(str(n), str(s)) for n, s in conn.execute(text(
                "SELECT name, sql FROM sqlite_master WHERE name <> 'alembic_version' "
                "ORDER BY name")).all()]
    finally:
        engine.dispose()

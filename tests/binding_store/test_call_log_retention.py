"""Retention by partition drop on PostgreSQL: whole weeks go, a record appended after newer
ones stays until it is a prefix of the chain, the chain verifies after every purge; routing
decisions go with their weeks (and on SQLite by row). A second row at a taken chain position
is caught (by ``verify`` where the partitioned table cannot make ``chain_seq`` unique)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import IntegrityError

from binding_store.call_log_audit import purge, verify
from binding_store.cdr_models import Cdr
from binding_store.db import Database
from binding_store.models import CallAttempt
from binding_store.partitions import ensure_partitions, partitions_of
from tests.binding_store.call_log_weeks import every, write_attempts_and_audit, write_calls
from tests.fixtures.ami.scenario import seed

T = datetime(2026, 12, 3, 19, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def _at(month: int, day: int) -> datetime:
    return datetime(2026, month, day, 10, 0, tzinfo=UTC)


async def _cdr_count(db: Database) -> int:
    async with db.session() as s:
        return int(await s.scalar(select(func.count()).select_from(Cdr)) or 0)


async def _in_default(db: Database) -> list[str]:
    async with db.engine.connect() as conn:
        return list((await conn.execute(text("SELECT uniqueid FROM cdrs_default"))).scalars())


@pytest.mark.postgres
async def test_purge_drops_whole_weeks_and_keeps_the_chain(pg_database: Database) -> None:
    db = pg_database
    await seed(db, attempts=False)
    await ensure_partitions(db, T, "week", 1, since=T - timedelta(weeks=5))
    await write_calls(db, every(_at(11, 3), DAY / 2, 10), "a")  # week of 2 Nov: seq 1-10
    await write_calls(db, every(_at(11, 9), DAY / 2, 10), "b")  # week of 9 Nov: seq 11-20
    await write_calls(db, [_at(11, 5)], "late")  # imported late into 2 Nov's week: seq 21
    await write_calls(db, every(_at(11, 16), DAY, 5), "c")  # week of 16 Nov: seq 22-26
    await write_attempts_and_audit(db, [_at(11, 3), _at(11, 4), _at(11, 17)])

    # cutoff 12 Nov: the weeks of 26 Oct (empty) and 2 Nov are due, 9 Nov's is not.
    now = _at(11, 12) + timedelta(days=180)
    dry = await purge(db, now, 180, dry_run=True)
    assert (dry.rows, dry.first_seq, dry.last_seq, dry.kept_late, dry.attempts) == (
        10, 1, 10, 1, 2)
    assert set(dry.partitions) == {"cdrs_p20261026", "cdrs_p20261102",
                                   "call_attempts_p20261026", "call_attempts_p20261102"}
    assert await _cdr_count(db) == 26 and (await verify(db)).ok

    done = await purge(db, now, 180, dry_run=False)
    assert done.rows == 10 and done.kept_late == 1
    names = [p.name for p in (await partitions_of(db))["cdrs"]]
    assert "cdrs_p20261102" not in names and names[0] == "cdrs_p20261109"
    assert await _in_default(db) == ["late-0"]  # kept: appended after week 9 Nov's calls
    report = await verify(db)
    assert report.ok and report.anchor_seq == 10 and report.checked == 16
    async with db.session() as s:
        assert (await s.scalars(select(CallAttempt.uniqueid))).all() == ["att-2"]

    # A week later 9 Nov's week is due: it goes, and the late record with it (now a prefix).
    later = await purge(db, _at(11, 20) + timedelta(days=180), 180, dry_run=False)
    assert (later.rows, later.first_seq, later.last_seq, later.kept_late) == (11, 11, 21, 0)
    assert await _in_default(db) == []
    report = await verify(db)
    assert report.ok and report.anchor_seq == 21 and report.checked == 5
    # and the chain goes on from its anchor
    assert await write_calls(db, [_at(11, 30)], "d") == 1
    assert (await verify(db)).ok


async def test_purge_deletes_old_routing_decisions(database: Database) -> None:
    await seed(database, attempts=False)
    await write_attempts_and_audit(database, [_at(11, 1), _at(11, 2), _at(11, 20)])
    plan = await purge(database, _at(11, 10) + timedelta(days=30), 30, dry_run=False)
    assert plan.attempts == 2
    async with database.session() as s:
        assert (await s.scalars(select(CallAttempt.uniqueid))).all() == ["att-2"]


async def test_a_second_row_at_a_taken_chain_position_is_caught(database: Database) -> None:
    await seed(database, attempts=False)
    await write_calls(database, every(_at(11, 3), DAY, 3), "a")
    async with database.session() as s:
        row = (await s.scalars(select(Cdr).where(Cdr.chain_seq == 2))).one()
    copy = {c.key: getattr(row, c.key) for c in Cdr.__table__.columns if c.key != "id"}
    copy.update(uniqueid="forged", start_utc=row.start_utc + DAY)
    if database.dialect == "sqlite":
        with pytest.raises(IntegrityError):  # chain_seq is unique there
            async with database.session() as s:
                await s.execute(insert(Cdr).values(**copy))
                await s.commit()
        return
    async with database.session() as s:
        await s.execute(insert(Cdr).values(**copy))
        await s.commit()
    problems = (await verify(database)).problems
    assert [(p.kind, p.uniqueid) for p in problems] == [("inserted", "forged")]
    assert "already taken" in problems[0].detail

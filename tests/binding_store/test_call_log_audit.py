"""Tamper evidence (verify names altered, deleted, inserted rows), purge, reconcile."""

from __future__ import annotations

from datetime import UTC, timedelta

from sqlalchemy import delete, insert, select, update

from agi.ami_reconcile import reconcile_file
from binding_store.call_log import CallLogStore
from binding_store.call_log_audit import purge, verify
from binding_store.cdr_models import Cdr
from binding_store.db import Database
from tests.fixtures.ami.scenario import ALL_CALLS, HERE, NOW, UID_SIP, cdr_events, seed


async def _ingest(db: Database) -> list[Cdr]:
    await seed(db)
    await CallLogStore(db).write_batch(cdr_events())
    async with db.session() as s:
        return list((await s.scalars(select(Cdr).order_by(Cdr.chain_seq))).all())


async def test_verify_names_an_altered_row(database: Database) -> None:
    rows = await _ingest(database)
    async with database.session() as s:
        await s.execute(update(Cdr).where(Cdr.id == rows[2].id).values(billsec=999))
        await s.commit()
    report = await verify(database)
    assert [(p.kind, p.uniqueid) for p in report.problems] == [("altered", rows[2].uniqueid)]


async def test_verify_names_a_deleted_row(database: Database) -> None:
    rows = await _ingest(database)
    async with database.session() as s:
        await s.execute(delete(Cdr).where(Cdr.id == rows[3].id))
        await s.commit()
    problems = (await verify(database)).problems
    assert [(p.kind, p.chain_seq) for p in problems] == [("deleted", rows[3].chain_seq)]
    assert rows[2].uniqueid in problems[0].detail and rows[4].uniqueid in problems[0].detail


async def test_verify_names_an_inserted_row(database: Database) -> None:
    rows = await _ingest(database)
    forged = {c.key: getattr(rows[1], c.key) for c in Cdr.__table__.columns if c.key != "id"}
    forged.update(uniqueid="forged-1", chain_seq=rows[-1].chain_seq + 1)
    async with database.session() as s:
        await s.execute(insert(Cdr).values(**forged))
        await s.commit()
    problems = (await verify(database)).problems
    assert [(p.kind, p.uniqueid) for p in problems] == [("inserted", "forged-1")]


async def test_verify_notices_the_last_row_deleted(database: Database) -> None:
    rows = await _ingest(database)
    async with database.session() as s:
        await s.execute(delete(Cdr).where(Cdr.id == rows[-1].id))
        await s.commit()
    assert [p.kind for p in (await verify(database)).problems] == ["deleted"]


async def test_purge_dry_run_changes_nothing_and_purge_keeps_chain_valid(
        database: Database) -> None:
    rows = await _ingest(database)
    later = NOW + timedelta(days=181)
    plan = await purge(database, later, 180, dry_run=True)
    assert plan.rows == ALL_CALLS and plan.dry_run
    assert len((await verify(database)).problems) == 0
    async with database.session() as s:
        assert len((await s.scalars(select(Cdr))).all()) == ALL_CALLS
    assert (await purge(database, NOW, 180, dry_run=False)).rows == 0
    done = await purge(database, later, 180, dry_run=False)
    assert done.rows == ALL_CALLS
    report = await verify(database)
    assert report.ok and report.checked == 0 and report.anchor_seq == rows[-1].chain_seq
    # the chain goes on from its new anchor
    await CallLogStore(database).write_batch([e for e in cdr_events()
                                              if e.uniqueid == UID_SIP])
    assert (await verify(database)).ok


async def test_reconcile_from_csv_is_idempotent_and_matches_ami(database: Database) -> None:
    await seed(database)
    store = CallLogStore(database)
    ami = [e for e in cdr_events() if e.uniqueid != UID_SIP]  # AMI missed the SIP call
    await store.write_batch(ami)
    csv_file = HERE / "cdr-custom-session.csv"
    first = await reconcile_file(csv_file, store, zone=UTC, system_name="pnlab", now=NOW,
                                 batch=2)
    assert first.stored == 1 and not first.errors
    again = await reconcile_file(csv_file, store, zone=UTC, system_name="pnlab", now=NOW)
    assert again.stored == 0
    async with database.session() as s:
        rows = {r.uniqueid: r for r in (await s.scalars(select(Cdr))).all()}
    assert len(rows) == ALL_CALLS
    assert (rows[UID_SIP].source, rows[UID_SIP].billsec) == ("csv", 1)  # forks merged
    assert (await verify(database)).ok

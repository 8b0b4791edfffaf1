"""Hot-path reads on connections of their own (real PostgreSQL): a connection that went stale
while idle is replaced without an error; faults are StoreUnavailable."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from binding_store.db import Database
from binding_store.group_commit import libpq_url
from binding_store.raw_reads import RawReads, raw_reads
from routing.errors import StoreUnavailable

pytestmark = pytest.mark.postgres


async def _backends(reads: RawReads) -> list[int]:
    rows = await reads.fetch("SELECT pg_backend_pid()", {})
    return [int(r[0]) for r in rows]


async def test_a_stale_connection_is_replaced_without_an_error(pg_database: Database) -> None:
    reads = RawReads(pg_database.url, size=2, timeout=5.0)
    try:
        [pid] = await _backends(reads)
        # the database ends the idle connection (a restart, an idle timeout, a cut)
        with psycopg.connect(libpq_url(pg_database.url), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        rows = await reads.fetch("SELECT %(x)s::int + 1, now() AT TIME ZONE 'UTC'", {"x": 41})
        assert rows[0][0] == 42
        [again] = await _backends(reads)
        assert again != pid
    finally:
        await reads.close()


async def test_faults_are_store_unavailable(pg_database: Database) -> None:
    reads = RawReads(pg_database.url, size=1, timeout=1.0)
    try:
        with pytest.raises(StoreUnavailable, match="database error"):
            await reads.fetch("SELECT * FROM no_such_table", {})
        assert (await reads.fetch("SELECT 1", {}))[0][0] == 1  # the next read is fine
        with pytest.raises(StoreUnavailable, match="did not answer within 1 s"):
            await reads.fetch("SELECT pg_sleep(3)", {})
        assert (await reads.fetch("SELECT 2", {}))[0][0] == 2
    finally:
        await reads.close()
    unreachable = RawReads("postgresql+psycopg://postgres@127.0.0.1:1/none", size=1,
                           timeout=1.0)
    with pytest.raises(StoreUnavailable, match="database unavailable"):
        await unreachable.fetch("SELECT 1", {})


async def test_reads_never_write_and_share_the_databases_connections(pg_database: Database
                                                                      ) -> None:
    """Autocommit, but on a read-only engine's database read-only too; one per database."""
    assert raw_reads(pg_database) is raw_reads(pg_database)
    ro = Database(pg_database.url, read_only=True)
    try:
        with pytest.raises(StoreUnavailable, match="read-only"):
            await raw_reads(ro).fetch("CREATE TABLE nope (x int)", {})
    finally:
        await ro.dispose()
    results = await asyncio.gather(*(raw_reads(pg_database).fetch("SELECT %(i)s::int",
                                                                  {"i": i})
                                     for i in range(30)))
    assert [r[0][0] for r in results] == list(range(30))

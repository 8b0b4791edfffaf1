"""``privnum_issue`` keeps its plans for the session; the issue writer makes them again every
``REPLAN_SECONDS``, so that plans made on small tables do not outlive the tables' growth.

Sequential scans are counted with ``pg_stat_xact_user_tables`` inside one transaction (no
timing)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from binding_store.db import Database
from binding_store.group_commit import GroupWriter, connect_autocommit, libpq_url
from binding_store.issue_requests import IssueInput
from binding_store.issue_sql import CALL
from tests.binding_store.test_bindings_helpers import A1, NOW, seed, virtual

pytestmark = pytest.mark.postgres

COOLDOWN = timedelta(minutes=30)
_READS = """
SELECT coalesce(sum(seq_scan) FILTER (WHERE relname = 'bindings'), 0),
       coalesce(sum(seq_scan) FILTER (WHERE relname = 'pool_numbers'), 0)
  FROM pg_stat_xact_user_tables"""


# numbers after the seeded pool in allocation order
_OTHER_POOL = ("INSERT INTO pool_numbers (number, region, state, created_at, mode) "
               "SELECT '+8617100' || lpad(i::text, 6, '0'), '', 'available', now(), 'axb' "
               "FROM generate_series(0, {count} - 1) i")
# active bindings of 1 000 callers (A1 among them) on numbers outside the seeded pool
_OTHER_BINDINGS = (
    "INSERT INTO bindings (id, shop_id, order_id, buyer_id, caller_a, virtual_x, "
    "extension, buyer_cipher, buyer_bidx, buyer_masked, created_at, expires_at, state) "
    "SELECT 'g' || i, 's1', 'g' || i, '', '+861380000' || lpad(mod(i, 1000)::text, 4, '0'), "
    "'+8617100' || lpad((mod(i, 1000) + (i / 1000) * 7)::text, 6, '0'), '', '\\x00', "
    "'bg' || i, '', now(), now() + interval '1 day', 'active' "
    "FROM generate_series(0, {count} - 1) i")


def _request(order: str) -> dict[str, Any]:
    return IssueInput(shop_id="s1", order_id=order, buyer_id="", caller_a=A1,
                      buyer_cipher=b"\x01", buyer_bidx=f"bidx-{order}", buyer_masked="",
                      now=NOW, validity=timedelta(hours=1), preferred_region=None,
                      actor="t").request(with_event=True)


async def _issue_reads(conn: psycopg.AsyncConnection[Any], orders: list[str]
                       ) -> tuple[set[str], int, int]:
    """Issue ``orders`` in a transaction rolled back afterwards: the statuses and the
    sequential scans of bindings and of pool_numbers meanwhile."""
    async with conn.transaction(force_rollback=True):
        cursor = await conn.execute(CALL, (Jsonb([_request(o) for o in orders]), COOLDOWN,
                                           64, 3))
        statuses = {str(row[1]) for row in await cursor.fetchall()}
        bindings, pool = await (await conn.execute(_READS)).fetchone()  # type: ignore[misc]
    return statuses, int(bindings), int(pool)


@pytest.fixture
async def small_then_grown(pg_database: Database) -> AsyncIterator[
        tuple[Database, psycopg.AsyncConnection[Any]]]:
    """A session that planned on a 10-number pool with no bindings (statistics taken then),
    and the tables grown meanwhile to 20 000 numbers and 50 000 active bindings with no
    statistics since (autovacuum off for them: nothing refreshes the plans behind our back)."""
    await seed(pg_database, pool=[(virtual(i), "", None) for i in range(10)])
    admin = await connect_autocommit(libpq_url(pg_database.url), 5)
    for table in ("bindings", "pool_numbers"):
        await admin.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
    await admin.execute("ANALYZE")
    session = await connect_autocommit(libpq_url(pg_database.url), 5)
    assert (await _issue_reads(session, ["warm-1", "warm-2"]))[0] == {"created"}
    await admin.execute(_OTHER_POOL.format(count=20_000))
    await admin.execute(_OTHER_BINDINGS.format(count=50_000))
    await admin.close()
    yield pg_database, session
    await session.close()


async def test_plans_made_on_small_tables_read_grown_ones_end_to_end(
        small_then_grown: tuple[Database, psycopg.AsyncConnection[Any]]) -> None:
    """The hazard the writer's re-planning removes (if this stops holding, PostgreSQL's
    planner changed and REPLAN_SECONDS may no longer be needed)."""
    _, session = small_then_grown
    statuses, bindings, _ = await _issue_reads(session, ["stale-1"])
    assert statuses == {"created"}
    assert bindings > 0  # 50 000 rows read in turn as if they were a handful


async def test_discarded_plans_read_grown_tables_through_their_indexes(
        small_then_grown: tuple[Database, psycopg.AsyncConnection[Any]]) -> None:
    _, session = small_then_grown
    await session.execute("DISCARD PLANS")
    statuses, bindings, pool = await _issue_reads(session, [f"new-{i}" for i in range(8)])
    assert statuses == {"created"}
    assert (bindings, pool) == (0, 0)


_ECHO = "SELECT (r->>'i')::int, (r->>'i')::int * 2 FROM jsonb_array_elements(%s) AS t(r)"


async def test_the_writer_replans_a_session_once_its_plans_are_old(pg_database: Database
                                                                    ) -> None:
    now = [100.0]
    writer = GroupWriter(pg_database.url, _ECHO, timeout=5, replan_seconds=10,
                         clock=lambda: now[0])
    try:
        assert await writer.submit({"i": 1}) == (2,)
        now[0] += 9.9
        assert await writer.submit({"i": 2}) == (4,)
        assert writer.replans == 0  # a new session plans afresh; then younger than 10 s
        now[0] += 0.1
        assert await writer.submit({"i": 3}) == (6,)
        assert writer.replans == 1
        now[0] += 5
        assert await writer.submit({"i": 4}) == (8,)
        assert (writer.replans, writer.batches) == (1, 4)
    finally:
        await writer.close()


async def test_a_writer_without_replan_seconds_never_replans(pg_database: Database) -> None:
    now = [0.0]
    writer = GroupWriter(pg_database.url, _ECHO, timeout=5, clock=lambda: now[0])
    try:
        for i in range(3):
            now[0] += 3600
            assert await writer.submit({"i": i}) == (2 * i,)
        assert writer.replans == 0
    finally:
        await writer.close()


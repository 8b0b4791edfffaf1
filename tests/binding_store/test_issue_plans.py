"""How ``privnum_issue`` is planned: once per session while the tables' statistics are
current (planning costs more than running it); tables whose statistics are missing or old are
analyzed first, and plans are made per call only while that cannot be done. The issue writer
makes that choice (``PLAN_CHOICE``) on each new session and again every ``REPLAN_SECONDS``,
with the session's plans discarded, so plans made on small tables do not outlive the tables'
growth.

Rows read are counted with ``pg_stat_xact_user_tables`` inside one transaction (no timing)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from binding_store.db import Database
from binding_store.group_commit import GroupWriter, connect_autocommit, libpq_url
from binding_store.issue_requests import IssueInput
from binding_store.issue_sql import CALL, PLAN_CHOICE, STALE_CHECK, TO_ANALYZE
from tests.binding_store.test_bindings_helpers import A1, NOW, seed, virtual

pytestmark = pytest.mark.postgres

COOLDOWN = timedelta(minutes=30)
GENERIC, CUSTOM = "force_generic_plan", "force_custom_plan"
# rows read from bindings and from pool_numbers, sequentially or through an index
_READS = """
SELECT coalesce(sum(seq_tup_read + coalesce(idx_tup_fetch, 0))
                FILTER (WHERE relname = 'bindings'), 0),
       coalesce(sum(seq_tup_read + coalesce(idx_tup_fetch, 0))
                FILTER (WHERE relname = 'pool_numbers'), 0)
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
    """Issue ``orders`` in a transaction rolled back afterwards: the statuses and the rows
    read from bindings and from pool_numbers meanwhile."""
    async with conn.transaction(force_rollback=True):
        cursor = await conn.execute(CALL, (Jsonb([_request(o) for o in orders]), COOLDOWN,
                                           64, 3))
        statuses = {str(row[1]) for row in await cursor.fetchall()}
        bindings, pool = await (await conn.execute(_READS)).fetchone()  # type: ignore[misc]
    return statuses, int(bindings), int(pool)


async def _mode(conn: psycopg.AsyncConnection[Any]) -> str:
    return str((await (await conn.execute("SHOW plan_cache_mode")).fetchone() or [""])[0])


@pytest.fixture
async def small_then_grown(pg_database: Database) -> AsyncIterator[
        tuple[psycopg.AsyncConnection[Any], psycopg.AsyncConnection[Any]]]:
    """A session (generic plans) that planned on a 10-number pool with no bindings, statistics
    taken then, and the tables grown meanwhile to 20 000 numbers and 50 000 active bindings
    (autovacuum off for them: nothing refreshes statistics or plans behind our back); and an
    administrator's session."""
    await seed(pg_database, pool=[(virtual(i), "", None) for i in range(10)])
    admin = await connect_autocommit(libpq_url(pg_database.url), 5)
    for table in ("bindings", "pool_numbers"):
        await admin.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
    await admin.execute("ANALYZE")
    session = await connect_autocommit(libpq_url(pg_database.url), 5)
    await session.execute(f"SET plan_cache_mode = {GENERIC}")
    assert (await _issue_reads(session, ["warm-1", "warm-2"]))[0] == {"created"}
    await admin.execute(_OTHER_POOL.format(count=20_000))
    await admin.execute(_OTHER_BINDINGS.format(count=50_000))
    yield session, admin
    await session.close()
    await admin.close()


async def _row_estimate(conn: psycopg.AsyncConnection[Any], table: str) -> float:
    found = await (await conn.execute(
        "SELECT reltuples FROM pg_class WHERE oid = %s::regclass", (table,))).fetchone()
    assert found is not None
    return float(found[0])


async def test_stale_statistics_are_refreshed_and_plans_made_per_session(
        small_then_grown: tuple[psycopg.AsyncConnection[Any], psycopg.AsyncConnection[Any]]
) -> None:
    session, _ = small_then_grown
    await session.execute(PLAN_CHOICE)
    assert await _row_estimate(session, "bindings") >= 50_000
    assert await _mode(session) == GENERIC
    statuses, bindings, pool = await _issue_reads(session, [f"new-{i}" for i in range(8)])
    assert statuses == {"created"}
    assert bindings < 2_000 and pool < 2_000, (bindings, pool)


async def test_statistics_another_session_is_refreshing_choose_plans_per_call(
        small_then_grown: tuple[psycopg.AsyncConnection[Any], psycopg.AsyncConnection[Any]]
) -> None:
    """Another session holds the lock our ANALYZE needs: the choice waits for it 100 ms at
    most, and plans per call meanwhile."""
    session, admin = small_then_grown
    async with admin.transaction():
        await admin.execute("LOCK TABLE bindings IN SHARE UPDATE EXCLUSIVE MODE")
        await session.execute(PLAN_CHOICE)
        assert await _row_estimate(session, "bindings") < 50_000
        assert await _mode(session) == CUSTOM
    statuses, bindings, pool = await _issue_reads(session, [f"new-{i}" for i in range(8)])
    assert statuses == {"created"}
    assert bindings < 2_000 and pool < 2_000, (bindings, pool)


@contextlib.asynccontextmanager
async def _slow_analyze(admin: psycopg.AsyncConnection[Any],
                        watcher: psycopg.AsyncConnection[Any]) -> AsyncIterator[None]:
    """``admin`` analyzes bindings, slowed down to a crawl, until the block ends (it is then
    cancelled); the block starts once the ANALYZE shows in pg_stat_progress_analyze."""
    pid = (await (await admin.execute("SELECT pg_backend_pid()")).fetchone() or [0])[0]
    await admin.execute("SET vacuum_cost_delay = '100ms'")
    await admin.execute("SET vacuum_cost_limit = 1")
    crawl = asyncio.create_task(admin.execute("ANALYZE bindings"))
    try:
        for _ in range(500):
            found = await (await watcher.execute(
                "SELECT 1 FROM pg_stat_progress_analyze WHERE pid = %s", (pid,))).fetchone()
            if found:
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("the slowed ANALYZE never showed up in pg_stat_progress_analyze")
        yield
    finally:
        await watcher.execute("SELECT pg_cancel_backend(%s)", (pid,))
        with contextlib.suppress(psycopg.errors.QueryCanceled):
            await crawl


async def test_a_table_another_session_is_analyzing_is_left_to_it(
        small_then_grown: tuple[psycopg.AsyncConnection[Any], psycopg.AsyncConnection[Any]]
) -> None:
    """The choice does not try its own ANALYZE of a table another session is analyzing
    (which would only wait for the lock); tables nobody is analyzing are analyzed."""
    session, admin = small_then_grown
    async with _slow_analyze(admin, session):
        tables = {str(row[0]) for row in await (await session.execute(TO_ANALYZE)).fetchall()}
    assert tables == {"pool_numbers"}


async def test_the_writer_chooses_again_soon_while_another_session_analyzes(
        small_then_grown: tuple[psycopg.AsyncConnection[Any], psycopg.AsyncConnection[Any]],
        pg_database: Database) -> None:
    """Plans per call while another session analyzes bindings are a provisional choice, made
    again after the retry interval, not the full one; the settled choice after it lasts the
    full one."""
    session, admin = small_then_grown
    now = [0.0]
    async with _echo_writer(pg_database, now, replan=PLAN_CHOICE, replan_seconds=10,
                            replan_retry_seconds=0.2) as writer:
        async with _slow_analyze(admin, session):
            assert await writer.submit({"i": 1}) == (CUSTOM,)
            now[0] += 0.1
            assert await writer.submit({"i": 2}) == (CUSTOM,)
            assert writer.replans == 1
            now[0] += 0.1
            assert await writer.submit({"i": 3}) == (CUSTOM,)
            assert writer.replans == 2
        now[0] += 0.2  # the other ANALYZE was cancelled: this session analyzes
        assert await writer.submit({"i": 4}) == (GENERIC,)
        assert writer.replans == 3
        now[0] += 9.9
        assert await writer.submit({"i": 5}) == (GENERIC,)
        assert writer.replans == 3


async def test_a_lock_held_otherwise_keeps_plans_per_call_for_the_full_interval(
        small_then_grown: tuple[psycopg.AsyncConnection[Any], psycopg.AsyncConnection[Any]],
        pg_database: Database) -> None:
    """A lock whose holder is not analyzing (or not visibly) cost the choice its lock wait:
    it is not tried again before the full interval."""
    _, admin = small_then_grown
    now = [0.0]
    async with _echo_writer(pg_database, now, replan=PLAN_CHOICE, replan_seconds=10,
                            replan_retry_seconds=0.2) as writer:
        async with admin.transaction():
            await admin.execute("LOCK TABLE bindings IN SHARE UPDATE EXCLUSIVE MODE")
            assert await writer.submit({"i": 1}) == (CUSTOM,)
            now[0] += 5
            assert await writer.submit({"i": 2}) == (CUSTOM,)
            assert writer.replans == 1
        now[0] += 5
        assert await writer.submit({"i": 3}) == (GENERIC,)
        assert writer.replans == 2


async def test_current_statistics_choose_plans_per_session(
        small_then_grown: tuple[psycopg.AsyncConnection[Any], psycopg.AsyncConnection[Any]]
) -> None:
    session, admin = small_then_grown
    await admin.execute("ANALYZE")
    await session.execute(PLAN_CHOICE)
    assert await _mode(session) == GENERIC
    statuses, bindings, pool = await _issue_reads(session, [f"new-{i}" for i in range(8)])
    assert statuses == {"created"}
    assert bindings < 2_000 and pool < 2_000, (bindings, pool)


async def test_tables_never_analyzed_are_analyzed_first(pg_database: Database) -> None:
    session = await connect_autocommit(libpq_url(pg_database.url), 5)
    try:
        assert await _row_estimate(session, "bindings") < 0
        await session.execute(PLAN_CHOICE)
        assert await _row_estimate(session, "bindings") >= 0
        assert await _mode(session) == GENERIC
    finally:
        await session.close()


_ECHO = ("SELECT (r->>'i')::int, current_setting('plan_cache_mode') "
         "FROM jsonb_array_elements(%s) AS t(r)")


@contextlib.asynccontextmanager
async def _echo_writer(database: Database, now: list[float], **options: Any
                       ) -> AsyncIterator[GroupWriter]:
    """A writer of ``_ECHO`` (each request's plan mode) whose clock reads ``now[0]``."""
    writer = GroupWriter(database.url, _ECHO, timeout=5, clock=lambda: now[0], **options)
    try:
        yield writer
    finally:
        await writer.close()


async def test_the_writer_chooses_on_a_new_session_and_again_once_its_choice_is_old(
        pg_database: Database) -> None:
    now = [100.0]
    admin = await connect_autocommit(libpq_url(pg_database.url), 5)
    try:
        async with _echo_writer(pg_database, now, replan=PLAN_CHOICE,
                                replan_seconds=10) as writer:
            await admin.execute("ALTER TABLE pool_numbers SET (autovacuum_enabled = false)")
            assert await writer.submit({"i": 1}) == (GENERIC,)  # analyzed first
            assert writer.replans == 1
            await admin.execute(_OTHER_POOL.format(count=5_000))  # its statistics are old now
            now[0] += 9.9
            assert await writer.submit({"i": 2}) == (GENERIC,)  # its choice is not old yet
            assert await _row_estimate(admin, "pool_numbers") < 5_000
            now[0] += 0.1
            assert await writer.submit({"i": 3}) == (GENERIC,)
            assert await _row_estimate(admin, "pool_numbers") >= 5_000
            now[0] += 5
            assert await writer.submit({"i": 4}) == (GENERIC,)
            assert (writer.replans, writer.batches) == (2, 4)
    finally:
        await admin.close()


async def test_a_writer_without_replan_never_runs_it(pg_database: Database) -> None:
    now = [0.0]
    async with _echo_writer(pg_database, now) as writer:
        for i in range(3):
            now[0] += 3600
            assert (await writer.submit({"i": i}))[0] in (GENERIC, CUSTOM, "auto")
        assert writer.replans == 0



# A1 active on {count} more numbers outside the seeded pool, from the 3 000th on (a busy
# shop line)
_A1_BINDINGS = (
    "INSERT INTO bindings (id, shop_id, order_id, buyer_id, caller_a, virtual_x, "
    "extension, buyer_cipher, buyer_bidx, buyer_masked, created_at, expires_at, state) "
    f"SELECT 'busy' || i, 's1', 'busy' || i, '', '{A1}', "
    "'+8617100' || lpad((3000 + i)::text, 6, '0'), '', '\\x00', 'busy' || i, '', now(), "
    "now() + interval '1 day', 'active' FROM generate_series(0, {count} - 1) i")
_BUSY = 3_000


@pytest.fixture
async def busy_line(pg_database: Database) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A1 active on 3 000 numbers among 20 000 active bindings of 1 000 callers, analyzed."""
    await seed(pg_database, pool=[(virtual(i), "", None) for i in range(10)])
    admin = await connect_autocommit(libpq_url(pg_database.url), 5)
    try:
        await admin.execute(_OTHER_POOL.format(count=6_000))
        await admin.execute(_OTHER_BINDINGS.format(count=20_000))
        await admin.execute(_A1_BINDINGS.format(count=_BUSY))
        await admin.execute("ANALYZE")
    finally:
        await admin.close()
    session = await connect_autocommit(libpq_url(pg_database.url), 5)
    yield session
    await session.close()


@pytest.mark.parametrize("mode", [GENERIC, CUSTOM])
async def test_the_stale_check_reads_only_bindings_past_their_expiry(
        busy_line: psycopg.AsyncConnection[Any], mode: str) -> None:
    session = busy_line
    await session.execute(f"SET plan_cache_mode = {mode}")
    query = "SELECT 1 " + STALE_CHECK.format(now="%s", a="%s", bidx="%s", shop="%s",
                                              order="%s")
    async with session.transaction(force_rollback=True):
        for i in range(8):  # prepared (and planned generically) on the way
            found = await session.execute(query, (NOW, A1, f"bidx-{i}", "s1", f"o-{i}"),
                                          prepare=True)
            assert await found.fetchall() == []
        bindings, _ = await (await session.execute(_READS)).fetchone()  # type: ignore[misc]
    assert bindings < 50, bindings
    await session.execute(
        "UPDATE bindings SET expires_at = %s WHERE id = 'busy7'", (NOW,))
    found = await session.execute(query, (NOW, A1, "bidx-x", "s1", "o-x"), prepare=True)
    assert await found.fetchall() == [(1,)]


@pytest.mark.parametrize("mode", [GENERIC, CUSTOM])
async def test_a_busy_caller_line_is_read_at_most_once_per_binding(
        busy_line: psycopg.AsyncConnection[Any], mode: str) -> None:
    """Choosing X may read A's active bindings (A's first free X lies past them in the
    pool's order); nothing else in issuing reads them again."""
    session = busy_line
    await session.execute(f"SET plan_cache_mode = {mode}")
    statuses, bindings, _ = await _issue_reads(session, [f"new-{i}" for i in range(8)])
    assert statuses == {"created"}
    assert bindings < 8 * _BUSY * 1.5, bindings


# A1 active on every one of {count} numbers that come first in the pool's order (a busy line
# whose numbers the allocation order hands out first)
_FRONT_POOL = ("INSERT INTO pool_numbers (number, region, state, created_at, mode) "
               "SELECT '+8616900' || lpad(i::text, 6, '0'), '', 'available', now(), 'axb' "
               "FROM generate_series(0, {count} - 1) i")
_A1_FRONT = (
    "INSERT INTO bindings (id, shop_id, order_id, buyer_id, caller_a, virtual_x, "
    "extension, buyer_cipher, buyer_bidx, buyer_masked, created_at, expires_at, state) "
    f"SELECT 'front' || i, 's1', 'front' || i, '', '{A1}', "
    "'+8616900' || lpad(i::text, 6, '0'), '', '\\x00', 'front' || i, '', now(), "
    "now() + interval '1 day', 'active' FROM generate_series(0, {count} - 1) i")
_INDEX_SCANS = ("SELECT coalesce(sum(idx_scan), 0) FROM pg_stat_xact_user_tables "
                "WHERE relname = 'bindings'")


@pytest.mark.parametrize("mode", [GENERIC, CUSTOM])
async def test_a_line_holding_the_first_numbers_is_not_probed_number_by_number(
        pg_database: Database, mode: str) -> None:
    """A1 holds the first 2 000 numbers of the pool's order: its next binding gets the first
    number after them. The first window (64 numbers) is probed number by number, as for any
    line; then A1's numbers are read once instead of probing (A1, X) for each of them (which
    took 3 092 index scans here)."""
    await seed(pg_database, pool=[(virtual(i), "", None) for i in range(10)])
    session = await connect_autocommit(libpq_url(pg_database.url), 5)
    try:
        await session.execute(_FRONT_POOL.format(count=2_000))
        await session.execute(_A1_FRONT.format(count=2_000))
        await session.execute("ANALYZE")
        await session.execute(f"SET plan_cache_mode = {mode}")
        async with session.transaction(force_rollback=True):
            cursor = await session.execute(CALL, (Jsonb([_request("next")]), COOLDOWN, 64, 3))
            rows = await cursor.fetchall()
            scans = (await (await session.execute(_INDEX_SCANS)).fetchone() or [0])[0]
        assert [(r[1], r[3]) for r in rows] == [("created", virtual(0))]
        assert int(scans) < 64 + 30, scans
    finally:
        await session.close()

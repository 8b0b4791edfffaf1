"""``privnum_issue`` past its first window: a line holding more numbers than the window gets
the first eligible number of the pool's order, read from the order's index as far as that
number and no further (no window read and sorted whole), with the preferred region's numbers
first and the pair and cool-down checks as in the window.

Rows read are counted with ``pg_stat_xact_user_tables`` inside one transaction (no timing)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from binding_store.db import Database
from binding_store.group_commit import connect_autocommit, libpq_url
from binding_store.issue_requests import IssueInput
from binding_store.issue_sql import CALL
from tests.binding_store.test_bindings_helpers import A1, NOW, seed, virtual

pytestmark = pytest.mark.postgres

COOLDOWN = timedelta(minutes=30)
WINDOW = 64
MODES = ["force_generic_plan", "force_custom_plan"]
_POOL_READS = ("SELECT coalesce(sum(seq_tup_read + coalesce(idx_tup_fetch, 0)), 0) "
               "FROM pg_stat_xact_user_tables WHERE relname = 'pool_numbers'")


def front(i: int) -> str:
    """The i-th number of the pool's order (before every ``virtual`` number)."""
    return f"+8616900{i:06d}"


def _request(order: str, region: str | None) -> dict[str, Any]:
    return IssueInput(shop_id="s1", order_id=order, buyer_id="", caller_a=A1,
                      buyer_cipher=b"\x01", buyer_bidx=f"bidx-{order}", buyer_masked="",
                      now=NOW, validity=timedelta(hours=1), preferred_region=region,
                      actor="t").request(with_event=False)


async def _pool(conn: psycopg.AsyncConnection[Any], count: int, region: str) -> None:
    """``count`` front numbers; ``region`` may name a column expression of ``i``."""
    await conn.execute(
        "INSERT INTO pool_numbers (number, region, state, created_at, mode) "
        f"SELECT '+8616900' || lpad(i::text, 6, '0'), {region}, 'available', now(), 'axb' "
        f"FROM generate_series(0, {count} - 1) i")


async def _binding(conn: psycopg.AsyncConnection[Any], key: str, x: str, *, caller: str = A1,
                   bidx: str | None = None, released_minutes_ago: int | None = None) -> None:
    state = "active" if released_minutes_ago is None else "released"
    released = (None if released_minutes_ago is None
                else NOW - timedelta(minutes=released_minutes_ago))
    await conn.execute(
        "INSERT INTO bindings (id, shop_id, order_id, buyer_id, caller_a, virtual_x, extension, "
        "buyer_cipher, buyer_bidx, buyer_masked, created_at, expires_at, released_at, state) "
        "VALUES (%s, 's1', %s, '', %s, %s, '', '\\x00', %s, '', %s, %s, %s, %s)",
        (key, key, caller, x, bidx or key, NOW - timedelta(hours=1),
         NOW + timedelta(days=3650), released, state))


async def _issue(conn: psycopg.AsyncConnection[Any], order: str, region: str | None = None
                 ) -> tuple[str, str, int]:
    """One request in a transaction rolled back afterwards: its status and X, and the pool
    rows read meanwhile."""
    async with conn.transaction(force_rollback=True):
        # the counters may still hold the set-up's reads (they are flushed now and then)
        before = (await (await conn.execute(_POOL_READS)).fetchone() or [0])[0]
        cursor = await conn.execute(CALL, (Jsonb([_request(order, region)]), COOLDOWN,
                                           WINDOW, 3))
        rows = await cursor.fetchall()
        after = (await (await conn.execute(_POOL_READS)).fetchone() or [0])[0]
    assert len(rows) == 1
    return str(rows[0][1]), str(rows[0][3]), int(after) - int(before)


@pytest.fixture
async def session(pg_database: Database) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    await seed(pg_database, pool=[(virtual(i), "", None) for i in range(10)])
    conn = await connect_autocommit(libpq_url(pg_database.url), 5)
    yield conn
    await conn.close()


@pytest.mark.parametrize("mode", MODES)
async def test_a_line_past_the_window_reads_the_pool_only_as_far_as_its_next_number(
        session: psycopg.AsyncConnection[Any], mode: str) -> None:
    """A1 holds the first 200 of 3 000 numbers: its next binding takes the 201st, having read
    the first window and then the pool up to that number (a window of 1 024 read and sorted
    whole read 1 289 rows here)."""
    await _pool(session, 3_000, "''")
    for i in range(200):
        await _binding(session, f"held{i}", front(i))
    await session.execute("ANALYZE")
    await session.execute(f"SET plan_cache_mode = {mode}")
    status, x, read = await _issue(session, "next")
    assert (status, x) == ("created", front(200))
    assert read < WINDOW + 201 + 50, read


@pytest.mark.parametrize("mode", MODES)
async def test_past_the_window_the_preferred_region_comes_first_then_the_others(
        session: psycopg.AsyncConnection[Any], mode: str) -> None:
    """Front numbers alternate north (even) and south (odd). A1 holds the first 150 north
    numbers: with north preferred, its next is the 151st north number, though south numbers
    come earlier in the pool's order. Once A1 holds every north number, the first south
    number it may take: not one A1 released within the cool-down, nor one the buyer holds
    with another line."""
    await _pool(session, 400, "CASE WHEN i % 2 = 0 THEN 'north' ELSE 'south' END")
    for i in range(0, 300, 2):
        await _binding(session, f"held{i}", front(i))
    await session.execute("ANALYZE")
    await session.execute(f"SET plan_cache_mode = {mode}")
    assert (await _issue(session, "next", "north"))[:2] == ("created", front(300))
    for i in range(300, 400, 2):
        await _binding(session, f"held{i}", front(i))
    await _binding(session, "cooling", front(1), released_minutes_ago=10)
    await _binding(session, "buyers", front(3), caller="+8613800000099", bidx="bidx-last")
    await _binding(session, "cooled", front(5), released_minutes_ago=45)
    assert (await _issue(session, "last", "north"))[:2] == ("created", front(5))
    assert (await _issue(session, "other", "south"))[:2] == ("created", front(3))

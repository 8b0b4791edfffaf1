"""The SQL allocation query picks exactly what the pure rules pick, over random pools; when
it finds nothing, the SQL cool-down diagnosis agrees with the pure one."""

from __future__ import annotations

import random
import sqlite3
from datetime import datetime, timedelta
from typing import Any

import pytest
from psycopg.types.json import Jsonb
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from binding_store.allocation_sql import (
    CANDIDATE_WINDOW,
    cooling_down_until,
    select_virtual_number,
)
from binding_store.db import Database
from binding_store.issue_requests import IssueInput
from binding_store.models import Account, Base, Binding, CallerNumber, PoolNumber, Shop
from routing.allocation import PoolCandidate, choose_virtual_number
from routing.allocation import cooling_down_until as pure_cooling_down_until
from tests.binding_store.test_bindings_helpers import NOW, caller, virtual

COOLDOWN = timedelta(minutes=30)
REGIONS = ["", "BJ", "SH"]


def _moment(rng: random.Random) -> datetime:
    # Coarse values so ties (same release time) really happen.
    return NOW - timedelta(minutes=rng.choice([0, 1, 10, 29, 30, 31, 45, 90, 600]))


async def _shop_with_caller(s: AsyncSession, a: str) -> None:
    """Shop ``s1``, enabled, with its main account and ``a`` as an approved caller."""
    s.add(Shop(id="s1", service_state="enabled", created_at=NOW, updated_at=NOW))
    await s.flush()
    s.add(Account(id="m", shop_id="s1", role="main", created_at=NOW))
    await s.flush()
    s.add(CallerNumber(shop_id="s1", number=a, account_id="m", status="approved",
                       created_at=NOW, updated_at=NOW))


@pytest.mark.parametrize("seed_value", range(6))
async def test_sql_choice_equals_pure_choice(database: Database, seed_value: int) -> None:
    rng = random.Random(seed_value)
    a, bidx = caller(1), "bidx-me"
    async with database.session() as s:
        await _shop_with_caller(s, a)
        pool = [PoolNumber(number=virtual(rng.randrange(10_000)), region=rng.choice(REGIONS),
                           state=rng.choice(["available"] * 4 + ["quarantined", "retired"]),
                           last_released_at=rng.choice([None, _moment(rng)]), created_at=NOW)
                for _ in range(40)]
        pool = list({p.number: p for p in pool}.values())
        s.add_all(pool)
        await s.flush()
        rows: list[Binding] = []
        for i in range(120):
            x = rng.choice(pool).number
            who = rng.random()
            state = rng.choice(["active", "active", "released", "expired"])
            released = None if state == "active" else _moment(rng)
            rows.append(Binding(
                id=f"b{i}", shop_id="s1", order_id=f"o{i}",
                caller_a=a if who < 0.3 else caller(2 + i),
                virtual_x=x, buyer_cipher=b"", buyer_bidx=bidx if 0.3 <= who < 0.45 else f"o{i}",
                buyer_masked="", created_at=NOW, expires_at=NOW + timedelta(hours=1),
                released_at=released, state=state))
        # Keep the partial unique indexes satisfied: one active row per (A,X) and (B,X).
        seen: set[tuple[str, str]] = set()
        for r in rows:
            if r.state == "active":
                if (r.caller_a, r.virtual_x) in seen or (r.buyer_bidx, r.virtual_x) in seen:
                    r.state, r.released_at = "released", _moment(rng)
                else:
                    seen.update({(r.caller_a, r.virtual_x), (r.buyer_bidx, r.virtual_x)})
        s.add_all(rows)
        await s.commit()

    busy_a = frozenset(r.virtual_x for r in rows if r.state == "active" and r.caller_a == a)
    busy_b = frozenset(r.virtual_x for r in rows if r.state == "active" and r.buyer_bidx == bidx)
    released: dict[str, datetime] = {}
    for r in rows:
        if r.caller_a == a and r.released_at is not None:
            released[r.virtual_x] = max(r.released_at, released.get(r.virtual_x, r.released_at))
    candidates = [PoolCandidate(p.number, p.region, p.last_released_at)
                  for p in pool if p.state == "available"]
    for region in [None, *REGIONS]:
        for excluded in [set(), {c.number for c in rng.sample(candidates, 5)}]:
            expected = choose_virtual_number(
                [c for c in candidates if c.number not in excluded], busy_with_a=busy_a,
                busy_with_b=busy_b, released_to_a=released, now=NOW, cooldown=COOLDOWN,
                preferred_region=region)
            async with database.session() as s:
                got = await select_virtual_number(
                    s, caller_a=a, buyer_bidx=bidx, now=NOW, cooldown=COOLDOWN,
                    preferred_region=region, excluded=excluded)
            assert got == (expected.number if expected else None), (seed_value, region)
            if database.dialect == "postgresql" and not excluded:
                # 1 and 2: the growing windows and the whole-pool fallback too
                for window in (1, 2, CANDIDATE_WINDOW):
                    assert await _function_choice(database, a, bidx, region, window) == got
        async with database.session() as s:
            until = await cooling_down_until(s, caller_a=a, buyer_bidx=bidx, now=NOW,
                                             cooldown=COOLDOWN, excluded=excluded)
        assert until == pure_cooling_down_until(
            [c for c in candidates if c.number not in excluded], busy_with_a=busy_a,
            busy_with_b=busy_b, released_to_a=released, now=NOW, cooldown=COOLDOWN)


async def _function_choice(db: Database, a: str, bidx: str, region: str | None,
                           window: int) -> str | None:
    """The X ``privnum_issue`` gives a new order (rolled back afterwards)."""
    request = IssueInput(shop_id="s1", order_id="fresh", buyer_id="", caller_a=a,
                         buyer_cipher=b"", buyer_bidx=bidx, buyer_masked="", now=NOW,
                         validity=timedelta(hours=1), preferred_region=region,
                         actor="t").request(with_event=False)
    async with db.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        cursor = await raw.driver_connection.execute(  # type: ignore[union-attr]
            "SELECT status, virtual_x FROM privnum_issue(%s, %s, %s, %s)",
            (Jsonb([request]), COOLDOWN, window, 1))
        status, x = await cursor.fetchone()
        await conn.rollback()
    assert status in ("created", "exhausted"), status
    return None if status == "exhausted" else str(x)


async def test_a_preferred_region_without_a_free_number_falls_back_to_the_others(
        database: Database) -> None:
    """Every number of the preferred region is busy with A: the next X comes from the other
    regions, in allocation order, whatever the window (the random pools above never leave
    the preferred region without a free number)."""
    a, bidx = caller(1), "bidx-me"
    preferred = [virtual(1), virtual(2), virtual(3)]
    others = {virtual(7): NOW - timedelta(minutes=90), virtual(5): None, virtual(6): None}
    async with database.session() as s:
        await _shop_with_caller(s, a)
        s.add_all([PoolNumber(number=x, region="BJ", state="available", created_at=NOW)
                   for x in preferred])
        s.add_all([PoolNumber(number=x, region="SH", state="available", last_released_at=at,
                              created_at=NOW) for x, at in others.items()])
        await s.flush()
        s.add_all([Binding(id=f"b{i}", shop_id="s1", order_id=f"o{i}", caller_a=a,
                           virtual_x=x, buyer_cipher=b"", buyer_bidx=f"other{i}",
                           buyer_masked="", created_at=NOW, expires_at=NOW + timedelta(hours=1),
                           released_at=None, state="active")
                   for i, x in enumerate(preferred)])
        await s.commit()
    candidates = [PoolCandidate(x, "BJ", None) for x in preferred] + [
        PoolCandidate(x, "SH", at) for x, at in others.items()]
    expected = choose_virtual_number(
        candidates, busy_with_a=frozenset(preferred), busy_with_b=frozenset(),
        released_to_a={}, now=NOW, cooldown=COOLDOWN, preferred_region="BJ")
    assert expected is not None and expected.number == virtual(5)  # never released, lowest
    async with database.session() as s:
        got = await select_virtual_number(s, caller_a=a, buyer_bidx=bidx, now=NOW,
                                          cooldown=COOLDOWN, preferred_region="BJ",
                                          excluded=set())
    assert got == expected.number
    if database.dialect == "postgresql":
        for window in (1, 2, 3, 4, CANDIDATE_WINDOW):
            assert await _function_choice(database, a, bidx, "BJ", window) == expected.number


async def test_sqlite_probes_each_pair_on_its_index(sqlite_url: str) -> None:
    """A line holding the first 500 of 1 000 numbers, on SQLite: the whole-pool query probes
    (A, X) and (B, X) each on an index of its pair. Work is counted in SQLite's virtual
    machine steps, not timed: about 38 000 here, where one probe ORed over both pairs read
    every active binding for each candidate (2.3 million)."""
    db = Database(sqlite_url, timeout=5.0)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        a = caller(1)
        async with db.session() as s:
            await _shop_with_caller(s, a)
            s.add_all(PoolNumber(number=virtual(i), region="", state="available",
                                 last_released_at=None, created_at=NOW) for i in range(1_000))
            await s.flush()
            s.add_all(Binding(id=f"b{i}", shop_id="s1", order_id=f"o{i}", caller_a=a,
                              virtual_x=virtual(i), buyer_cipher=b"\x00",
                              buyer_bidx=f"bidx-{i}", buyer_masked="", created_at=NOW,
                              expires_at=NOW + timedelta(days=1), state="active")
                      for i in range(500))
            await s.commit()
        statements: list[tuple[str, Any]] = []

        def grab(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
            statements.append((statement, parameters))

        event.listen(db.engine.sync_engine, "before_cursor_execute", grab)
        async with db.session() as s:
            got = await select_virtual_number(s, caller_a=a, buyer_bidx="bidx-new", now=NOW,
                                              cooldown=COOLDOWN, preferred_region=None,
                                              window=None)
        event.remove(db.engine.sync_engine, "before_cursor_execute", grab)
        assert got == virtual(500)
        statement, parameters = statements[-1]
        steps = [0]

        def count() -> int:
            steps[0] += 1
            return 0

        plain = sqlite3.connect(sqlite_url.removeprefix("sqlite+aiosqlite:///"))
        try:
            plain.set_progress_handler(count, 1_000)
            assert plain.execute(statement, parameters).fetchall() == [(virtual(500),)]
        finally:
            plain.close()
        assert steps[0] * 1_000 < 400_000, steps[0]
    finally:
        await db.dispose()

"""On SQLite, this process's write transactions take turns (``Database.write_turn``): many
issues at once (a file of orders, a burst of API calls) queue in order instead of racing in
SQLite's busy handler, where some gave up after its 5 s as "database is locked"."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import event

from binding_store.crypto import BuyerCipher
from binding_store.db import Database
from binding_store.models import Base
from tests.binding_store.test_bindings_helpers import A1, NOW, seed, store, virtual


def _open_transactions(db: Database) -> list[int]:
    """[open now, most open at once], kept by the engine's transaction events."""
    seen = [0, 0]

    def begun(_conn: Any) -> None:
        seen[0] += 1
        seen[1] = max(seen)

    def ended(_conn: Any) -> None:
        seen[0] -= 1

    engine = db.engine.sync_engine
    event.listen(engine, "begin", begun)
    event.listen(engine, "commit", ended)
    event.listen(engine, "rollback", ended)
    return seen


async def test_concurrent_issues_on_sqlite_write_one_at_a_time(
        sqlite_url: str, cipher: BuyerCipher) -> None:
    db = Database(sqlite_url, timeout=5.0)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        await seed(db, pool=[(virtual(i), "", None) for i in range(40)])
        bindings = store(db, cipher)
        seen = _open_transactions(db)
        views = await asyncio.gather(*(
            bindings.issue("s1", f"o{i}", "", A1, f"+86137{i:08d}", NOW, actor="t")
            for i in range(16)))
        assert sorted(v.virtual_x for v in views) == sorted(virtual(i) for i in range(16))
        assert seen == [0, 1]
    finally:
        await db.dispose()


@pytest.mark.postgres
async def test_postgresql_writers_do_not_take_turns(pg_url: str) -> None:
    db = Database(pg_url, timeout=5.0)
    try:
        inside = 0
        most = 0

        async def writer() -> None:
            nonlocal inside, most
            async with db.write_turn():
                inside += 1
                most = max(most, inside)
                await asyncio.sleep(0.01)
                inside -= 1

        await asyncio.gather(*(writer() for _ in range(4)))
        assert most == 4
    finally:
        await db.dispose()

from __future__ import annotations

from sqlalchemy import text

from binding_store.db import Database


async def test_database_fixture_gives_an_empty_schema(database: Database) -> None:
    async with database.session() as session:
        count = (await session.execute(text("SELECT count(*) FROM bindings"))).scalar_one()
    assert count == 0

"""The index watermark: how the call path tells a current Redis index from one older than SQL.

SQL keeps one counter (table ``index_watermark``). Every change that takes a right to call away
or changes where a call goes (a binding released or switched, a caller number added, removed
or re-statused, a shop enabled or disabled) raises it with :func:`bump` in the SAME transaction
as the change. After the commit the writer updates Redis with one script that applies the change
to the index keys and raises the index's copy of the counter to the new value; the index's copy
is therefore never ahead of what it reflects.

The serving process keeps the highest value it knows (:class:`KnownWatermark`: read from SQL
at start, after its own writes, and every second by ``binding_store.index_healer``). A look-up
returns the index's copy with the keys, in the same round trip; an index behind what the
process knows (restored from an old snapshot, a lagging replica after a failover) or without a
copy at all (flushed, lost) is not trusted: SQL answers and the index is rebuilt.

Why the counter is exact under concurrency: on PostgreSQL the bump is a row lock held to the
commit, so bumps are serialized and a value ``n`` can only be seen once every change with a
value below ``n`` has committed; SQLite serializes all writers anyway.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from binding_store.db import Database, guard
from binding_store.models import IndexWatermark

_ROW = 1


def _upsert(session: AsyncSession) -> Any:
    bind = session.get_bind()
    insert = postgresql.insert if bind.dialect.name == "postgresql" else sqlite.insert
    row = IndexWatermark
    return insert(row).values(id=_ROW, value=1).on_conflict_do_update(
        index_elements=[row.id], set_={"value": row.value + 1}).returning(row.value)


async def bump(session: AsyncSession) -> int:
    """Raise the watermark inside the caller's transaction; the new value.

    Call it at the end of the transaction, after every other row lock it takes: it holds this
    row's lock until the commit, and with nothing else waited for behind it, it cannot take
    part in a deadlock."""
    return int((await session.execute(_upsert(session))).scalar_one())


async def read(database: Database) -> int:
    """The committed watermark (0 before the first change)."""
    async with guard(database.timeout * 5), database.engine.connect() as conn:
        value = (await conn.execute(
            select(IndexWatermark.value).where(IndexWatermark.id == _ROW))).scalar_one_or_none()
    return int(value or 0)


class KnownWatermark:
    """The highest watermark this process knows to be committed (``None`` before it has
    learnt any). Only ever raised."""

    def __init__(self) -> None:
        self.value: int | None = None

    def learn(self, value: int) -> None:
        if self.value is None or value > self.value:
            self.value = value


async def invalidate(database: Database, known: KnownWatermark) -> int:
    """After a committed change the index could not be told about (a new binding's keys not
    written): raise SQL's watermark in a transaction of its own and learn it, so every
    process sees the index behind and reads SQL until it is rebuilt. The new value."""
    async with database.session() as session:
        value = await bump(session)
        await session.commit()
    known.learn(value)
    return value

"""The call log's read side: the shop's query (windowed, filtered, cursor-paged) and the
auditor's export stream (server-side cursor, constant memory)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import AsyncExitStack, aclosing
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select, tuple_

from binding_store.call_log import record_of
from binding_store.cdr_models import LISTED_COLUMNS, Cdr
from binding_store.db import Database, guard
from routing.call_log_views import (
    CallLogPage,
    CallLogQuery,
    ExportRow,
    LinkTemplates,
    Outcome,
    Window,
    decode_cursor,
    encode_cursor,
    resolve_window,
)
from routing.errors import CallLogQueryError
from routing.model import Direction
from routing.reasons import Reason

MAX_PAGE = 500
# The shop query reads its index's key and included columns only (an index-only scan on
# PostgreSQL, see ``LISTED_COLUMNS``): never the chain columns.
LISTED = (Cdr.id, Cdr.shop_id, Cdr.start_utc, *(Cdr.__table__.c[name] for name in LISTED_COLUMNS))


async def list_calls(db: Database, query: CallLogQuery, now: datetime,
                     links: LinkTemplates) -> CallLogPage:
    """A shop's call records, newest first (start time, then id)."""
    window = resolve_window(now, query.since, query.until)
    if not 1 <= query.limit <= MAX_PAGE:
        raise CallLogQueryError(f"limit must be between 1 and {MAX_PAGE}")
    if query.outcome is not None and query.outcome not in Outcome.__members__.values():
        raise CallLogQueryError(
            f"unknown outcome {query.outcome!r} (one of: {', '.join(o.value for o in Outcome)})")
    if query.reason is not None and query.reason not in Reason.__members__.values():
        raise CallLogQueryError(f"unknown reason {query.reason!r}")
    if query.direction is not None and query.direction not in Direction.__members__.values():
        raise CallLogQueryError(
            f"unknown direction {query.direction!r} (merchant or callback)")
    stmt = list_statement(query, window)
    async with db.session() as session:
        rows = list((await session.execute(stmt)).all())
    more = len(rows) > query.limit
    rows = rows[:query.limit]
    entries = tuple(links.entry(r.id, record_of(r)) for r in rows)
    cursor = encode_cursor(rows[-1].start_utc, rows[-1].id) if more and rows else None
    return CallLogPage(entries=entries, next_cursor=cursor, window=window)


def list_statement(query: CallLogQuery, window: Window) -> Select[Any]:
    """The shop query: ``query``'s filters inside ``window``, newest first, one row more than
    a page (to know whether another follows)."""
    stmt = (select(*LISTED).where(Cdr.shop_id == query.shop_id)
            .where(Cdr.start_utc >= window.since, Cdr.start_utc < window.until))
    if query.order_id:
        stmt = stmt.where(Cdr.order_id == query.order_id)
    if query.caller:
        stmt = stmt.where(Cdr.caller_a == query.caller)
    if query.outcome:
        stmt = stmt.where(Cdr.outcome == query.outcome)
    if query.reason:
        stmt = stmt.where(Cdr.reason == query.reason)
    if query.direction:
        stmt = stmt.where(Cdr.direction == query.direction)
    if query.cursor:
        at, row_id = decode_cursor(query.cursor)
        # A row comparison is one index condition (an OR would be a filter after the scan);
        # the plain bound lets PostgreSQL skip the newer partitions.
        stmt = stmt.where(tuple_(Cdr.start_utc, Cdr.id) < tuple_(at, row_id),
                          Cdr.start_utc <= at)
    return stmt.order_by(Cdr.start_utc.desc(), Cdr.id.desc()).limit(query.limit + 1)


def export_statement(start: datetime, end: datetime, shop_id: str | None) -> Select[Any]:
    stmt = select(Cdr.__table__).where(Cdr.start_utc >= start, Cdr.start_utc < end)
    if shop_id:
        stmt = stmt.where(Cdr.shop_id == shop_id)
    return stmt.order_by(Cdr.start_utc, Cdr.id)


async def stream_rows(db: Database, stmt: Select[Any], chunk: int = 1000
                      ) -> AsyncGenerator[Any, None]:
    """Core rows of ``stmt`` through a server-side cursor, ``chunk`` at a time; each fetch (not the
    whole stream) is bounded by the store's time-out and its faults become StoreUnavailable."""
    async with AsyncExitStack() as stack:
        async with guard(db.timeout * 5):
            conn = await stack.enter_async_context(db.engine.connect())
            result = await conn.stream(stmt.execution_options(yield_per=chunk))
            stack.push_async_callback(result.close)
        while True:
            async with guard(db.timeout * 5):
                rows = await result.fetchmany(chunk)
            if not rows:
                return
            for row in rows:
                yield row


async def export_rows(db: Database, start: datetime, end: datetime,
                      shop_id: str | None = None, chunk: int = 1000
                      ) -> AsyncGenerator[ExportRow, None]:
    """Every record with ``start <= start_utc < end`` (optionally one shop), oldest first."""
    if start >= end:
        raise CallLogQueryError("--from must be before --to")
    # aclosing: a reader that stops early closes the server-side cursor with this generator.
    rows = stream_rows(db, export_statement(start, end, shop_id), chunk)
    async with aclosing(rows):
        async for row in rows:
            yield ExportRow(id=row.id, chain_seq=row.chain_seq, record=record_of(row),
                            row_hash=row.row_hash)


class CallLogReader:
    """Implements ``routing.api_ports.CallLogReader`` over a :class:`Database`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def page(self, query: CallLogQuery, now: datetime, links: LinkTemplates
                   ) -> CallLogPage:
        return await list_calls(self._db, query, now, links)

    def export(self, start: datetime, end: datetime, shop_id: str | None = None
               ) -> AsyncGenerator[ExportRow, None]:
        return export_rows(self._db, start, end, shop_id)

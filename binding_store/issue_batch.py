"""Group commit for issuing bindings on PostgreSQL: requests that arrive together in one
process go to the database as one ``privnum_issue`` statement (``binding_store.issue_sql``),
one round trip and one commit for all of them, each with its own result.

The writer keeps its own few connections (psycopg, autocommit: the statement is its own
transaction), no ORM and no pool pre-ping on this path. While ``max_inflight`` batches are at
the database, new requests queue; the next batch takes up to ``max_batch`` of them.
Infrastructure faults fail the batch's requests with ``StoreUnavailable`` (translated here,
at the store's edge); a broken connection is dropped and a new one opened for the next batch.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy.engine import make_url

from binding_store.issue_sql import CALL
from routing.errors import StoreUnavailable

DEFAULT_MAX_BATCH = 32  # each request is one sub-transaction; PostgreSQL caches 64 per backend
DEFAULT_MAX_INFLIGHT = 2


@dataclass(frozen=True)
class IssueRow:
    """One request's answer (see ``binding_store.issue_sql`` for the statuses)."""

    status: str
    binding_id: str | None
    virtual_x: str | None
    buyer_id: str | None
    caller_a: str | None
    buyer_masked: str | None
    created_at: datetime | None
    expires_at: datetime | None
    detail: str | None


def libpq_url(url: str) -> str:
    """The libpq form of a SQLAlchemy PostgreSQL URL (the driver name dropped)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class IssueBatcher:
    def __init__(self, url: str, *, timeout: float, cooldown: timedelta, window: int,
                 attempts: int, max_batch: int = DEFAULT_MAX_BATCH,
                 max_inflight: int = DEFAULT_MAX_INFLIGHT) -> None:
        self._conninfo = libpq_url(url)
        self._timeout = timeout
        self._cooldown = cooldown
        self._window = window
        self._attempts = attempts
        self._max_batch = max_batch
        self._max_inflight = max_inflight
        self._pending: deque[tuple[dict[str, Any], asyncio.Future[IssueRow]]] = deque()
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._flushers: set[asyncio.Task[None]] = set()
        self.batches = 0  # statements sent (for measurement)

    async def submit(self, request: dict[str, Any]) -> IssueRow:
        """Issue one binding (``request``: one element of ``privnum_issue``'s array)."""
        future: asyncio.Future[IssueRow] = asyncio.get_running_loop().create_future()
        self._pending.append((request, future))
        if len(self._flushers) < self._max_inflight:
            task = asyncio.create_task(self._flush())
            self._flushers.add(task)
            task.add_done_callback(self._flushers.discard)
        return await future

    async def close(self) -> None:
        for task in list(self._flushers):
            task.cancel()
        await asyncio.gather(*self._flushers, return_exceptions=True)
        while self._idle:
            await self._idle.pop().close()

    async def _flush(self) -> None:
        while self._pending:
            batch: list[tuple[dict[str, Any], asyncio.Future[IssueRow]]] = []
            while self._pending and len(batch) < self._max_batch:
                item = self._pending.popleft()
                if not item[1].done():  # its caller gave up (cancelled) before it was sent
                    batch.append(item)
            if not batch:
                continue
            try:
                rows = await self._run([req for req, _ in batch])
            except StoreUnavailable as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(StoreUnavailable(str(exc)))
                continue
            except BaseException as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(StoreUnavailable(
                            f"binding batch interrupted: {type(exc).__name__}"))
                raise
            for (_, future), row in zip(batch, rows, strict=True):
                if not future.done():
                    future.set_result(row)

    async def _run(self, requests: list[dict[str, Any]]) -> list[IssueRow]:
        conn: psycopg.AsyncConnection[Any] | None = None
        try:
            async with asyncio.timeout(self._timeout):
                conn = self._idle.pop() if self._idle else await self._connect()
                cursor = await conn.execute(CALL, (Jsonb(requests), self._cooldown,
                                                   self._window, self._attempts))
                raw = await cursor.fetchall()
        except TimeoutError:
            await _discard(conn)
            raise StoreUnavailable(
                f"database did not answer within {self._timeout:g} s") from None
        except psycopg.Error as exc:
            await _discard(conn)
            raise StoreUnavailable(f"database unavailable: {_first_line(exc)}") from None
        except BaseException:
            await _discard(conn)
            raise
        self._idle.append(conn)
        self.batches += 1
        rows = sorted(raw, key=lambda r: r[0])
        if len(rows) != len(requests):
            raise StoreUnavailable("the allocation function answered an incomplete batch")
        return [IssueRow(*r[1:]) for r in rows]

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(
            self._conninfo, autocommit=True, connect_timeout=max(1, int(self._timeout)),
            options="-c timezone=UTC")


async def _discard(conn: psycopg.AsyncConnection[Any] | None) -> None:
    if conn is not None:
        with contextlib.suppress(psycopg.Error):
            await conn.close()


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__

"""Group commit on PostgreSQL: writes that arrive together in one process go to the
database as one statement, one round trip and one commit for all of them, each with its own
result (issuing bindings: ``privnum_issue``, see ``binding_store.issue_sql``; stand-alone
audit events).

A writer keeps its own few connections (psycopg, autocommit: the statement is its own
transaction), no ORM and no pool pre-ping on this path. While ``max_inflight`` batches are at
the database, new requests queue; the next batch takes up to ``max_batch`` of them.
Infrastructure faults fail the batch's requests with ``StoreUnavailable`` (translated here,
at the store's edge); a broken connection is dropped and a new one opened for the next batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy.engine import make_url

from binding_store.json_text import dumps
from routing.errors import StoreUnavailable

DEFAULT_MAX_BATCH = 32  # each request is one sub-transaction; PostgreSQL caches 64 per backend
DEFAULT_MAX_INFLIGHT = 2
Req = TypeVar("Req")
Res = TypeVar("Res")


def libpq_url(url: str) -> str:
    """The libpq form of a SQLAlchemy PostgreSQL URL (the driver name dropped)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class Coalescer(Generic[Req, Res]):
    """Requests that arrive while ``max_inflight`` calls of ``run`` are under way wait and go
    together into the next call (up to ``max_batch``), each with its own answer; a failed
    call fails its requests with ``StoreUnavailable``."""

    def __init__(self, run: Callable[[list[Req]], Awaitable[list[Res]]], *,
                 max_batch: int = DEFAULT_MAX_BATCH,
                 max_inflight: int = DEFAULT_MAX_INFLIGHT) -> None:
        self._run = run
        self._max_batch = max_batch
        self._max_inflight = max_inflight
        self._pending: deque[tuple[Req, asyncio.Future[Res]]] = deque()
        self._flushers: set[asyncio.Task[None]] = set()

    async def submit(self, request: Req) -> Res:
        future: asyncio.Future[Res] = asyncio.get_running_loop().create_future()
        self._pending.append((request, future))
        if len(self._flushers) < self._max_inflight:
            task = asyncio.create_task(self._flush())
            self._flushers.add(task)
            task.add_done_callback(self._flushers.discard)  # also if cancelled before it ran
        return await future

    async def _flush(self) -> None:
        try:
            await self._send_pending()
        finally:
            # Leave the set in the step that found nothing pending: a done callback runs a
            # step later, and a request submitted in between would find every slot taken
            # and wait for a flusher that never comes.
            task = asyncio.current_task()
            if task is not None:
                self._flushers.discard(task)

    async def close(self) -> None:
        flushers = list(self._flushers)
        for task in flushers:
            task.cancel()
        await asyncio.gather(*flushers, return_exceptions=True)

    async def _send_pending(self) -> None:
        while self._pending:
            batch: list[tuple[Req, asyncio.Future[Res]]] = []
            while self._pending and len(batch) < self._max_batch:
                item = self._pending.popleft()
                if not item[1].done():  # its caller gave up (cancelled) before it was sent
                    batch.append(item)
            if not batch:
                continue
            try:
                answers = await self._run([req for req, _ in batch])
            except StoreUnavailable as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(StoreUnavailable(str(exc)))
                continue
            except BaseException as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(StoreUnavailable(
                            f"batch interrupted: {type(exc).__name__}"))
                raise
            for (_, future), answer in zip(batch, answers, strict=True):
                if not future.done():
                    future.set_result(answer)


class GroupWriter:
    """``statement`` takes the batch (a JSON array) as its first parameter, then ``params``.
    ``answers``: the statement returns one row per request, its index first (``None``: it
    returns nothing; each request then gets ``None``). ``replan``: SQL each new connection
    runs first, and again before its next statement once ``replan_seconds`` have passed (how
    the session plans the statement: see ``binding_store.issue_sql.PLAN_CHOICE``); when its
    last result is a row whose first value is false (a provisional choice), already once
    ``replan_retry_seconds`` have."""

    def __init__(self, url: str, statement: str, params: tuple[Any, ...] = (), *,
                 timeout: float, answers: bool = True, max_batch: int = DEFAULT_MAX_BATCH,
                 max_inflight: int = DEFAULT_MAX_INFLIGHT, replan: str | None = None,
                 replan_seconds: float = 2.0, replan_retry_seconds: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._conninfo = libpq_url(url)
        self._statement = statement
        self._params = params
        self._answers = answers
        self._timeout = timeout
        self._replan = replan
        self._replan_seconds = replan_seconds
        self._replan_retry_seconds = (replan_seconds if replan_retry_seconds is None
                                      else replan_retry_seconds)
        self._clock = clock
        # idle connections, each with the moment its session's plans were (re)made
        self._idle: list[tuple[psycopg.AsyncConnection[Any], float]] = []
        self._queue: Coalescer[dict[str, Any], Any] = Coalescer(
            self._run, max_batch=max_batch, max_inflight=max_inflight)
        self.batches = 0  # statements sent (for measurement)
        self.replans = 0  # times a session ran ``replan``

    async def submit(self, request: dict[str, Any]) -> Any:
        """Write one request (one element of the statement's array); its answer row."""
        return await self._queue.submit(request)

    async def close(self) -> None:
        await self._queue.close()
        while self._idle:
            await self._idle.pop()[0].close()

    async def _run(self, requests: list[dict[str, Any]]) -> list[Any]:
        conn: psycopg.AsyncConnection[Any] | None = None
        try:
            async with asyncio.timeout(self._timeout):
                if self._idle:
                    conn, planned = self._idle.pop()
                else:  # a new session: run ``replan`` first
                    conn, planned = await self._connect(), -math.inf
                if self._replan is not None and self._clock() - planned >= self._replan_seconds:
                    settled = await _last_flag(await conn.execute(self._replan))
                    self.replans += 1
                    planned = self._clock()
                    if not settled:  # choose again sooner
                        planned -= self._replan_seconds - self._replan_retry_seconds
                cursor = await conn.execute(self._statement,
                                            (Jsonb(requests, dumps), *self._params))
                raw = await cursor.fetchall() if self._answers else []
        except TimeoutError:
            await discard(conn)
            raise StoreUnavailable(
                f"database did not answer within {self._timeout:g} s") from None
        except psycopg.Error as exc:
            await discard(conn)
            raise StoreUnavailable(f"database unavailable: {first_line(exc)}") from None
        except BaseException:
            await discard(conn)
            raise
        self._idle.append((conn, planned))
        self.batches += 1
        if not self._answers:
            return [None] * len(requests)
        rows = sorted(raw, key=lambda r: r[0])
        if len(rows) != len(requests):
            raise StoreUnavailable("the database answered an incomplete batch")
        return [r[1:] for r in rows]

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        return await connect_autocommit(self._conninfo, self._timeout)


async def _last_flag(cursor: psycopg.AsyncCursor[Any]) -> bool:
    """The first value of the last row of ``cursor``'s last result with rows; true without
    one."""
    flag = True
    while True:
        if cursor.description is not None:
            rows = await cursor.fetchall()
            if rows:
                flag = bool(rows[-1][0])
        if not cursor.nextset():
            return flag


async def connect_autocommit(conninfo: str, connect_seconds: float, options: str = ""
                             ) -> psycopg.AsyncConnection[Any]:
    """A connection of its own, beside the engine's pool: autocommit, time zone UTC."""
    return await psycopg.AsyncConnection.connect(
        conninfo, autocommit=True, connect_timeout=max(1, int(connect_seconds)),
        options=" ".join(("-c timezone=UTC", options)).strip())


async def discard(conn: psycopg.AsyncConnection[Any] | None) -> None:
    """Close ``conn`` whatever state it is in (it saw an error or was cancelled)."""
    if conn is not None:
        with contextlib.suppress(psycopg.Error):
            await conn.close()


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__

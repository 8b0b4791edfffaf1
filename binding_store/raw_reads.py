"""Short reads on the request's hot path (PostgreSQL): plain SQL on connections of their own
(psycopg, autocommit, time zone UTC), without the engine's pool.

A read through the engine costs a pool check-out with a pre-ping (a round trip), switching the
connection to autocommit and back, and SQLAlchemy's execution and row processing: about four
times the read itself. Here a connection is taken from a list; instead of a ping before every
read, a read that fails on a connection that was idle (a database restart, a connection cut
while waiting) is tried once more on a new connection, so a stale connection costs one retry
and never an error. A read is never written through; every fault is ``StoreUnavailable``
(fail closed) and a connection that saw one is dropped.
"""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg

from binding_store.db import Database
from binding_store.group_commit import connect_autocommit, discard, first_line, libpq_url
from routing.errors import StoreUnavailable


class RawReads:
    """At most ``size`` connections, opened when first needed; waiting for one counts
    against ``timeout`` like the read."""

    def __init__(self, url: str, *, size: int, timeout: float, read_only: bool = False) -> None:
        self._conninfo = libpq_url(url)
        self._timeout = timeout
        self._options = "-c default_transaction_read_only=on" if read_only else ""
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._slots = asyncio.Semaphore(size)
        self._closed = False

    async def fetch(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """The rows of one statement (``%(name)s`` parameters)."""
        try:
            async with asyncio.timeout(self._timeout):
                async with self._slots:
                    return await self._fetch(sql, params)
        except TimeoutError:
            raise StoreUnavailable(
                f"database did not answer within {self._timeout:g} s") from None

    async def _fetch(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        if self._closed:
            raise StoreUnavailable("database reads are closed")
        while True:
            was_idle = bool(self._idle)
            conn = self._idle.pop() if was_idle else await self._connect()
            try:
                cursor = await conn.execute(sql, params)
                rows = await cursor.fetchall()
            except psycopg.OperationalError as exc:
                await discard(conn)
                if was_idle:
                    continue  # it went stale while idle: the next one (or a new one)
                raise StoreUnavailable(f"database unavailable: {first_line(exc)}") from None
            except psycopg.Error as exc:
                await discard(conn)
                raise StoreUnavailable(f"database error: {first_line(exc)}") from None
            except BaseException:
                await discard(conn)  # cancelled mid-read: its state is unknown
                raise
            self._idle.append(conn)
            return rows

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        try:
            return await connect_autocommit(self._conninfo, self._timeout, self._options)
        except psycopg.Error as exc:
            raise StoreUnavailable(f"database unavailable: {first_line(exc)}") from None

    async def close(self) -> None:
        self._closed = True
        while self._idle:
            await discard(self._idle.pop())


def raw_reads(db: Database) -> RawReads:
    """The database's one ``RawReads`` (as many connections as its pool), closed with it."""
    def make() -> RawReads:
        reads = RawReads(db.url, size=db.pool_size, timeout=db.timeout * 5,
                         read_only=db.read_only)
        db.on_dispose(reads.close)
        return reads

    found: RawReads = db.shared("raw-reads", make)
    return found

"""Engine and sessions, and the store's edge: infrastructure errors become StoreUnavailable."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from routing.errors import StoreUnavailable

T = TypeVar("T")


def sync_url(url: str) -> str:
    """The synchronous driver URL for the same database (Alembic, dumps)."""
    parsed = make_url(url)
    if parsed.drivername == "sqlite+aiosqlite":
        parsed = parsed.set(drivername="sqlite")
    return parsed.render_as_string(hide_password=False)


class Database:
    """One engine per process; sessions are short and every call is bounded by ``timeout``.

    ``read_only``: every transaction is read-only (PostgreSQL ``default_transaction_read_only``,
    SQLite ``query_only``): the engine for call-log reads and exports, which may point at a
    streaming replica (``database.read_url``) and must never be used to write, replica or not.
    """

    def __init__(self, url: str, *, timeout: float = 2.0, pool_size: int = 10,
                 read_only: bool = False) -> None:
        self.url = url
        self.timeout = timeout
        self.pool_size = pool_size
        self.read_only = read_only
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {}
        if self.dialect == "sqlite":
            database = parsed.database
            if database and database != ":memory:":
                directory = Path(database).parent
                try:
                    directory.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise StoreUnavailable(f"cannot create the SQLite database's directory "
                                           f"{directory}: {exc.strerror or exc}") from None
            kwargs["connect_args"] = {"timeout": timeout}
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_timeout=timeout,
                          pool_pre_ping=True)
            kwargs["connect_args"] = {"connect_timeout": max(1, int(timeout))}
            if read_only:
                kwargs["connect_args"]["options"] = "-c default_transaction_read_only=on"
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect",
                         _sqlite_read_only if read_only else _sqlite_pragmas)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # What else holds connections to this database (the group-commit writers' own).
        self._on_dispose: list[Callable[[], Awaitable[None]]] = []
        self._shared: dict[str, Any] = {}
        # SQLite: the write transactions of this process take turns (see write_turn), one
        # lock per event loop (a CLI command may run several loops over one Database).
        self._write_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary())

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session whose work is bounded in time and whose faults are StoreUnavailable.

        Commit explicitly inside; anything not committed is rolled back.
        """
        async with guard(self.timeout * 5), self._sessions() as session:
            yield session

    @asynccontextmanager
    async def write_session(self) -> AsyncIterator[AsyncSession]:
        """:meth:`session` for a write transaction, on SQLite in this process's turn (see
        :meth:`write_turn`; the wait for it is not part of the session's time limit)."""
        async with self.write_turn(), self.session() as session:
            yield session

    @asynccontextmanager
    async def write_turn(self) -> AsyncIterator[None]:
        """Around a write transaction: on SQLite, this process's writers take turns in arrival
        order. SQLite runs one writer at a time anyway; left to its busy handler, many waiting
        writers retry at random and some give up after its 5 s (a file of orders bound 64 at
        a time lost rows as "database is locked"). PostgreSQL: no turn to wait for."""
        if self.dialect != "sqlite":
            yield
            return
        loop = asyncio.get_running_loop()
        turn = self._write_turns.get(loop)
        if turn is None:
            turn = self._write_turns[loop] = asyncio.Lock()
        async with turn:
            yield

    @asynccontextmanager
    async def read_session(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only, where each statement may stand alone: on PostgreSQL
        its connection is in autocommit, so no BEGIN before and no ROLLBACK after (two of
        a short read's four round trips). Never write through it."""
        if self.dialect != "postgresql":
            async with self.session() as session:
                yield session
            return
        async with guard(self.timeout * 5), self.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            async with AsyncSession(bind=conn, expire_on_commit=False) as session:
                yield session

    @asynccontextmanager
    async def read_connection(self) -> AsyncIterator[AsyncConnection]:
        """``read_session``'s connection without a session, for Core statements: on
        PostgreSQL in autocommit (no BEGIN, no ROLLBACK). Never write through it."""
        async with guard(self.timeout * 5), self.engine.connect() as conn:
            if self.dialect == "postgresql":
                await conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn

    async def require_schema(self) -> None:
        """Fail (``StoreUnavailable``) on a database without privnum's tables: a service
        started on one would fail every call closed."""
        async with self.session() as session:
            await session.execute(text("SELECT 1 FROM bindings LIMIT 1"))

    def on_dispose(self, close: Callable[[], Awaitable[None]]) -> None:
        """Run ``close`` when this database is disposed (connections opened beside the
        engine's pool)."""
        self._on_dispose.append(close)

    def shared(self, key: str, make: Callable[[], T]) -> T:
        """One ``make()`` per database and ``key`` (a writer every store on this database
        shares, however many store objects are made)."""
        if key not in self._shared:
            self._shared[key] = make()
        value: T = self._shared[key]
        return value

    async def dispose(self) -> None:
        self._shared.clear()
        while self._on_dispose:
            await self._on_dispose.pop()()
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the call path read while the API writes; foreign keys are off by default.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _sqlite_read_only(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA query_only=ON")
    cursor.close()


@asynccontextmanager
async def guard(seconds: float) -> AsyncIterator[None]:
    """Translate infrastructure faults (and time-outs) into StoreUnavailable, once, here."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError as exc:
        raise StoreUnavailable(f"database did not answer within {seconds:g} s") from exc
    except PoolTimeout as exc:
        raise StoreUnavailable("database connection pool exhausted") from exc
    except OperationalError as exc:
        raise StoreUnavailable(f"database unavailable: {_first_line(exc.orig)}") from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise StoreUnavailable(f"database connection lost: {_first_line(exc.orig)}") from exc
        raise


def _first_line(error: BaseException | None) -> str:
    text = str(error) if error is not None else "unknown error"
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__

"""Call attempts written in batches, off the call's critical path.

The route handler answers Asterisk first and then hands the attempt here; a background task
writes whatever has queued up in one transaction (one INSERT ... ON CONFLICT DO NOTHING per
batch instead of one transaction per call). The queue is bounded: when the database falls
behind, ``record`` waits (back-pressure) rather than growing memory. ``close`` flushes.

Two kinds of failure, kept apart:

* the database is unavailable (``StoreUnavailable``, or a schema fault): the batch is retried
  with back-off until ``close``; what is still unwritten then is logged by count (the CDRs
  carry the same reasons, see agi/handlers.py);
* the database refuses a row (too long, missing, out of range ...): the batch is split in
  halves until the refused rows are alone; each is logged (masked) and counted
  (``on_refused``, the ``/metrics`` counter), every other row is written. Rows that cannot fit
  the columns are refused before the database sees them, so SQLite (which does not enforce
  ``VARCHAR(n)``) and PostgreSQL behave alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, cast

from sqlalchemy import String, Table, select, tuple_
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncSession

from binding_store import decision_events_sql
from binding_store import models as m
from binding_store.db import Database
from binding_store.outbox import Outbox
from binding_store.recordset_insert import as_document, recordset_insert
from routing.call_ids import is_call_id
from routing.errors import StoreUnavailable
from routing.events import BindingFacts, decision_events
from routing.model import CallAttempt
from routing.numbers import mask

log = logging.getLogger(__name__)

Row = tuple[CallAttempt, dict[str, Any]]
# Faults of the database as a whole, not of a row: retry, never refuse rows for them.
_UNAVAILABLE = (StoreUnavailable, ProgrammingError)
_NUMBER_RUN = re.compile(r"\d{7,}")


def attempt_row(attempt: CallAttempt) -> dict[str, Any]:
    return {
        "system_name": attempt.system_name, "uniqueid": attempt.uniqueid,
        "linkedid": attempt.linkedid, "at": attempt.at, "caller_masked": attempt.caller_masked,
        "caller_a": attempt.caller_a, "virtual_x": attempt.virtual_x,
        "action": attempt.action.value, "reason": attempt.reason.value,
        "direction": attempt.direction.value if attempt.direction is not None else None,
        "binding_id": attempt.binding_id, "shop_id": attempt.shop_id,
        "order_id": attempt.order_id, "mark": attempt.mark, "extension": attempt.extension,
    }


def _column_limits() -> Mapping[str, tuple[bool, int | None]]:
    """Column -> (nullable, longest string or None), read from the model once."""
    return MappingProxyType({
        column.name: (bool(column.nullable),
                      column.type.length if isinstance(column.type, String) else None)
        for column in m.CallAttempt.__table__.columns})


_LIMITS = _column_limits()


def row_problem(row: dict[str, Any]) -> str | None:
    """Why the ``call_attempts`` table cannot hold ``row`` as it is, or None."""
    for name, value in row.items():
        nullable, length = _LIMITS[name]
        if value is None:
            if not nullable:
                return f"{name} missing"
        elif length is not None and isinstance(value, str) and len(value) > length:
            return f"{name} longer than {length} characters"
    return None


_ATTEMPTS = cast(Table, m.CallAttempt.__table__)
_COLUMNS = tuple(column.name for column in _ATTEMPTS.columns if column.name != "id")


# The idempotent insert: a repeat of (system_name, uniqueid) is ignored (on partitioned
# PostgreSQL the key includes ``at``, which a retried write repeats: no conflict target).
# PostgreSQL: one statement and one parameter per batch (binding_store.recordset_insert); the
# unnest of one array per column cost the process more than half as much again
# (bench.batch_writes). SQLite: Core on the table, not the ORM's bulk insert (the rows are
# keyed by column name), which cost more per row than the rest of the write.
_INSERT_PG = recordset_insert(_ATTEMPTS, _COLUMNS, on_conflict="ON CONFLICT DO NOTHING")
_INSERT_SQLITE = sqlite_insert(_ATTEMPTS).on_conflict_do_nothing()
async def _insert_rows(session: AsyncSession, dialect: str, rows: list[dict[str, Any]]
                       ) -> None:
    if dialect == "postgresql":
        await session.execute(_INSERT_PG, as_document(rows))
    else:
        await session.execute(_INSERT_SQLITE, rows)


async def write_attempts(database: Database, rows: list[dict[str, Any]],
                         outbox: Outbox | None = None,
                         attempts: Sequence[CallAttempt] = ()) -> None:
    """Insert ``rows``; with an ``outbox``, the call events of the attempts actually inserted
    (a repeat is not) in the same transaction."""
    async with database.session() as session:
        if outbox is not None and outbox.enabled and attempts:
            if database.dialect == "postgresql":
                # the events of the calls it inserted are built and written by the database
                await session.execute(decision_events_sql.INSERT_WITH_EVENTS,
                                      decision_events_sql.parameters(rows))
            else:
                fresh = await _insert_after_stored_check(session, rows, attempts)
                if fresh:
                    events = [e for attempt, facts in fresh
                              for e in decision_events(attempt, facts)]
                    await outbox.write(session, events, max(a.at for a, _ in fresh))
        else:
            await _insert_rows(session, database.dialect, rows)
        await session.commit()


async def _insert_after_stored_check(session: AsyncSession, rows: list[dict[str, Any]],
                                     attempts: Sequence[CallAttempt]
                                     ) -> list[tuple[CallAttempt, BindingFacts]]:
    """SQLite: which calls are new is asked before the insert (an INSERT ... RETURNING runs
    row by row there, five times the batch's cost), the buyer facts after it. The table is
    never partitioned there: a call is stored once whatever its time."""
    keys = {(a.system_name, a.uniqueid) for a in attempts}
    found = await session.execute(
        select(m.CallAttempt.system_name, m.CallAttempt.uniqueid).where(
            tuple_(m.CallAttempt.system_name, m.CallAttempt.uniqueid).in_(keys)))
    stored = {(str(name), str(uid)) for name, uid in found}
    new = []
    for attempt in attempts:  # a call repeated within the batch is inserted once
        key = (attempt.system_name, attempt.uniqueid)
        if key not in stored:
            stored.add(key)
            new.append(attempt)
    await _insert_rows(session, "sqlite", rows)
    ids = {a.binding_id for a in new if a.binding_id}
    facts: dict[str, BindingFacts] = {}
    if ids:
        facts_of = select(m.Binding.id, m.Binding.buyer_masked, m.Binding.buyer_id)
        facts = {r.id: BindingFacts(buyer_masked=r.buyer_masked, buyer_id=r.buyer_id)
                 for r in await session.execute(facts_of.where(m.Binding.id.in_(ids)))}
    return [(a, facts.get(a.binding_id, BindingFacts())) for a in new]


def refusal_text(exc: BaseException) -> str:
    """What the database said, safe for a log line: the driver's first line (never its
    DETAIL, which echoes the row), digit runs masked."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = str(cause).strip().splitlines()
    text = f"{type(cause).__name__}: {lines[0]}" if lines else type(cause).__name__
    return _masked(text[:200])


def _masked(text: str) -> str:
    return _NUMBER_RUN.sub(lambda found: mask(found[0]), text)


class AttemptWriter:
    """Implements ``routing.ports.AttemptRecorder`` with batching; ``start``/``close`` it."""

    # linger 0.25 s: attempts are written after the call is answered, so waiting longer for a
    # batch costs no call anything, and fewer, larger transactions cost the process less (a
    # batch's five statements and its commit are the same work for 50 calls or 500; at
    # 2 000 calls/s a 0.25 s batch nears ``batch_size``). Call events reach the outbox that
    # much later, within the webhook delivery worker's 0.5 s poll of an idle outbox.
    def __init__(self, database: Database, *, batch_size: int = 500, linger: float = 0.25,
                 queue_max: int = 20_000, retry_delay: float = 0.5,
                 on_refused: Callable[[int], None] | None = None,
                 outbox: Outbox | None = None) -> None:
        self._db = database
        self._outbox = outbox
        self._batch_size = batch_size
        self._linger = linger
        self._retry_delay = retry_delay
        self._on_refused = on_refused
        # None is the stop marker ``close`` enqueues behind everything recorded before it.
        self._queue: asyncio.Queue[CallAttempt | None] = asyncio.Queue(maxsize=queue_max)
        self._task: asyncio.Task[None] | None = None
        # Set by close: what is queued is then flushed, a linger ended at once, and an outage
        # no longer waited out.
        self._closed = asyncio.Event()
        self.written = 0
        self.batches = 0
        self.refused = 0

    @property
    def queued(self) -> int:
        """Attempts waiting to be written (its backlog)."""
        return self._queue.qsize()

    async def record(self, attempt: CallAttempt) -> None:
        if self._task is None or self._task.done():
            # Not running (e.g. a one-shot AGI script): write this one directly; an outage
            # raises StoreUnavailable to the caller, a refused row is logged and counted.
            pending = self._checked([attempt])
            await self._insert(pending)
            return
        try:
            self._queue.put_nowait(attempt)  # the usual case: room, no coroutine to run
        except asyncio.QueueFull:
            await self._queue.put(attempt)  # back-pressure: wait for the writer

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="attempt-writer")

    async def close(self) -> None:
        """Write everything queued, then stop."""
        self._closed.set()
        if self._task is not None:
            await self._queue.put(None)
            await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            # Linger once, then take what queued meanwhile: one timer per batch, not a
            # ``wait_for`` (a task and a timer) per attempt, which cost the call path more
            # than the write itself at a few hundred calls per second. Not when a full batch
            # is waiting already: a linger per batch capped the writer at batch_size per
            # linger (2 000 calls/s), and a longer peak filled the queue until every call
            # waited for it.
            if (batch[0] is not None and self._linger > 0
                    and self._queue.qsize() < self._batch_size - 1):
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._linger):
                        await self._closed.wait()
            while len(batch) < self._batch_size:
                try:
                    batch.append(self._queue.get_nowait())
                except asyncio.QueueEmpty:
                    break
            stop = None in batch
            attempts = [a for a in batch if a is not None]
            if attempts:
                try:
                    await self._write(attempts, final=stop)
                except Exception as exc:  # a bug here must not end the writer: log, go on
                    log.error("%d call attempt(s) not written: %s", len(attempts),
                              refusal_text(exc))
            if stop:
                return

    async def _write(self, batch: list[CallAttempt], *, final: bool) -> None:
        pending = self._checked(batch)
        while pending:
            try:
                await self._insert(pending)
            except _UNAVAILABLE as exc:
                reason = str(exc) if isinstance(exc, StoreUnavailable) else refusal_text(exc)
                if final or self._closed.is_set():
                    log.error("%d call attempt(s) not written at shutdown: %s", len(pending),
                              reason)
                    return
                log.warning("call attempts waiting for the database: %s", reason)
                await asyncio.sleep(self._retry_delay)
                continue
        self.batches += 1

    def _checked(self, attempts: list[CallAttempt]) -> list[Row]:
        rows: list[Row] = []
        for attempt in attempts:
            row = attempt_row(attempt)
            problem = row_problem(row)
            if problem is None:
                rows.append((attempt, row))
            else:
                self._refuse(attempt, problem)
        return rows

    async def _insert(self, pending: list[Row]) -> None:
        """Write ``pending``, halving around rows the database refuses. Rows written or refused
        leave ``pending``; an outage (raised) leaves the rest in it for a retry."""
        chunks = [list(pending)]
        while chunks:
            chunk = chunks.pop()
            try:
                await write_attempts(self._db, [row for _, row in chunk], self._outbox,
                                     [attempt for attempt, _ in chunk])
            except _UNAVAILABLE:
                raise
            except Exception as exc:
                if len(chunk) > 1:
                    half = len(chunk) // 2
                    chunks += [chunk[half:], chunk[:half]]  # first half first
                    continue
                self._refuse(chunk[0][0], refusal_text(exc))
            else:
                self.written += len(chunk)
            handled = {id(attempt) for attempt, _ in chunk}
            pending[:] = [p for p in pending if id(p[0]) not in handled]

    def _refuse(self, attempt: CallAttempt, why: str) -> None:
        self.refused += 1
        if self._on_refused is not None:
            self._on_refused(1)
        uid = attempt.uniqueid if is_call_id(attempt.uniqueid) else (
            f"<{len(attempt.uniqueid)} characters, not shown>")
        log.error("call attempt uniqueid=%s refused by the database, not written (%s): "
                  "caller=%s x=%s action=%s reason=%s", uid, why,
                  _masked(attempt.caller_masked) or "-", attempt.virtual_x or "-",
                  attempt.action.value, attempt.reason.value)

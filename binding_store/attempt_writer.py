"""Call attempts written in batches, off the call's critical path.

The route handler answers Asterisk first and then hands the attempt here; a background task
writes whatever has queued up in one transaction (one INSERT ... ON CONFLICT DO NOTHING per
batch instead of one transaction per call). The queue is bounded: when the database falls
behind, ``record`` waits (back-pressure) rather than growing memory. ``close`` flushes.
A batch that cannot be written is retried with back-off until ``close``; what is still
unwritten then is logged by count (the CDRs carry the same reasons, see agi/handlers.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from binding_store import models as m
from binding_store.db import Database
from routing.errors import StoreUnavailable
from routing.model import CallAttempt

log = logging.getLogger(__name__)


def attempt_row(attempt: CallAttempt) -> dict[str, Any]:
    return {
        "system_name": attempt.system_name, "uniqueid": attempt.uniqueid,
        "linkedid": attempt.linkedid, "at": attempt.at, "caller_masked": attempt.caller_masked,
        "caller_a": attempt.caller_a, "virtual_x": attempt.virtual_x,
        "action": attempt.action.value, "reason": attempt.reason.value,
        "direction": attempt.direction.value if attempt.direction is not None else None,
        "binding_id": attempt.binding_id, "shop_id": attempt.shop_id,
        "order_id": attempt.order_id,
    }


def insert_attempts(dialect: str) -> Any:
    """The idempotent insert: a repeat of (system_name, uniqueid) is ignored (on partitioned
    PostgreSQL the key includes ``at``, which a retried write repeats: no conflict target)."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return insert(m.CallAttempt).on_conflict_do_nothing()


async def write_attempts(database: Database, rows: list[dict[str, Any]]) -> None:
    async with database.session() as session:
        await session.execute(insert_attempts(database.dialect), rows)
        await session.commit()


class AttemptWriter:
    """Implements ``routing.ports.AttemptRecorder`` with batching; ``start``/``close`` it."""

    def __init__(self, database: Database, *, batch_size: int = 500, linger: float = 0.02,
                 queue_max: int = 20_000, retry_delay: float = 0.5) -> None:
        self._db = database
        self._batch_size = batch_size
        self._linger = linger
        self._retry_delay = retry_delay
        # None is the stop marker ``close`` enqueues behind everything recorded before it.
        self._queue: asyncio.Queue[CallAttempt | None] = asyncio.Queue(maxsize=queue_max)
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.written = 0
        self.batches = 0

    async def record(self, attempt: CallAttempt) -> None:
        if self._task is None or self._task.done():
            # Not running (e.g. a one-shot AGI script): write this one directly.
            await write_attempts(self._db, [attempt_row(attempt)])
            self.written += 1
            return
        await self._queue.put(attempt)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="attempt-writer")

    async def close(self) -> None:
        """Write everything queued, then stop."""
        self._closing = True
        if self._task is not None:
            await self._queue.put(None)
            await self._task
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self._linger
            while len(batch) < self._batch_size and (wait := deadline - loop.time()) > 0:
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), wait))
                except TimeoutError:
                    break
            stop = None in batch
            attempts = [a for a in batch if a is not None]
            if attempts:
                await self._write(attempts, final=stop)
            if stop:
                return

    async def _write(self, batch: list[CallAttempt], *, final: bool) -> None:
        chunk = [attempt_row(a) for a in batch]
        while True:
            try:
                await write_attempts(self._db, chunk)
            except StoreUnavailable as exc:
                if final or self._closing:
                    log.error("%d call attempt(s) not written at shutdown: %s", len(chunk), exc)
                    return
                log.warning("call attempts waiting for the database: %s", exc)
                await asyncio.sleep(self._retry_delay)
                continue
            self.written += len(chunk)
            self.batches += 1
            return


"""Batched call-attempt writes: batching, idempotency, flush on close, outage and recovery."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from binding_store import models as m
from binding_store.attempt_writer import AttemptWriter
from binding_store.db import Database
from routing.model import Action, CallAttempt
from routing.reasons import Reason
from tests.agi.helpers import wait_for

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)


def attempt(n: int) -> CallAttempt:
    return CallAttempt(uniqueid=f"u{n}", linkedid=f"l{n}", at=NOW, caller_masked="138****0001",
                       caller_a="+8613800000001", virtual_x="+8617000000001",
                       action=Action.REJECT, reason=Reason.CALLER_NOT_AUTHORIZED, direction=None,
                       binding_id="", shop_id="", order_id="", system_name="pbx")


async def count(db: Database) -> int:
    async with db.session() as s:
        return int(await s.scalar(select(func.count()).select_from(m.CallAttempt)) or 0)


async def test_attempts_are_batched_and_flushed_on_close(database: Database) -> None:
    writer = AttemptWriter(database, batch_size=50, linger=0.05)
    writer.start()
    await asyncio.gather(*(writer.record(attempt(n)) for n in range(120)))
    await writer.record(attempt(0))  # a replay of the same call is ignored
    await writer.close()
    assert await count(database) == 120
    assert writer.written == 121
    assert writer.batches < 121 / 2  # batched, not one transaction per call


async def test_a_backlog_is_written_without_waiting_for_the_linger(database: Database
                                                                     ) -> None:
    """Full batches go at once: a linger per batch capped the writer at batch_size per
    linger, below a peak's call rate, until the full queue held up every call."""
    writer = AttemptWriter(database, batch_size=10, linger=3_600.0)
    writer.start()
    for n in range(25):
        await writer.record(attempt(n))
    # not a timing bound: the linger alone is an hour
    await wait_for(lambda: writer.written >= 20, seconds=30)
    assert (writer.written, writer.batches) == (20, 2)  # the last 5 wait for their batch
    assert writer.queued == 4  # the fifth is the one the writer holds while it lingers
    await writer.close()
    assert await count(database) == 25


async def test_without_start_each_attempt_is_written_directly(database: Database) -> None:
    writer = AttemptWriter(database)
    await writer.record(attempt(1))
    assert await count(database) == 1


async def test_a_database_outage_delays_writes_but_loses_none(
    database: Database, tmp_path: object
) -> None:
    dead = Database("postgresql+psycopg://nobody@127.0.0.1:1/none", timeout=0.2)
    writer = AttemptWriter(dead, retry_delay=0.05, linger=0.01)
    writer.start()
    await writer.record(attempt(1))
    await asyncio.sleep(0.3)
    assert writer.written == 0  # still waiting for the database
    writer._db = database  # the database comes back (same writer, same queue)
    for _ in range(100):
        if writer.written:
            break
        await asyncio.sleep(0.02)
    await writer.close()
    await dead.dispose()
    assert await count(database) == 1


async def test_a_full_queue_pushes_back_instead_of_growing(database: Database) -> None:
    writer = AttemptWriter(database, queue_max=5)
    # Not started: the queue would only fill if record() enqueued; it writes directly instead.
    await asyncio.gather(*(writer.record(attempt(n)) for n in range(20)))
    assert await count(database) == 20
    writer = AttemptWriter(database, queue_max=5, linger=0.01)
    writer.start()
    await asyncio.gather(*(writer.record(attempt(100 + n)) for n in range(50)))
    assert writer._queue.qsize() <= 5
    await writer.close()
    assert await count(database) == 70


async def test_rows_the_database_refuses_are_logged_masked_counted_and_the_rest_written(
        database: Database, caplog: pytest.LogCaptureFixture) -> None:
    bad = {
        7: replace(attempt(7), uniqueid="u" * 70),  # wider than the column (PostgreSQL refuses)
        13: replace(attempt(13), at=NOW.replace(tzinfo=None)),  # the UTC column refuses it
        21: replace(attempt(21), order_id="o" * 65, caller_masked="13812345678"),
        29: replace(attempt(29), linkedid="l" * 65),
    }
    if database.dialect == "postgresql":
        bad[33] = replace(attempt(33), order_id="o\x00")  # PostgreSQL text refuses NUL
    refused: list[int] = []
    writer = AttemptWriter(database, batch_size=50, linger=0.05, on_refused=refused.append)
    writer.start()
    with caplog.at_level(logging.INFO, logger="binding_store.attempt_writer"):
        for n in range(36):
            await writer.record(bad.get(n, attempt(n)))
        await writer.close()  # never raises: SIGTERM exits cleanly
    assert await count(database) == 36 - len(bad)
    assert writer.refused == sum(refused) == len(bad)
    lines = [r.getMessage() for r in caplog.records if "refused by the database" in r.getMessage()]
    assert len(lines) == len(bad)
    assert "u" * 70 not in caplog.text and "13812345678" not in caplog.text
    assert "138****5678" in caplog.text


async def test_a_refused_row_written_directly_is_logged_and_counted_not_raised(
        database: Database) -> None:
    writer = AttemptWriter(database)
    await writer.record(replace(attempt(1), at=NOW.replace(tzinfo=None)))
    await writer.record(attempt(2))
    assert (await count(database), writer.refused, writer.written) == (1, 1, 1)

"""Keeping the call log's time partitions created ahead (PostgreSQL; see
``binding_store.partitions``), a lifecycle service of ``privnum serve``. A failed round is
logged and retried at the next check: partitions are made periods ahead, and the DEFAULT
partition catches rows meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from binding_store.db import Database
from binding_store.partitions import ensure_partitions
from routing.errors import PrivnumError
from scripts.clock import utc_now
from scripts.lifecycle import Task
from scripts.part_config import database as open_engine
from scripts.settings import Settings

log = logging.getLogger("privnum.partitions")


def wanted(settings: Settings) -> bool:
    """Partition upkeep runs on PostgreSQL when its check interval is not 0."""
    return (settings.database.partition_check_seconds > 0
            and make_url(settings.database_url).get_backend_name() == "postgresql")


async def keep_partitions(settings: Settings, stopping: asyncio.Event,
                          database: Database | None = None) -> None:
    """Until ``stopping``: ensure the partitions now and every ``partition_check_seconds``
    (on ``database``, else on an engine of its own for as long as it runs)."""
    db = database or open_engine(settings)
    try:
        while not stopping.is_set():
            try:
                report = await ensure_partitions(db, utc_now(),
                                                 settings.database.partition_period,
                                                 settings.database.partitions_ahead)
                if report.created or report.waiting:
                    log.info("partitions: %d created, %d waiting for a lock",
                             len(report.created), len(report.waiting))
            except (PrivnumError, SQLAlchemyError) as exc:
                log.error("partition upkeep failed (retried in %g s): %s",
                          settings.database.partition_check_seconds, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(),
                                       settings.database.partition_check_seconds)
    finally:
        if database is None:
            await db.dispose()


def partition_upkeep(settings: Settings, database: Database) -> Task:
    """The upkeep as a lifecycle service (stopped with the others on SIGTERM)."""
    stopping = asyncio.Event()

    async def stop() -> None:
        stopping.set()

    return Task("partition-upkeep", lambda: keep_partitions(settings, stopping, database), stop)

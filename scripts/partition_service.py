"""The ``privnum serve`` companion that keeps the call log's time partitions created ahead
(PostgreSQL; see ``binding_store.partitions``). A failed round is logged and retried at the next
check: partitions are made periods ahead, and the DEFAULT partition catches rows meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from binding_store.partitions import EnsureReport, ensure_partitions
from routing.errors import PrivnumError
from scripts import wiring
from scripts.settings import Settings

log = logging.getLogger("privnum.partitions")


def wanted(settings: Settings) -> bool:
    """Partition upkeep runs on PostgreSQL when its check interval is not 0."""
    return (settings.database.partition_check_seconds > 0
            and make_url(settings.database_url).get_backend_name() == "postgresql")


async def ensure_once(settings: Settings) -> EnsureReport:
    db = wiring.database(settings)
    try:
        return await ensure_partitions(db, wiring.utc_now(), settings.database.partition_period,
                                       settings.database.partitions_ahead)
    finally:
        await db.dispose()


async def keep_partitions(settings: Settings, stopping: asyncio.Event) -> None:
    """Until ``stopping``: ensure the partitions now and every ``partition_check_seconds``."""
    while not stopping.is_set():
        try:
            report = await ensure_once(settings)
            if report.created or report.waiting:
                log.info("partitions: %d created, %d waiting for a lock",
                         len(report.created), len(report.waiting))
        except (PrivnumError, SQLAlchemyError) as exc:
            log.error("partition upkeep failed (retried in %g s): %s",
                      settings.database.partition_check_seconds, exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), settings.database.partition_check_seconds)

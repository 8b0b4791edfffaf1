"""Wiring of the AMI listener and the CDR reconcile: settings -> listener -> call log.

``privnum ami listen`` runs :func:`run_ami_listener`; ``privnum serve`` can start an
:class:`AmiService` next to the FastAGI server and stop it on shutdown (it then flushes).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select

from agi.ami_cdr import csv_path
from agi.ami_listener import AmiListener, AmiListenerConfig, ListenerStats
from agi.ami_reconcile import ReconcileResult, reconcile_file
from binding_store.call_log import CallLogStore
from binding_store.cdr_models import Cdr
from binding_store.db import Database
from routing.cdr_ports import Originator
from routing.errors import ConfigurationError
from scripts.settings import Settings

log = logging.getLogger("privnum.ami")


def cdr_zone(settings: Settings) -> ZoneInfo:
    try:
        return ZoneInfo(settings.ami.cdr_timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigurationError(
            f"invalid setting ami.cdr_timezone: unknown time zone {settings.ami.cdr_timezone!r}"
            " (env PRIVNUM_AMI__CDR_TIMEZONE)") from exc


def listener_config(settings: Settings) -> AmiListenerConfig:
    ami = settings.ami
    return AmiListenerConfig(
        host=ami.host, port=ami.port, username=ami.username, secret=ami.secret,
        events=ami.events, zone=cdr_zone(settings), system_name=settings.agi.system_name,
        ping_interval=ami.ping_interval_seconds, ping_timeout=ami.ping_timeout_seconds,
        login_timeout=ami.login_timeout_seconds, reconnect_delay=ami.reconnect_delay_seconds,
        reconnect_max_delay=ami.reconnect_max_delay_seconds,
        batch_size=ami.batch_size, batch_seconds=ami.batch_seconds, queue_max=ami.queue_max,
        number_classes=settings.number_classes)


def default_csv_file(settings: Settings) -> Path:
    """Asterisk's safety-net CSV: ``call_log.cdr_csv_dir`` (by default the ``cdr-custom``
    directory under ``asterisk.log_dir``, where the rendered ``cdr_custom.conf`` puts it)."""
    return csv_path(settings.cdr_csv_dir)


def csv_problem(path: Path) -> str | None:
    """Why nothing can be re-imported from ``path``, or None. A missing file in a readable
    directory is fine: Asterisk creates it with the first call."""
    directory = path.parent
    if not directory.is_dir():
        return f"{directory} does not exist here"
    if not os.access(directory, os.R_OK | os.X_OK):
        return f"{directory} is not readable by this user"
    if path.exists() and not os.access(path, os.R_OK):
        return f"{path} is not readable by this user"
    return None


def warn_without_safety_net(settings: Settings) -> None:
    """One warning at start-up when the AMI listener has no CSV to reconcile from: whatever
    happens while AMI is down would then only be closed from the call attempts."""
    path = default_csv_file(settings)
    problem = csv_problem(path)
    if problem is not None:
        log.warning("AMI is on but Asterisk's safety-net CDR file %s cannot be read (%s): "
                    "call records missed while AMI is down cannot be re-imported; set "
                    "call_log.cdr_csv_dir (env PRIVNUM_CALL_LOG__CDR_CSV_DIR)", path, problem)


async def known_system_name(db: Database) -> str:
    async with db.session() as session:
        name = await session.scalar(select(Cdr.system_name).where(Cdr.source == "ami")
                                    .order_by(Cdr.id.desc()).limit(1))
    return name or ""


async def reconcile(settings: Settings, db: Database, *, file: Path | None = None,
                    system_name: str | None = None, now: datetime | None = None
                    ) -> ReconcileResult:
    """Import the safety-net CSV (``file`` or :func:`default_csv_file`) and close orphans."""
    path = file or default_csv_file(settings)
    name = system_name or settings.agi.system_name or await known_system_name(db)
    sink = CallLogStore(db)
    when = now or datetime.now(UTC)
    return await reconcile_file(
        path, sink, zone=cdr_zone(settings), system_name=name, now=when,
        lookback=timedelta(days=settings.call_log.reconcile_lookback_days),
        orphan_grace_seconds=settings.call_log.orphan_grace_seconds,
        classes=settings.number_classes)


class AmiService:
    """The listener with its store, for ``privnum serve`` and ``privnum ami listen``."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db

        async def _reconcile(system_name: str) -> int:
            result = await reconcile(settings, db, system_name=system_name)
            return result.stored + result.orphans_closed

        self.listener = AmiListener(listener_config(settings), CallLogStore(db), _reconcile)
        self._task: asyncio.Task[None] | None = None

    @property
    def originator(self) -> Originator:
        return self.listener

    def start(self) -> None:
        warn_without_safety_net(self.settings)
        self._task = asyncio.create_task(self.listener.run(), name="ami-listener")

    async def stop(self) -> ListenerStats:
        await self.listener.stop()
        if self._task is not None:
            await self._task
        return self.listener.stats


async def run_ami_listener(settings: Settings, stop: asyncio.Event) -> None:
    """Companion for ``privnum serve``: run until ``stop`` is set, then flush."""
    await listen(settings, stop)


async def listen(settings: Settings, stop: asyncio.Event) -> ListenerStats:
    db = Database(settings.database_url, timeout=settings.database.timeout_seconds)
    service = AmiService(settings, db)
    try:
        service.start()
        await stop.wait()
        stats = await service.stop()
        log.info("AMI listener stopped: %s", stats)
        return stats
    finally:
        await db.dispose()


async def listen_until_signal(settings: Settings) -> ListenerStats:
    """``privnum ami listen``: until SIGTERM/SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        return await listen(settings, stop)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)

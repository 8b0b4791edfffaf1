"""Export jobs the auditors start from the console: each streams the window's records to a
file with its manifest (the same writer as ``privnum cdr export``), then checks the call
log's chain. Held by the app (one per process); the files stay in the export directory."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from api.console.options import ExportWriter
from routing.call_log_views import ExportRow
from routing.console_views import ChainCheck
from routing.errors import PrivnumError

log = logging.getLogger("privnum.console")
FORMATS = ("csv", "jsonl")


class JobState(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass
class ExportJob:
    id: str
    since: datetime
    until: datetime
    shop_id: str | None
    fmt: str
    started_at: datetime
    by: str
    path: Path
    state: JobState = JobState.RUNNING
    rows: int = 0
    manifest: dict[str, Any] = field(default_factory=dict)
    chain: ChainCheck | None = None
    error: str = ""

    @property
    def manifest_path(self) -> Path:
        return self.path.with_name(self.path.name + ".manifest.json")


class ExportJobs:
    def __init__(self, directory: Path, writer: ExportWriter) -> None:
        self._dir = directory
        self._writer = writer
        self._jobs: dict[str, ExportJob] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def all(self) -> list[ExportJob]:
        return sorted(self._jobs.values(), key=lambda j: j.started_at, reverse=True)

    def get(self, job_id: str) -> ExportJob | None:
        return self._jobs.get(job_id)

    def start(self, *, rows: Callable[[], AsyncIterator[ExportRow]],
              verify: Callable[[], Awaitable[ChainCheck]], since: datetime,
              until: datetime, shop_id: str | None, fmt: str,
              now: datetime, by: str) -> ExportJob:
        """Start writing ``rows()`` (the auditor's export stream, its access already
        checked) in the background; ``verify`` checks the chain afterwards."""
        source = rows()  # refuses (access) before anything is written or listed
        self._dir.mkdir(parents=True, exist_ok=True)
        job_id = secrets.token_hex(8)
        name = f"privnum-cdr-{since:%Y%m%dT%H%M}-{until:%Y%m%dT%H%M}-{job_id}.{fmt}"
        job = ExportJob(id=job_id, since=since, until=until, shop_id=shop_id, fmt=fmt,
                        started_at=now, by=by, path=self._dir / name)
        self._jobs[job_id] = job
        task = asyncio.create_task(self._run(job, source, verify), name=f"export-{job_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    async def _run(self, job: ExportJob, rows: AsyncIterator[ExportRow],
                   verify: Callable[[], Awaitable[ChainCheck]]) -> None:
        def progress(n: int) -> None:
            job.rows = n

        try:
            job.manifest = await self._writer(rows, job.path, job.fmt, job.since, job.until,
                                              job.shop_id, progress)
            job.rows = int(job.manifest.get("rows", job.rows))
            job.chain = await verify()
            job.state = JobState.DONE
        except PrivnumError as exc:
            job.state, job.error = JobState.FAILED, str(exc)
        except OSError as exc:
            log.warning("console export %s failed: %s", job.id, exc)
            job.state = JobState.FAILED
            job.error = f"the export file could not be written: {exc.strerror}"

    async def aclose(self) -> None:
        """Cancel the exports still running (their partial files are removed)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


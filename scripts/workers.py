"""``privnum serve --workers N``: N call-path processes on one FastAGI port.

The parent (``scripts.front_doors.serve``) keeps the HTTP API, the AMI listener and the other
background services, and runs one :class:`WorkerProcess` service per worker in its
:class:`~scripts.lifecycle.Lifecycle`, so SIGTERM drains every worker's calls before the
parent's stores close. A worker is ``python -m scripts.workers``: it reads the parent's
settings (JSON) on stdin, builds its own container (one database engine, one Redis client),
its own call path, attempt writer and index healer, and serves FastAGI with ``SO_REUSEPORT``:
the kernel spreads the connections over the workers. It says ``READY`` on stdout once it
listens, or ``FAILED <reason>`` (then the parent stops with that reason).

A lock file next to the data (``agi-<port>.lock``) keeps a second ``privnum serve`` from
joining the same port unnoticed, which ``SO_REUSEPORT`` alone would allow.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING

from routing.errors import StoreUnavailable

if TYPE_CHECKING:
    from scripts.settings import Settings

log = logging.getLogger("privnum.serve")

READY = "READY"
FAILED = "FAILED"
_START_TIMEOUT = 120.0  # a worker opening its stores on a slow machine
_KILL_AFTER = 10.0  # seconds past the drain grace before a worker is killed


def worker_count(requested: int | None, database_url: str) -> int:
    """``--workers`` / ``agi.workers``, or the default: every core on a server database; one
    process on SQLite, which serialises writers anyway."""
    if requested is not None:
        return max(1, requested)
    if database_url.startswith("sqlite"):
        return 1
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
               else (os.cpu_count() or 1))


class PortLock:
    """An exclusive lock on ``agi-<port>.lock`` for as long as the workers serve the port."""

    name = "agi-port-lock"

    def __init__(self, data_dir: Path, port: int) -> None:
        self._path = data_dir / f"agi-{port}.lock"
        self._port = port
        self._file: IO[str] | None = None

    async def startup(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        handle = self._path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise StoreUnavailable(
                f"FastAGI port {self._port} is already served by another privnum "
                f"(lock {self._path})") from None
        self._file = handle

    async def ended(self) -> None:
        await asyncio.Event().wait()

    async def shutdown(self) -> None:
        if self._file is not None:
            self._file.close()  # closing releases the lock
            self._file = None


class WorkerProcess:
    """One call-path worker as a lifecycle service."""

    def __init__(self, number: int, settings_json: str, *, grace: float) -> None:
        self.name = f"agi-worker-{number}"
        self._settings_json = settings_json
        self._grace = grace
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def startup(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "scripts.agi_worker", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, start_new_session=False)
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(self._settings_json.encode())
        await self._proc.stdin.drain()
        self._proc.stdin.close()
        try:
            async with asyncio.timeout(_START_TIMEOUT):
                line = (await self._proc.stdout.readline()).decode(errors="replace").strip()
        except TimeoutError:
            line = ""
        if line == READY:
            log.info("%s (pid %d) serving calls", self.name, self._proc.pid)
            return
        await self._stop()
        reason = line.removeprefix(FAILED).strip() or (
            f"exited with status {self._proc.returncode}")
        raise StoreUnavailable(f"{self.name} did not start: {reason}")

    async def ended(self) -> None:
        assert self._proc is not None
        code = await self._proc.wait()
        raise StoreUnavailable(f"{self.name} (pid {self._proc.pid}) exited with status {code}")

    async def shutdown(self) -> None:
        await self._stop()

    async def _stop(self) -> None:
        """SIGTERM (the worker drains its calls), then wait; kill only past the grace."""
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(self._grace + _KILL_AFTER):
                await proc.wait()
        except TimeoutError:
            log.error("%s did not stop within %gs; killing it", self.name,
                      self._grace + _KILL_AFTER)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        if proc.returncode not in (0, -signal.SIGTERM):
            log.warning("%s exited with status %s", self.name, proc.returncode)


def settings_json(settings: Settings) -> str:
    """What a worker needs to rebuild the parent's settings exactly."""
    return settings.model_dump_json()


class Announce:
    """Last of the parent's services: says the call path is up once every worker listens."""

    name = "announce"

    def __init__(self, line: str) -> None:
        self._line = line

    async def startup(self) -> None:
        log.info("%s", self._line)

    async def ended(self) -> None:
        await asyncio.Event().wait()

    async def shutdown(self) -> None:
        return None

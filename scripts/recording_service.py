"""Recording with notice in ``privnum serve``: the call log's writer claims the recordings its
call records name and has them encrypted as soon as Asterisk has closed the file
(:class:`RecordingSink`); a background task sweeps what a crash left (once at start-up, then
every ``recordings.sweep_seconds``) and purges recordings past their retention."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import datetime

from binding_store.recordings import RecordingVault
from routing.cdr import CdrEvent
from routing.cdr_ports import CdrSink
from routing.errors import PrivnumError
from scripts.clock import utc_now
from scripts.lifecycle import Task

log = logging.getLogger("privnum.recordings")
DRAIN_SECONDS = 10.0


class RecordingSink:
    """A ``CdrSink`` that stores the records first (the call log is the record of the call),
    then claims their recordings and encrypts each in the background. A claim that fails
    leaves the file to the sweep, never in plaintext for ever."""

    def __init__(self, inner: CdrSink, vault: RecordingVault) -> None:
        self._inner = inner
        self._vault = vault
        self._tasks: set[asyncio.Task[None]] = set()

    async def write_batch(self, events: Sequence[CdrEvent], source: str = "ami") -> int:
        stored = await self._inner.write_batch(events, source)
        if any(e.pn_recording for e in events):
            try:
                claimed = await self._vault.claim(events, utc_now())
            except PrivnumError as exc:
                log.warning("recordings of %d call record(s) not claimed (the sweep will "
                            "handle them): %s", len(events), exc)
                claimed = []
            for rid in claimed:
                task = asyncio.create_task(self._finish(rid), name=f"recording-{rid}")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        return stored

    async def close_orphans(self, now: datetime, grace_seconds: float) -> int:
        return await self._inner.close_orphans(now, grace_seconds)

    async def _finish(self, recording_id: str) -> None:
        try:
            await self._vault.wait_settled(recording_id)
            await self._vault.finish(recording_id, utc_now())
        except PrivnumError as exc:
            log.warning("recording %s not finished yet (the sweep retries): %s",
                        recording_id, exc)

    async def drain(self) -> None:
        """Let the encryptions under way end (at shutdown, for at most ``DRAIN_SECONDS``);
        what is left, the sweep finishes at the next start."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=DRAIN_SECONDS)


async def keep_recordings(vault: RecordingVault, interval: float, stopping: asyncio.Event
                          ) -> None:
    """Until ``stopping``: sweep stale plaintext and purge recordings past retention, at once
    and then every ``interval`` seconds."""
    while not stopping.is_set():
        try:
            now = utc_now()
            swept = await vault.sweep(now)
            purged = await vault.purge(now)
            if swept or purged:
                log.info("recordings: %d plaintext file(s) swept, %d purged", swept, purged)
        except PrivnumError as exc:
            log.warning("recording upkeep failed (retried in %g s): %s", interval, exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), interval)


def recording_upkeep(vault: RecordingVault, sink: RecordingSink | None, interval: float
                     ) -> Task:
    stopping = asyncio.Event()

    async def stop() -> None:
        stopping.set()
        if sink is not None:
            await sink.drain()

    return Task("recordings", lambda: keep_recordings(vault, interval, stopping), stop)

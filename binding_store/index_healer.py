"""Keeps the Redis hot index trustworthy without anyone running ``privnum index rebuild``.

Every ``interval`` seconds (and at once when a look-up finds the index behind or lost) it reads
the index's watermark, then SQL's (in that order: the index's copy is raised only after a SQL
commit, so read this way it can never legitimately be ahead), and tells the call path the
highest committed watermark. Then:

- current (index = SQL): nothing to do;
- lost (no watermark in Redis: never built, flushed, lost its data): rebuild now;
- behind (index < SQL) and not catching up for longer than one interval (a writer reports
  its change right after its commit, so a lag that lasts means the index is older than SQL:
  a restored snapshot, a lagging replica after a failover, or a writer that lost Redis after
  its commit): rebuild;
- ahead (index > SQL: SQL went back, e.g. restored from a backup): rebuild, forced.

While the index is not current the call path reads SQL; the fast path comes back when the
rebuild sets the watermark. One rebuild at a time per process; a failed one is retried with
back-off. Each episode is logged once, the rebuild's progress every few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from binding_store.db import Database
from binding_store.index_rebuild import RebuildReport, rebuild_index
from binding_store.redis_index import RedisIndex
from binding_store.watermark import read as read_watermark
from routing.errors import PrivnumError, StoreUnavailable

log = logging.getLogger(__name__)
_PROGRESS_EVERY = 2.0  # seconds between progress lines


class Freshness(StrEnum):
    CURRENT = "current"
    BEHIND = "behind"
    LOST = "lost"
    AHEAD = "ahead"


def judge(index_watermark: int | None, sql_watermark: int) -> Freshness:
    if index_watermark is None:
        return Freshness.LOST
    if index_watermark < sql_watermark:
        return Freshness.BEHIND
    if index_watermark > sql_watermark:
        return Freshness.AHEAD
    return Freshness.CURRENT


@dataclass
class HealerStats:
    checks: int = 0
    rebuilds: int = 0
    failures: int = 0
    last_rebuild_seconds: float | None = None
    last_report: RebuildReport | None = None


class IndexHealer:
    """``start()`` it next to the call path and ``close()`` it on shutdown."""

    def __init__(self, index: RedisIndex, database: Database, *, clock: Callable[[], datetime],
                 interval: float = 1.0, batch: int = 500, max_backoff: float = 30.0,
                 observe: Callable[[str], None] | None = None) -> None:
        self._index = index
        self._db = database
        self._clock = clock
        self.interval = interval
        self._batch = batch
        self._max_backoff = max_backoff
        self._observe = observe or (lambda _event: None)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._behind_since: float | None = None
        self._behind_at = -1  # the index's watermark when it was first seen behind
        self._episode: Freshness | None = None  # what was last reported as wrong
        self._check_failed = False
        self._failures_in_a_row = 0
        self._grace_left = 0.0
        self.stats = HealerStats()
        self.freshness: Freshness | None = None
        self.index_watermark: int | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="privnum-index-healer")

    async def close(self) -> None:
        """Stop (a rebuild in progress is abandoned: the index stays visibly behind and the
        next start rebuilds it)."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    def poke(self) -> None:
        """A look-up found the index behind or lost: check now rather than at the next tick."""
        self._wake.set()

    async def check(self) -> Freshness:
        """Compare the index's watermark with SQL's once; teach the call path SQL's."""
        index_watermark = await self._index.read_watermark()  # Redis first: see module notes
        sql_watermark = await read_watermark(self._db)
        self._index.known.learn(sql_watermark)
        self.stats.checks += 1
        freshness = judge(index_watermark, sql_watermark)
        self.freshness = freshness
        self.index_watermark = index_watermark
        if freshness is not Freshness.CURRENT and self._episode is None:
            self._episode = freshness
            self._observe(freshness.value)
            log.warning("Redis index %s (index watermark %s, SQL %d): calls read SQL until "
                        "it is rebuilt, which starts by itself", _describe(freshness),
                        "none" if index_watermark is None else index_watermark, sql_watermark)
        if freshness is Freshness.CURRENT and self._episode is not None:
            self._episode = None
        return freshness

    async def run_once(self) -> Freshness:
        """One check and, when due, one rebuild (the loop's body; tests drive it directly)."""
        freshness = await self.check()
        if freshness is Freshness.BEHIND:
            now = time.monotonic()
            mark = self.index_watermark if self.index_watermark is not None else -1
            if self._behind_since is None or mark > self._behind_at:
                self._behind_since, self._behind_at = now, mark  # new, or catching up
            if now - self._behind_since < self.interval:
                # May be a writer between its commit and its Redis update: look again when
                # the grace is over (pokes meanwhile would only repeat this check).
                self._grace_left = self.interval - (now - self._behind_since)
                return freshness
        else:
            self._behind_since = None
        if freshness is not Freshness.CURRENT:
            await self._rebuild(force=freshness is Freshness.AHEAD)
            self._behind_since = None
            freshness = await self.check()
        return freshness

    async def _run(self) -> None:
        while True:
            delay = self.interval
            self._grace_left = 0.0
            try:
                await self.run_once()
                self._failures_in_a_row = 0
                self._check_failed = False
            except PrivnumError as exc:
                self._failures_in_a_row += 1
                delay = min(self._max_backoff, self.interval * 2 ** self._failures_in_a_row)
                if not self._check_failed:
                    log.warning("Redis index check or rebuild failed (%s); retrying every "
                                "%g s at most", exc, self._max_backoff)
                self._check_failed = True
            except Exception as exc:  # a bug must not stop the service: log, back off, retry
                self._failures_in_a_row += 1
                delay = self._max_backoff
                log.error("Redis index healer failed: %s", type(exc).__name__)
            if self._grace_left > 0:
                await asyncio.sleep(self._grace_left)
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    async def _rebuild(self, *, force: bool) -> None:
        started = time.monotonic()
        last_line = [started]

        def progress(stage: str, done: int, total: int) -> None:
            now = time.monotonic()
            if now - last_line[0] >= _PROGRESS_EVERY:
                last_line[0] = now
                log.info("Redis index rebuild: %s %d/%d", stage, done, total)

        log.info("Redis index rebuild started%s", " (forced)" if force else "")
        try:
            report = await rebuild_index(self._index, self._db, now=self._clock(),
                                         progress=progress, batch=self._batch, force=force)
        except StoreUnavailable:
            self.stats.failures += 1
            self._observe("rebuild_failed")
            raise
        elapsed = time.monotonic() - started
        self.stats.rebuilds += 1
        self.stats.last_rebuild_seconds = elapsed
        self.stats.last_report = report
        self._observe("rebuilt")
        log.info("Redis index rebuilt in %.2f s at watermark %d: %d active bindings, %d shops, "
                 "%d caller numbers, %d stale keys removed; calls use Redis again", elapsed,
                 report.watermark, report.bindings, report.shops, report.callers,
                 report.removed)


def _describe(freshness: Freshness) -> str:
    return {
        Freshness.LOST: "has no watermark (never built, flushed or lost its data)",
        Freshness.BEHIND: "is older than SQL (restored snapshot or lagging replica?)",
        Freshness.AHEAD: "is newer than SQL (was SQL restored from a backup?)",
        Freshness.CURRENT: "is current",
    }[freshness]

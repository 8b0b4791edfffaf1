"""What committed binding changes tell the Redis hot index.

SQL is the record; the index is written after the commit, best effort. The call path trusts
a current index's "nothing here", so an entry that could not be written marks the index
behind SQL (the watermark), and the call path reads SQL until the index is rebuilt.
"""

from __future__ import annotations

import logging
from datetime import datetime

from binding_store import watermark
from binding_store.db import Database
from binding_store.group_commit import Coalescer
from binding_store.redis_index import IndexEntry, RedisIndex
from routing.errors import StoreUnavailable

log = logging.getLogger(__name__)


class IndexPublisher:
    """Index entries of new and ending bindings; does nothing without an index."""

    def __init__(self, database: Database, index: RedisIndex | None) -> None:
        self._db = database
        self._index = index
        # Entries of bindings issued together go to Redis in one call.
        self._together: Coalescer[tuple[IndexEntry, datetime], None] | None = None
        if index is not None:
            self._together = Coalescer(self._put, max_batch=64, max_inflight=1)

    async def created(self, entry: IndexEntry, now: datetime) -> None:
        """After the commit: a new binding's keys, sent with others being sent meanwhile."""
        if self._together is None:
            return
        try:
            await self._together.submit((entry, now))
        except StoreUnavailable as exc:
            await self._missed(entry.binding_id, exc)

    async def ended(self, entry: IndexEntry, *, now: datetime, strict: bool,
                    version: int = 0) -> None:
        """Delete an ending binding's keys, leave its tombstone. Strict (before the commit):
        a Redis fault aborts the change. After it, with the change's watermark: should that
        fail, the index stays behind SQL, which the call path notices."""
        if self._index is None:
            return
        try:
            await self._index.forget(entry, now=now, watermark=version)
        except StoreUnavailable as exc:
            if strict:
                raise StoreUnavailable(f"cannot update the Redis index ({exc}); retry") from exc
            self._index.known.learn(version)
            log.warning("binding %s: Redis index not updated after commit (%s)",
                        entry.binding_id, exc)

    async def _put(self, batch: list[tuple[IndexEntry, datetime]]) -> list[None]:
        assert self._index is not None
        await self._index.put([entry for entry, _ in batch], now=max(now for _, now in batch))
        return [None] * len(batch)

    async def _missed(self, binding_id: str, exc: StoreUnavailable) -> None:
        """A committed binding Redis did not take: mark the index behind SQL."""
        assert self._index is not None
        log.warning("binding %s committed but not indexed in Redis (%s); the call path "
                    "reads SQL until the index is rebuilt", binding_id, exc)
        try:
            await watermark.invalidate(self._db, self._index.known)
        except StoreUnavailable as again:
            log.error("binding %s: neither Redis nor SQL took the index change (%s); "
                      "calls on it may be refused until 'privnum index rebuild'",
                      binding_id, again)

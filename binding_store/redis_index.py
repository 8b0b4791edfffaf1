"""The Redis hot index: what the call path reads first. SQL stays the system of record.

Keys (all under ``{p}`` = ``prefix:{prefix}``: one Redis Cluster hash tag for the whole index,
so every script, the call path's included, touches one slot):

- ``{p}:ax:{A}:{X}`` and ``{p}:bx:{B-blind-index}:{X}``: one binding each, as JSON
  (binding id, shop, order, A, X, blind index, B's *ciphertext* in base64, expiry in epoch ms),
  living for the binding's validity plus ``keep_ended`` seconds (the look-back in which a
  reject still says "expired"). A plaintext buyer number is never written. A binding that
  ends stays as a marker: ``"held": 1`` while its end is being committed (the call path reads
  SQL), ``"end": 1`` once it is; past its expiry it is a marker by itself.
- ``{p}:pool``: the set of pool numbers, so a call to a number outside it is answered here.
- ``{p}:gone:{binding id}``: tombstone of a binding that ended before its expiry; no write of
  that binding's keys lands while it exists (a late put cannot bring the binding back).
- ``{p}:shop:{shop}``: ``{"v": watermark, "s": service state, "m": main caller number}``.
- ``{p}:caller:{shop}:{A}``: ``{"v": watermark, "s": status}`` (``removed`` once deleted).
- ``{p}:index:watermark``: the SQL watermark (``binding_store.watermark``) the index reflects.
  Missing means the index was never built or has lost its data.
- ``{p}:index:rebuild``: the token of a rebuild in progress.

Who writes what: the binding store deletes an ending binding's keys (and leaves its tombstone)
before its SQL commit, so a Redis fault aborts the change, and again after the commit,
reporting the change's watermark; new bindings are written after their commit, and if that
write fails the store raises SQL's watermark (``binding_store.watermark.invalidate``), so the
call path, which trusts the index's "nothing here" only while it is current, reads SQL until
the index is rebuilt. The shop and
caller repositories mark the states a change takes away as unknown at the change's watermark
before the commit (``{"v": n}``: the call path reads SQL, no older seed can restore them) and
write the new states after it, reporting the watermark. The call path seeds what it read from
SQL when the index is current. State keys live ``state_ttl`` seconds (a missing one only sends
the call to SQL).
``binding_store.index_rebuild`` restores everything; ``binding_store.index_healer`` runs it by
itself when the index is behind SQL or lost.

Every call is bounded by ``timeout``; Redis faults become ``StoreUnavailable``
(``binding_store.redis_edge``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.sentinel import Sentinel
from redis.exceptions import RedisError

from binding_store import redis_scripts
from binding_store.index_keys import IndexKeys
from binding_store.index_values import (
    IndexedPair,
    IndexEntry,
    ShopState,
    caller_status_of,
    caller_value,
    entry_of,
    held_value,
    lifetime_ms,
    ms,
    shop_state_of,
    shop_value,
    text_of,
    watermark_of,
)
from binding_store.redis_edge import RedisEdge, sentinel_master, url_client
from binding_store.redis_lean import LeanRedis
from binding_store.watermark import KnownWatermark
from routing.errors import StoreUnavailable

log = logging.getLogger(__name__)

DEFAULT_STATE_TTL = 300
DEFAULT_KEEP_ENDED = 7 * 86_400
__all__ = ["IndexEntry", "IndexedPair", "RedisIndex", "ShopState"]


class RedisIndex(IndexKeys, RedisEdge):
    def __init__(self, client: Redis, *, prefix: str, timeout: float,
                 state_ttl: int = DEFAULT_STATE_TTL,
                 watermark: KnownWatermark | None = None,
                 sentinel: Sentinel | None = None,
                 keep_ended: int = DEFAULT_KEEP_ENDED, lean: LeanRedis | None = None) -> None:
        IndexKeys.__init__(self, prefix)
        RedisEdge.__init__(self, client, timeout=timeout, sentinel=sentinel, lean=lean)
        self.keep_ended_ms = keep_ended * 1000
        self.state_ttl = state_ttl
        # The highest SQL watermark this process knows; writers raise it after their commits.
        self.known = watermark or KnownWatermark()
        self._lookup_script = client.register_script(redis_scripts.LOOKUP)
        self._put_script = client.register_script(redis_scripts.PUT)
        self._forget_script = client.register_script(redis_scripts.FORGET)
        self._states_script = client.register_script(redis_scripts.STATES)
        self._finish_script = client.register_script(redis_scripts.FINISH)
        self._pool_script = client.register_script(redis_scripts.POOL_ADD)
        self._ended_script = client.register_script(redis_scripts.PUT_ENDED)

    @classmethod
    def from_url(cls, url: str, *, prefix: str, timeout: float,
                 state_ttl: int = DEFAULT_STATE_TTL,
                 keep_ended: int = DEFAULT_KEEP_ENDED) -> RedisIndex:
        return cls(url_client(url, timeout), prefix=prefix, timeout=timeout, state_ttl=state_ttl,
                   keep_ended=keep_ended, lean=LeanRedis.from_url(url, connect_timeout=timeout))

    @classmethod
    def from_sentinel(cls, sentinels: Sequence[tuple[str, int]], service_name: str, *,
                      prefix: str, timeout: float, state_ttl: int = DEFAULT_STATE_TTL,
                      keep_ended: int = DEFAULT_KEEP_ENDED, **connection: Any) -> RedisIndex:
        """The master of ``service_name`` as the Sentinels name it. Each new connection asks
        them where the master is; after a failover the connections to the old master fail
        (refused, or ``READONLY`` once it is back as a replica: redis-py then drops it), so
        the next command connects to the promoted one. ``connection``: ``db``, ``username``,
        ``password``, ``ssl`` of the data connections."""
        sentinel, client = sentinel_master(sentinels, service_name, timeout, **connection)
        # No lean connection here: it would not follow the master the Sentinels name.
        return cls(client, prefix=prefix, timeout=timeout, state_ttl=state_ttl,
                   sentinel=sentinel, keep_ended=keep_ended)

    # -- the call path --------------------------------------------------------------------
    async def lookup(self, caller: str, caller_bidx: str, virtual_x: str, *,
                     bounded: bool = True) -> IndexedPair:
        """(caller as A, X) and (caller as B, X) with their states, the index's watermark and
        whether X is in the pool: one round trip. ``bounded=False``: no timer of its own (the
        caller's deadline bounds it)."""
        keys = [self.ax_key(caller, virtual_x), self.bx_key(caller_bidx, virtual_x),
                self.watermark_key, self.pool_key]

        lean = self._lean
        script = self._lookup_script
        raw: list[Any]
        if lean is not None and not bounded:
            # The call path's case, without _call's wrapper coroutines (two frames fewer to
            # suspend and resume through): the same translation of faults, inline.
            try:
                raw = list(await lean.run_script(script.sha, redis_scripts.LOOKUP, keys,
                                                  [self.base, virtual_x]))
            except (RedisError, OSError) as exc:  # OSError includes TimeoutError
                raise self._unavailable(exc) from exc
        else:
            async def work() -> list[Any]:
                return list(await self._script(script, redis_scripts.LOOKUP, keys,
                                               [self.base, virtual_x]))

            raw = await self._call(work, bounded=bounded)
        (ax_raw, bx_raw, ax_shop, ax_caller, bx_shop, bx_caller, mark,
         in_pool) = (raw + [None] * 8)[:8]
        return IndexedPair(
            ax=entry_of(ax_raw), ax_shop=shop_state_of(text_of(ax_shop)),
            ax_caller=caller_status_of(text_of(ax_caller)),
            bx=entry_of(bx_raw), bx_shop=shop_state_of(text_of(bx_shop)),
            bx_caller=caller_status_of(text_of(bx_caller)),
            watermark=watermark_of(mark), in_pool=in_pool == 1)

    async def read_watermark(self) -> int | None:
        return watermark_of(await self._call(lambda: self._redis.get(self.watermark_key)))

    # -- bindings -------------------------------------------------------------------------
    async def put(self, entries: Sequence[IndexEntry], *, now: datetime) -> int:
        """Write the (A, X) and (B, X) keys of live bindings, each living until its expiry
        (counted from ``now``), except those with a tombstone. How many were written."""
        keys, args = self._put_args(entries, now)
        if not keys:
            return 0

        async def work() -> int:
            return int(await self._script(self._put_script, redis_scripts.PUT, keys, args))

        return await self._call(work)

    def _put_args(self, entries: Sequence[IndexEntry], now: datetime
                  ) -> tuple[list[str], list[str | int]]:
        keys: list[str] = []
        args: list[str | int] = []
        for e in entries:
            if e.expires_at <= now:
                continue
            keys += [self.ax_key(e.caller_a, e.virtual_x), self.bx_key(e.buyer_bidx, e.virtual_x),
                     self.tombstone_key(e.binding_id)]
            args += [e.dumps(), lifetime_ms(e.expires_at, now) + self.keep_ended_ms]
        return keys, args

    async def put_ended(self, entries: Sequence[IndexEntry], *, now: datetime) -> int:
        """Markers for bindings that ended within ``keep_ended`` (a rebuild's), where their
        keys are free or hold them still. How many keys were written."""
        keys: list[str] = []
        args: list[str | int] = []
        for e in entries:
            left = ms(e.expires_at) - ms(now) + self.keep_ended_ms
            if left <= 0:
                continue
            keys += [self.ax_key(e.caller_a, e.virtual_x), self.bx_key(e.buyer_bidx, e.virtual_x)]
            args += [e.binding_id, e.dumps(ended=True), left]
        if not keys:
            return 0
        return int(await self._call(lambda: self._ended_script(keys=keys, args=args)))

    # -- the pool -------------------------------------------------------------------------
    async def add_pool(self, numbers: Sequence[str]) -> int:
        """Numbers join the pool's set; how many were new."""
        if not numbers:
            return 0
        args = list(numbers)
        return int(await self._call(lambda: self._pool_script(keys=[self.pool_key], args=args)))

    async def drop_pool(self) -> None:
        """Forget the pool's set (a forced rebuild from another history writes it anew)."""
        await self._call(lambda: self._redis.delete(self.pool_key))

    async def forget(self, entry: IndexEntry, *, now: datetime, watermark: int = 0) -> None:
        """A binding ends: delete its keys (where they still hold it), leave its tombstone
        and, with ``watermark`` (after the SQL commit), raise the index's watermark to it."""
        keys = [self.ax_key(entry.caller_a, entry.virtual_x),
                self.bx_key(entry.buyer_bidx, entry.virtual_x),
                self.tombstone_key(entry.binding_id), self.watermark_key, self.applied_key]
        args: list[str | int] = [entry.binding_id, lifetime_ms(entry.expires_at, now), watermark]
        await self._call(lambda: self._forget_script(keys=keys, args=args))
        if watermark:
            self.known.learn(watermark)

    # -- shop and caller states -------------------------------------------------------------
    async def drop_states(self, shop_ids: Sequence[str] = (),
                          callers: Sequence[tuple[str, str]] = ()) -> None:
        """Forget states (the call path reads SQL for them until they are written again)."""
        keys = [self.shop_key(s) for s in shop_ids] + [self.caller_key(s, n) for s, n in callers]
        if keys:
            await self._call(lambda: self._redis.delete(*keys))

    async def hold_states(self, version: int, *, shop_ids: Sequence[str] = (),
                          callers: Sequence[tuple[str, str]] = ()) -> None:
        """Before committing change ``version`` that takes a right away: mark the states it
        changes as unknown, at that version. The call path reads SQL for them, and no seed
        that read SQL before the change can put the old state back."""
        keys = [self.watermark_key, self.applied_key]
        keys += [self.shop_key(s) for s in shop_ids] + [self.caller_key(s, n) for s, n in callers]
        args: list[str | int] = [self.state_ttl, 0, "0", version,
                                 *[held_value(version)] * (len(keys) - 2)]
        if len(keys) > 2:
            await self._call(lambda: self._states_script(keys=keys, args=args))

    async def write_states(self, version: int, *,
                           shops: Sequence[tuple[str, ShopState]] = (),
                           callers: Sequence[tuple[str, str, str | None]] = (),
                           raise_watermark: bool = False, force: bool = False) -> int:
        """Write states true at watermark ``version`` (a caller status ``None`` is removed);
        none replaces a state true at a later watermark unless ``force``. With
        ``raise_watermark`` (a committed change), also raise the index's watermark."""
        keys, args = self._state_args(version, shops, callers, raise_watermark, force)
        if len(keys) == 2 and not raise_watermark:
            return 0

        async def work() -> int:
            return int(await self._states_script(keys=keys, args=args))

        written = await self._call(work)
        if raise_watermark:
            self.known.learn(version)
        return written

    def _state_args(self, version: int, shops: Sequence[tuple[str, ShopState]],
                    callers: Sequence[tuple[str, str, str | None]], raise_watermark: bool,
                    force: bool) -> tuple[list[str], list[str | int]]:
        keys = [self.watermark_key, self.applied_key]
        values: list[str | int] = []
        for shop_id, shop in shops:
            keys.append(self.shop_key(shop_id))
            values.append(shop_value(version, shop))
        for shop_id, number, status in callers:
            keys.append(self.caller_key(shop_id, number))
            values.append(caller_value(version, status))
        return keys, [self.state_ttl, version if raise_watermark else 0, "1" if force else "0",
                      version, *values]

    async def seed(self, version: int, entries: Sequence[IndexEntry], *, now: datetime,
                   shops: Sequence[tuple[str, ShopState]],
                   callers: Sequence[tuple[str, str, str | None]]) -> None:
        """After a SQL read on a current index: what it found (bindings and states, true at
        ``version``), in one round trip."""
        put_keys, put_args = self._put_args(entries, now)
        state_keys, state_args = self._state_args(version, shops, callers, False, False)

        async def work() -> None:
            pipe = self._redis.pipeline(transaction=False)
            if put_keys:
                await self._put_script(keys=put_keys, args=put_args, client=pipe)
            if len(state_keys) > 2:
                await self._states_script(keys=state_keys, args=state_args, client=pipe)
            await pipe.execute()

        if put_keys or len(state_keys) > 2:
            await self._call(work)

    # -- rebuild support ----------------------------------------------------------------------
    async def begin_rebuild(self, token: str, lifetime_seconds: int) -> None:
        await self._call(lambda: self._redis.set(self.rebuild_key, token, ex=lifetime_seconds))

    async def finish_rebuild(self, token: str, watermark: int, *, force: bool) -> int:
        """Set the watermark the rebuild is true at (never lower it, unless ``force``);
        -1 when Redis lost the rebuild's writes meanwhile (the token is gone)."""
        keys = [self.watermark_key, self.applied_key, self.rebuild_key]

        async def work() -> int:
            return int(await self._finish_script(
                keys=keys, args=[watermark, token, "1" if force else "0"]))

        return await self._call(work)

    async def scan(self, pattern: str) -> AsyncIterator[list[str]]:
        cursor = 0
        while True:
            async def work(at: int = cursor) -> tuple[int, list[Any]]:
                next_cursor, found = await self._redis.scan(cursor=at, match=pattern, count=1000)
                return int(next_cursor), list(found)

            cursor, found = await self._call(work)
            keys = [k.decode() if isinstance(k, bytes) else k for k in found]
            if keys:
                yield keys
            if cursor == 0:
                return

    async def mget(self, keys: Sequence[str]) -> list[Any]:
        async def work() -> list[Any]:
            return list(await self._redis.mget(keys))

        return await self._call(work)

    async def delete(self, keys: Sequence[str]) -> int:
        async def work() -> int:
            return int(await self._redis.delete(*keys))

        return await self._call(work)


async def publish_states(index: RedisIndex | None, version: int, *,
                         shops: Sequence[tuple[str, ShopState]] = (),
                         callers: Sequence[tuple[str, str, str | None]] = ()) -> None:
    """After a repository's commit at watermark ``version``: the new states and the new
    watermark. Best effort: if Redis cannot be reached the index stays behind SQL, which the
    call path notices (it reads SQL and the index is rebuilt)."""
    if index is None:
        return
    try:
        await index.write_states(version, shops=shops, callers=callers, raise_watermark=True)
    except StoreUnavailable as exc:
        index.known.learn(version)
        log.warning("state change at watermark %d not written to Redis (%s); the call path "
                    "reads SQL until the index is rebuilt", version, exc)


async def hold_states_strict(index: RedisIndex | None, version: int, *,
                             shop_ids: Sequence[str] = (),
                             callers: Sequence[tuple[str, str]] = ()) -> None:
    """Before committing a change that takes a right to call away: a Redis fault aborts it."""
    if index is None:
        return
    try:
        await index.hold_states(version, shop_ids=shop_ids, callers=callers)
    except StoreUnavailable as exc:
        raise StoreUnavailable(f"cannot update the Redis index ({exc}); retry") from exc

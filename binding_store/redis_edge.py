"""The Redis hot index's way to Redis, kept apart from what it reads and writes there.

A call must never wait on Redis longer than its deadline, the index must follow the master
through a Sentinel failover, and its callers handle one fault (``StoreUnavailable``), never a
redis-py exception: all of that is decided here, once, for every command of the index.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError, RedisError

from binding_store.redis_lean import LeanRedis
from routing.errors import StoreUnavailable

T = TypeVar("T")

log = logging.getLogger(__name__)


class _FollowingPool(SentinelConnectionPool):
    """Counts the master's changes of address, as new connections learn it."""

    switches = 0

    async def get_master_address(self) -> Any:
        before = self.master_address
        address = await super().get_master_address()  # type: ignore[no-untyped-call]
        if before is not None and address != before:
            self.switches += 1
            log.warning("Redis master moved from %s:%s to %s:%s (Sentinel failover)",
                        *before, *address)
        return address


def url_client(url: str, timeout: float) -> Redis:
    """A client of the Redis server at ``url``."""
    # Every index command is idempotent: one immediate retry on a dropped connection
    # (e.g. a pooled one from before a Redis restart) instead of a failed call.
    return Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                          retry=Retry(NoBackoff(), 1), retry_on_error=[ConnectionError])


def sentinel_master(sentinels: Sequence[tuple[str, int]], service_name: str, timeout: float,
                    /, **connection: Any) -> tuple[Sentinel, Redis]:
    """The Sentinels and a client of the master they name for ``service_name``, which
    follows that master (see ``RedisIndex.from_sentinel``)."""
    # Typed as Any: redis-py annotates Sentinel only from 8.2 on, and both must type-check.
    make_sentinel: Any = Sentinel
    sentinel = make_sentinel(list(sentinels), sentinel_kwargs={
        "socket_timeout": timeout, "socket_connect_timeout": timeout})
    client = sentinel.master_for(
        service_name, redis_class=Redis, connection_pool_class=_FollowingPool,
        socket_timeout=timeout,
        socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 1),
        retry_on_error=[ConnectionError], **connection)
    return sentinel, client


class RedisEdge:
    """The clients of one Redis (redis-py's, and the lean connection if any), their timeout,
    and the translation of their faults."""

    def __init__(self, client: Redis, *, timeout: float, sentinel: Sentinel | None = None,
                 lean: LeanRedis | None = None) -> None:
        self._redis = client
        self._sentinel = sentinel
        # The call path's look-up and the index entries of new bindings go over a lean
        # pipelined connection when there is one.
        self._lean = lean
        self.timeout = timeout

    @property
    def client(self) -> Redis:
        """The client, shared with whatever else keeps state in the same Redis."""
        return self._redis

    @property
    def switches(self) -> int:
        """How often the Sentinels' master changed under this client (0 without Sentinel):
        whoever compares it before and after a read knows the read may have gone to
        another Redis than the one before."""
        pool = self._redis.connection_pool
        return pool.switches if isinstance(pool, _FollowingPool) else 0

    @property
    def lean(self) -> LeanRedis | None:
        """The lean connection (the call path's look-ups, new bindings' entries), if any."""
        return self._lean

    async def close(self) -> None:
        if self._lean is not None:
            await self._lean.close()
        await self._redis.aclose()
        if self._sentinel is not None:
            await self._sentinel.aclose()

    async def _call(self, work: Callable[[], Awaitable[T]], *, bounded: bool = True) -> T:
        try:
            if not bounded:  # the caller's own deadline bounds it (the call path)
                return await work()
            async with asyncio.timeout(self.timeout):
                return await work()
        except (RedisError, OSError) as exc:  # OSError includes TimeoutError
            raise self._unavailable(exc) from exc

    async def _script(self, script: AsyncScript, source: str, keys: Sequence[str],
                      args: Sequence[str | int]) -> Any:
        """``script`` over the lean connection when there is one (redis-py's own call costs
        more than a short script), else through redis-py."""
        if self._lean is not None:
            return await self._lean.run_script(script.sha, source, keys, args)
        return await script(keys=keys, args=args)

    def _unavailable(self, exc: RedisError | OSError) -> StoreUnavailable:
        """A fault of Redis as the store's edge reports it."""
        if isinstance(exc, TimeoutError):
            return StoreUnavailable(f"Redis did not answer within {self.timeout:g} s")
        if isinstance(exc, RedisError):
            return StoreUnavailable(f"Redis unavailable: {type(exc).__name__}")
        return StoreUnavailable(f"Redis unavailable: {exc.strerror or exc}")

    async def ping(self) -> None:
        await self._call(self._redis.ping)

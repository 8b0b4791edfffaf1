"""Build the binding store, the Redis hot index and the call path's look-up from ``Settings``.

Database and keys come from ``scripts.wiring``; this module adds the binding store, the hot
index and the index's healer. No Redis configured (``redis.url`` unset) means ``None``:
look-ups read SQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from datetime import timedelta

from binding_store.bindings import BindingPolicy, BindingStore
from binding_store.crypto import BuyerCipher
from binding_store.db import Database
from binding_store.index_healer import IndexHealer
from binding_store.redis_index import RedisIndex
from binding_store.route_lookup import StoreRouteLookup
from routing.errors import ConfigurationError, StoreUnavailable
from scripts.settings import Settings
from scripts.wiring import utc_now


def redis_index(settings: Settings) -> RedisIndex | None:
    if not settings.redis.url:
        return None
    try:
        return RedisIndex.from_url(settings.redis.url, prefix=settings.redis.prefix,
                                   timeout=settings.redis.timeout_seconds)
    except ValueError as exc:
        raise ConfigurationError(f"invalid Redis URL: {exc}") from None


@asynccontextmanager
async def open_index(settings: Settings) -> AsyncIterator[RedisIndex | None]:
    """The hot index for one command (closed afterwards), or None without Redis."""
    index = redis_index(settings)
    try:
        yield index
    finally:
        if index is not None:
            with suppress(StoreUnavailable, OSError):
                await index.close()


def binding_policy(settings: Settings) -> BindingPolicy:
    return BindingPolicy(default_ttl=timedelta(seconds=settings.bindings.ttl_seconds),
                         cooldown=timedelta(seconds=settings.bindings.cooldown_seconds),
                         number_region=settings.bindings.default_region)


def binding_store(settings: Settings, database: Database, cipher: BuyerCipher,
                  index: RedisIndex | None) -> BindingStore:
    return BindingStore(database, cipher, policy=binding_policy(settings), index=index)


def route_lookup(settings: Settings, database: Database, cipher: BuyerCipher,
                 index: RedisIndex | None, healer: IndexHealer | None = None
                 ) -> StoreRouteLookup:
    """Both ``RouteLookup`` and ``AttemptRecorder`` for the call path; with a ``healer``, a
    look-up that finds the index behind or lost wakes it."""
    return StoreRouteLookup(
        database, cipher, index=index,
        lookback=timedelta(days=settings.bindings.expired_lookback_days),
        on_stale_index=healer.poke if healer is not None else None)


def index_healer(settings: Settings, database: Database, index: RedisIndex | None,
                 observe: Callable[[str], None] | None = None) -> IndexHealer | None:
    """The background check-and-rebuild of the hot index (``None`` without Redis)."""
    if index is None:
        return None
    return IndexHealer(index, database, clock=utc_now,
                       interval=settings.redis.check_interval_seconds,
                       batch=settings.redis.rebuild_batch, observe=observe)

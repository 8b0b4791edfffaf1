"""Wiring for the HTTP API: settings → stores → ``ApiServices`` → FastAPI app → uvicorn.

``run_api(settings, stop)`` is the companion ``privnum serve`` runs beside FastAGI, and what
``privnum api`` runs alone. uvicorn runs programmatically on a socket we bind ourselves (so a
busy port is one clear error), without its own signal handlers (the caller owns signals), and
shuts down gracefully when ``stop`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import uvicorn
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import distinct, func, select, text

from api.app import create_app
from api.metrics import Metrics
from api.services import ApiServices
from binding_store.accounts import AccountRepository
from binding_store.audit import AuditLog
from binding_store.bindings import BindingPolicy, BindingStore
from binding_store.callers import CallerRepository
from binding_store.db import Database
from binding_store.models import Binding, PoolNumber
from binding_store.pool import PoolRepository
from binding_store.redis_index import RedisIndex
from binding_store.reveal_counters import RedisRevealCounters, SqlRevealCounters
from binding_store.shops import ShopRepository
from binding_store.tokens import TokenStore
from routing.api_ports import CallOriginator, HealthStatus, RevealCounters
from routing.errors import StoreUnavailable
from routing.model import PoolState
from routing.risk import load_policy
from scripts import wiring
from scripts.settings import Settings

log = logging.getLogger("privnum.api")


# --- adapters ------------------------------------------------------------------------------------


class PoolAdapter:
    """``PoolPort`` over the pool repository plus one utilisation query."""

    def __init__(self, db: Database, pool: PoolRepository) -> None:
        self._db = db
        self._pool = pool

    async def is_virtual_number(self, number: str) -> bool:
        return await self._pool.is_virtual_number(number)

    async def utilisation(self, now: datetime) -> tuple[int, int]:
        in_service = select(func.count()).select_from(PoolNumber).where(
            PoolNumber.state == PoolState.AVAILABLE.value)
        in_use = select(func.count(distinct(Binding.virtual_x))).where(
            Binding.state == "active", Binding.expires_at > now)
        async with self._db.session() as session:
            total = int(await session.scalar(in_service) or 0)
            used = int(await session.scalar(in_use) or 0)
        return used, total


@dataclass
class DatabaseProbe:
    db: Database
    name: str = "database"
    required: bool = True

    async def check(self) -> HealthStatus:
        async with self.db.session() as session:
            await session.execute(text("SELECT 1"))
        return HealthStatus(name=self.name, ok=True, detail=self.db.dialect)


@dataclass
class RedisProbe:
    client: Redis[bytes]
    name: str = "redis"
    required: bool = False  # look-ups fall back to SQL: degraded, not down

    async def check(self) -> HealthStatus:
        try:
            await self.client.ping()
        except Exception as exc:  # redis raises its own ConnectionError family
            return HealthStatus(name=self.name, ok=False, detail=type(exc).__name__,
                                required=self.required)
        return HealthStatus(name=self.name, ok=True, required=self.required)


@dataclass
class DisabledProbe:
    name: str
    detail: str

    async def check(self) -> HealthStatus:
        return HealthStatus(name=self.name, ok=True, detail=self.detail, required=False)


# --- the stack -----------------------------------------------------------------------------------


@dataclass
class ApiStack:
    services: ApiServices
    database: Database
    redis: Redis[bytes] | None


def counters_for(settings: Settings, db: Database, client: Redis[bytes] | None) -> RevealCounters:
    if client is not None:
        return RedisRevealCounters(client, settings.redis.prefix,
                                   timeout=settings.redis.timeout_seconds)
    return SqlRevealCounters(db)


def build_services(settings: Settings, db: Database, *, redis: Redis[bytes] | None = None,
                   index: RedisIndex | None = None, metrics: Metrics | None = None,
                   originator: CallOriginator | None = None) -> ApiServices:
    """``ApiServices`` over the real stores (tests call this with their own database)."""
    cipher = wiring.buyer_cipher(settings)
    policy = BindingPolicy(default_ttl=_seconds(settings.bindings.ttl_seconds),
                           cooldown=_seconds(settings.bindings.cooldown_seconds),
                           number_region=settings.bindings.default_region)
    probes: list[DatabaseProbe | RedisProbe | DisabledProbe] = [DatabaseProbe(db)]
    probes.append(RedisProbe(redis) if redis is not None
                  else DisabledProbe("redis", "not configured"))
    if originator is None:
        probes.append(DisabledProbe("ami", "disabled" if not settings.ami.enabled
                                    else "not connected to this process"))
    return ApiServices(
        tokens=TokenStore(db),
        shops=ShopRepository(db),
        accounts=AccountRepository(db),
        callers=CallerRepository(db),
        bindings=BindingStore(db, cipher, policy=policy, index=index),
        pool=PoolAdapter(db, PoolRepository(db)),
        counters=counters_for(settings, db, redis),
        audit=AuditLog(db),
        call_log=None,
        originator=originator,
        health=tuple(probes),
        policy=load_policy(settings.risk_policy_file),
        metrics=metrics or Metrics(),
        clock=wiring.utc_now,
        default_region=settings.bindings.default_region,
        max_body_bytes=settings.api.max_body_bytes,
    )


def _seconds(value: int) -> timedelta:
    return timedelta(seconds=value)


@asynccontextmanager
async def api_stack(settings: Settings, metrics: Metrics | None = None
                    ) -> AsyncIterator[ApiStack]:
    db = wiring.database(settings)
    client: Redis[bytes] | None = None
    index: RedisIndex | None = None
    try:
        if settings.redis.url:
            timeout = settings.redis.timeout_seconds
            client = Redis.from_url(settings.redis.url, socket_timeout=timeout,
                                    socket_connect_timeout=timeout)
            index = RedisIndex(client, prefix=settings.redis.prefix, timeout=timeout)
        services = build_services(settings, db, redis=client, index=index, metrics=metrics)
        yield ApiStack(services=services, database=db, redis=client)
    finally:
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()  # type: ignore[attr-defined]
        await db.dispose()


# --- serving -------------------------------------------------------------------------------------


class EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handlers: whoever runs us decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind(host: str, port: int) -> socket.socket:
    try:
        return socket.create_server((host, port), reuse_port=False)
    except OSError as exc:
        raise StoreUnavailable(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


async def serve_app(app: FastAPI, sock: socket.socket, stop: asyncio.Event, *,
                    grace: float = 10.0, log_level: str = "warning") -> None:
    config = uvicorn.Config(app, lifespan="off", log_level=log_level.lower(),
                            timeout_graceful_shutdown=int(grace), access_log=False,
                            server_header=False)
    server = EmbeddedServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        server.should_exit = True
        stopper.cancel()
        try:
            await asyncio.wait_for(task, timeout=grace + 5)
        except TimeoutError:
            server.force_exit = True
            await asyncio.wait_for(task, timeout=5)


async def run_api(settings: Settings, stop: asyncio.Event) -> None:
    """The HTTP API until ``stop`` is set (the ``privnum serve`` companion)."""
    sock = bind(settings.api.host, settings.api.port)
    try:
        async with api_stack(settings) as stack:
            app = create_app(stack.services)
            log.info("privnum HTTP API on http://%s:%d", settings.api.host, settings.api.port)
            await serve_app(app, sock, stop, log_level=settings.log_level)
    finally:
        sock.close()

"""Wiring for the HTTP API: settings → stores → ``ApiServices`` → FastAPI app → uvicorn.

``run_api(settings, stop)`` is the companion ``privnum serve`` runs beside FastAGI, and what
``privnum api`` runs alone. uvicorn runs programmatically on a socket we bind ourselves (so a
busy port is one clear error), without its own signal handlers (the caller owns signals), and
shuts down gracefully when ``stop`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import logging
import socket
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import uvicorn
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import distinct, func, select, text

from agi import channel_vars as cv
from agi.ami_connection import AmiUnavailable
from agi.ami_listener import AmiListener
from api.app import create_app
from api.metrics import Metrics
from api.services import ApiServices
from binding_store.accounts import AccountRepository
from binding_store.audit import AuditLog
from binding_store.bindings import BindingPolicy, BindingStore
from binding_store.call_log_query import CallLogQuery, export_rows, list_calls
from binding_store.callers import CallerRepository
from binding_store.db import Database
from binding_store.models import Binding, PoolNumber
from binding_store.pool import PoolRepository
from binding_store.redis_index import RedisIndex
from binding_store.reveal_counters import RedisRevealCounters, SqlRevealCounters
from binding_store.shops import ShopRepository
from binding_store.tokens import TokenStore
from routing.api_ports import (
    CallOriginator,
    ClickToCallUnavailable,
    HealthProbe,
    HealthStatus,
    RevealCounters,
)
from routing.call_log_views import CallLogPage, LinkTemplates, resolve_window
from routing.cdr import CdrEvent
from routing.cdr_ports import Originator
from routing.errors import StoreUnavailable
from routing.model import PoolState, RouteDecision
from routing.numbers import national
from routing.risk import load_policy
from scripts import wiring
from scripts.ami_service import listener_config
from scripts.replica_probe import ReplicaProbe
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


EXPORT_COLUMNS = ("started_at", "answered_at", "ended_at", "duration_seconds", "billsec",
                  "direction", "outcome", "reason", "reason_text", "caller_number",
                  "caller_masked", "virtual_number", "buyer_masked", "order_id", "binding_id",
                  "order_link", "chat_link")


class CallLogAdapter:
    """``CallLogPort`` over the call-log engineer's query (``binding_store.call_log_query``)."""

    def __init__(self, db: Database, links: LinkTemplates) -> None:
        self._db = db
        self._links = links

    async def calls(self, shop_id: str, *, now: datetime, since: datetime | None,
                    until: datetime | None, limit: int, cursor: str | None) -> CallLogPage:
        query = CallLogQuery(shop_id=shop_id, since=since, until=until, limit=limit,
                             cursor=cursor)
        return await list_calls(self._db, query, now, self._links)

    async def export_csv(self, shop_id: str, *, now: datetime, since: datetime | None,
                         until: datetime | None) -> str:
        """The shop's records in the window (same 30-day rule as the list), oldest first,
        buyers masked."""
        window = resolve_window(now, since, until)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(EXPORT_COLUMNS)
        async for row in export_rows(self._db, window.since, window.until, shop_id):
            entry = self._links.entry(row.id, row.record)
            r = row.record
            writer.writerow([
                r.start_utc.isoformat(), r.answer_utc.isoformat() if r.answer_utc else "",
                r.end_utc.isoformat(), r.duration, r.billsec, r.direction or "", r.outcome,
                r.reason, entry.reason_text, r.caller_a, r.caller_masked, r.virtual_x,
                r.buyer_masked, r.order_id, r.binding_id, entry.order_link, entry.chat_link])
        return out.getvalue()


class AmiClickToCall:
    """``CallOriginator`` over the AMI ``Originator`` (always ``Async: true``): ring A on the
    channel the dialplan uses to reach numbers (``asterisk.dial_template``) showing X (the
    Originate's caller ID is what A's phone displays); when A answers, context
    ``privnum-click`` makes A the caller ID and the call enters ``privnum-inbound`` at exten X
    as "A dials X" — routed (AGI decides A → X → B, B is shown X) and logged like any call."""

    def __init__(self, originator: Originator, settings: Settings,
                 context: str = "privnum-click") -> None:
        self._originator = originator
        self._template = settings.asterisk.dial_template
        self._national = settings.agi.dial_format == "national"
        self._context = context

    async def click_to_call(self, *, caller_a: str, virtual_x: str, binding_id: str,
                            timeout_seconds: int) -> str:
        dial_a = national(caller_a) if self._national else caller_a
        exten = national(virtual_x) if self._national else virtual_x
        try:
            return await self._originator.originate(
                self._template.format(number=dial_a), context=self._context, exten=exten,
                caller_id=f'"{exten}" <{exten}>', timeout_ms=timeout_seconds * 1000,
                variables={cv.CLICK_CALLER: dial_a, cv.CLICK_BINDING: binding_id})
        except AmiUnavailable as exc:
            raise ClickToCallUnavailable(f"click-to-call unavailable: {exc}") from exc


@dataclass
class AmiProbe:
    listener: AmiListener
    name: str = "ami"
    required: bool = False  # calls still route without AMI; only CDRs and click-to-call wait

    async def check(self) -> HealthStatus:
        ok = self.listener.connected.is_set()
        return HealthStatus(name=self.name, ok=ok, required=self.required,
                            detail="connected" if ok else "not connected")


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
    client: Redis
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


def decision_observer(metrics: Metrics) -> Callable[[RouteDecision, float], None]:
    """The AGI handler's ``observe`` hook counting into the API's metrics: calls by outcome
    (reason code) and the AGI latency histogram. ``privnum serve`` builds one ``Metrics``, passes
    this to ``route_stack(settings, observe=...)`` and the same object to ``run_api``."""

    def observe(decision: RouteDecision, seconds: float) -> None:
        metrics.call_routed(decision.reason.value)
        metrics.agi_latency(seconds)

    return observe


# --- the stack -----------------------------------------------------------------------------------


@dataclass
class ApiStack:
    services: ApiServices
    database: Database
    redis: Redis | None


def counters_for(settings: Settings, db: Database, client: Redis | None) -> RevealCounters:
    if client is not None:
        return RedisRevealCounters(client, settings.redis.prefix,
                                   timeout=settings.redis.timeout_seconds)
    return SqlRevealCounters(db)


def build_services(settings: Settings, db: Database, *, redis: Redis | None = None,
                   index: RedisIndex | None = None, metrics: Metrics | None = None,
                   originator: CallOriginator | None = None,
                   ami_probe: HealthProbe | None = None,
                   read_db: Database | None = None) -> ApiServices:
    """``ApiServices`` over the real stores (tests call this with their own database).
    ``read_db``: where call-log queries and exports go (the replica); default ``db``."""
    cipher = wiring.buyer_cipher(settings)
    policy = BindingPolicy(default_ttl=_seconds(settings.bindings.ttl_seconds),
                           cooldown=_seconds(settings.bindings.cooldown_seconds),
                           number_region=settings.bindings.default_region)
    probes: list[HealthProbe] = [DatabaseProbe(db)]
    probes.append(RedisProbe(redis) if redis is not None
                  else DisabledProbe("redis", "not configured"))
    probes.append(ami_probe or DisabledProbe("ami", "disabled"))
    if read_db is not None:
        probes.append(ReplicaProbe(read_db))
    return ApiServices(
        tokens=TokenStore(db),
        shops=ShopRepository(db, index),
        accounts=AccountRepository(db),
        callers=CallerRepository(db, index),
        bindings=BindingStore(db, cipher, policy=policy, index=index),
        pool=PoolAdapter(db, PoolRepository(db, settings.number_classes)),
        counters=counters_for(settings, db, redis),
        audit=AuditLog(db),
        call_log=CallLogAdapter(read_db or db,
                                LinkTemplates(order=settings.call_log.order_link_template,
                                              chat=settings.call_log.chat_link_template)),
        originator=originator,
        health=tuple(probes),
        policy=load_policy(settings.risk_policy_file),
        metrics=metrics or Metrics(),
        clock=wiring.utc_now,
        default_region=settings.bindings.default_region,
        number_classes=settings.number_classes,
        max_body_bytes=settings.api.max_body_bytes,
        body_timeout_seconds=settings.api.body_timeout_seconds,
        click_to_call_ring_seconds=settings.asterisk.max_ring_seconds,
    )


def _seconds(value: int) -> timedelta:
    return timedelta(seconds=value)


class _NoCdrs:
    """The originate-only AMI connection subscribes to no CDR events, so this never fills."""

    async def write_batch(self, events: Sequence[CdrEvent], source: str = "ami") -> int:
        return 0

    async def close_orphans(self, now: datetime, grace_seconds: float) -> int:
        return 0


def originate_only_listener(settings: Settings) -> AmiListener:
    """An AMI connection of the API's own for click-to-call: system events only (the login
    waits for FullyBooted; CDRs stay with the AMI listener companion). It reconnects and pings
    like the listener."""
    config = replace(listener_config(settings), events="system")  # FullyBooted only
    return AmiListener(config, _NoCdrs())


@asynccontextmanager
async def api_stack(settings: Settings, metrics: Metrics | None = None,
                    originator: Originator | None = None) -> AsyncIterator[ApiStack]:
    """The API's stores. With ``ami.enabled`` and no ``originator`` handed in, the API opens
    an originate-only AMI connection of its own."""
    db = wiring.database(settings)
    read_db = wiring.read_database(settings) if settings.database.read_url else None
    client: Redis | None = None
    index: RedisIndex | None = None
    ami_task: asyncio.Task[None] | None = None
    listener: AmiListener | None = None
    try:
        if originator is None and settings.ami.enabled:
            listener = originate_only_listener(settings)
            ami_task = asyncio.create_task(listener.run(), name="api-ami")
            originator = listener
        if settings.redis.url:
            timeout = settings.redis.timeout_seconds
            client = Redis.from_url(settings.redis.url, socket_timeout=timeout,
                                    socket_connect_timeout=timeout)
            index = RedisIndex.from_url(settings.redis.url, prefix=settings.redis.prefix,
                                        timeout=timeout)
        click = AmiClickToCall(originator, settings) if originator is not None else None
        # The AMI connection in use, whoever opened it (``privnum serve`` hands in its
        # listener): /healthz says whether it is up.
        watched = listener or (originator if isinstance(originator, AmiListener) else None)
        services = build_services(settings, db, redis=client, index=index, metrics=metrics,
                                  originator=click,
                                  ami_probe=AmiProbe(watched) if watched else None,
                                  read_db=read_db)
        yield ApiStack(services=services, database=db, redis=client)
    finally:
        if listener is not None and ami_task is not None:
            await listener.stop()
            with contextlib.suppress(Exception):
                await ami_task
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()
        if index is not None:
            with contextlib.suppress(Exception):
                await index.close()
        if read_db is not None:
            await read_db.dispose()
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


async def run_api(settings: Settings, stop: asyncio.Event, *,
                  originator: Originator | None = None, metrics: Metrics | None = None) -> None:
    """The HTTP API until ``stop`` is set (the ``privnum serve`` companion). ``serve`` may hand
    in the AMI listener (click-to-call) and the metrics object the AGI handler counts into."""
    sock = bind(settings.api.host, settings.api.port)
    try:
        async with api_stack(settings, metrics, originator) as stack:
            app = create_app(stack.services)
            log.info("privnum HTTP API on http://%s:%d", settings.api.host, settings.api.port)
            await serve_app(app, sock, stop, log_level=settings.log_level)
    finally:
        sock.close()

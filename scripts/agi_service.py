"""Wiring for the call path: settings -> stores -> RouteHandler -> FastAGI server / script mode."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from agi.handlers import DecisionObserver, RouteHandler, RouteOptions
from agi.server import FastAgiServer
from binding_store import watermark
from binding_store.attempt_writer import AttemptWriter
from binding_store.crypto import BuyerCipher
from binding_store.db import Database
from binding_store.index_healer import IndexHealer
from binding_store.key_check import check_active_keys
from binding_store.redis_index import RedisIndex
from binding_store.route_lookup import StoreRouteLookup
from routing.errors import StoreUnavailable
from scripts import wiring
from scripts.settings import Settings
from scripts.wiring_index import index_healer, open_index, route_lookup

log = logging.getLogger("privnum.serve")


@dataclass
class RouteStack:
    database: Database
    index: RedisIndex | None
    lookup: StoreRouteLookup
    attempts: AttemptWriter
    handler: RouteHandler
    cipher: BuyerCipher
    healer: IndexHealer | None = None


def route_options(settings: Settings) -> RouteOptions:
    return RouteOptions(
        max_call_seconds=settings.agi.max_call_seconds,
        dial_format=settings.agi.dial_format,
        region=settings.bindings.default_region,
        store_timeout=settings.agi.store_timeout_seconds,
        system_name=settings.agi.system_name or settings.asterisk.system_name,
        number_classes=settings.number_classes,
    )


async def check_schema(database: Database) -> int:
    """Refuse to start on a database without the current schema: every call would fail
    closed. (Run inside ``wiring.open_database``, which turns a missing table into a clear
    hint.) Returns the index watermark, which the call path needs anyway."""
    async with database.session() as session:
        await session.execute(text("SELECT 1 FROM bindings LIMIT 1"))
    return await watermark.read(database)


@asynccontextmanager
async def route_stack(settings: Settings, observe: DecisionObserver | None = None,
                      on_refused: Callable[[int], None] | None = None, *,
                      heal_index: bool = False,
                      index_events: Callable[[str], None] | None = None
                      ) -> AsyncIterator[RouteStack]:
    """The call path's stores and handler. ``on_refused`` counts call attempts the database
    refused (``privnum serve`` counts them in ``/metrics``). ``heal_index`` (a long-running
    service) also runs the index's healer, which rebuilds a Redis index that is behind SQL or
    lost."""
    cipher = wiring.buyer_cipher(settings)  # a missing key file stops us here, clearly
    async with wiring.open_database(settings) as database, open_index(settings) as index:
        mark = await check_schema(database)
        if index is not None:
            index.known.learn(mark)
        healer = index_healer(settings, database, index, index_events) if heal_index else None
        stack = await _stack(settings, database, index, cipher, observe, on_refused, healer)
        stack.attempts.start()
        if healer is not None:
            healer.start()
        try:
            yield stack
        finally:
            if healer is not None:
                await healer.close()
            await stack.attempts.close()


async def _stack(settings: Settings, database: Database, index: RedisIndex | None,
                 cipher: BuyerCipher, observe: DecisionObserver | None,
                 on_refused: Callable[[int], None] | None,
                 healer: IndexHealer | None) -> RouteStack:
    if index is not None:
        try:
            await index.ping()
        except StoreUnavailable as exc:
            # Start anyway: look-ups fall back to SQL until Redis is back.
            log.warning("redis index unavailable at start-up (%s); reading SQL", exc)
    lookup = route_lookup(settings, database, cipher, index, healer)
    attempts = AttemptWriter(database, on_refused=on_refused)
    handler = RouteHandler(lookup, attempts, wiring.utc_now, route_options(settings), observe)
    return RouteStack(database, index, lookup, attempts, handler, cipher, healer)


def fastagi_server(settings: Settings, handler: RouteHandler) -> FastAgiServer:
    agi = settings.agi
    return FastAgiServer(
        {"route": handler},
        host=agi.host,
        port=agi.port,
        env_timeout=agi.env_timeout_seconds,
        env_max_bytes=agi.env_max_bytes,
        command_timeout=agi.command_timeout_seconds,
        call_timeout=agi.call_timeout_seconds,
    )


Companion = Callable[[Settings, asyncio.Event], Coroutine[Any, Any, None]]


async def serve(settings: Settings, companions: tuple[Companion, ...] = (),
                stop: asyncio.Event | None = None,
                observe: DecisionObserver | None = None,
                on_refused: Callable[[int], None] | None = None,
                index_events: Callable[[str], None] | None = None) -> None:
    """Run FastAGI (and companions such as the HTTP API and the AMI listener) until SIGTERM or
    SIGINT, then stop accepting calls and let in-flight ones finish."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    wiring.warn_open_key_file(settings)
    async with route_stack(settings, observe, on_refused, heal_index=True,
                           index_events=index_events) as stack:
        checked = await check_active_keys(stack.database, stack.cipher, str(settings.keys_file))
        log.info("key file %s opens the active bindings (%d key id(s) in use)",
                 settings.keys_file, checked)
        server = fastagi_server(settings, stack.handler)
        try:
            await server.start()
        except OSError as exc:
            raise StoreUnavailable(
                f"cannot listen on {settings.agi.host}:{settings.agi.port}: "
                f"{exc.strerror or exc}"
            ) from exc
        failures: list[BaseException] = []

        async def guarded(companion: Companion) -> None:
            try:
                await companion(settings, stop)
            except Exception as exc:  # a dead companion stops the service, loudly
                log.error("%s failed: %s", getattr(companion, "__name__", "companion"), exc)
                failures.append(exc)
                stop.set()

        tasks = [asyncio.create_task(guarded(c)) for c in companions]
        log.info("privnum serving FastAGI on %s", ", ".join(server.addresses))
        try:
            await stop.wait()
        finally:
            log.info("shutting down: draining calls for up to %gs",
                     settings.agi.shutdown_grace_seconds)
            await server.shutdown(grace=settings.agi.shutdown_grace_seconds)
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
        if failures:
            raise failures[0]

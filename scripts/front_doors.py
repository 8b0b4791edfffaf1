"""The front doors as lifecycle services, over one :class:`~scripts.container.Container`:
FastAGI (the call path, built by ``scripts.call_path``), the HTTP API
(``scripts.http_service``) and the AMI listener; and three of the four ways ``privnum`` runs
them (``serve``, ``api``, ``ami listen``; ``agi``, one call per process, is
``scripts.call_path.run_agi``, which imports none of this). Each is one
:class:`~scripts.lifecycle.Lifecycle`: signals, "serve until stopped" and the shutdown order
live there, once.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict
from datetime import timedelta

from agi.ami_cdr import csv_problem
from agi.ami_click import AmiProbe, originate_only
from agi.ami_listener import AmiListener, ListenerStats
from agi.handlers import RouteHandler, decision_observer
from agi.health import HEALTH_SCRIPT, answer_health
from agi.server import FastAgiServer
from api.metrics import Metrics
from binding_store.attempt_writer import AttemptWriter
from binding_store.index_healer import IndexHealer
from binding_store.key_check import check_active_keys
from routing.cdr_ports import CdrSink
from routing.errors import StoreUnavailable
from scripts.background import delivery_service, expiry_sweeper
from scripts.call_path import call_path, prepare_stores
from scripts.clock import Clock, utc_now
from scripts.container import Container, open_container
from scripts.heap import settle_for_serving
from scripts.http_service import (
    HttpService,
    api_services,
    fastagi_probe,
    key_purger,
)
from scripts.lifecycle import Lifecycle, Resource, Service, Task
from scripts.part_config import default_csv_file
from scripts.partition_service import partition_upkeep
from scripts.partition_service import wanted as partitions_wanted
from scripts.recording_service import RecordingSink, recording_upkeep
from scripts.settings import Settings
from scripts.webhook_worker import DeliveryWorker, WebhookObserver, WorkerOptions
from scripts.workers import Announce, PortLock, WorkerProcess, settings_json, worker_count

log = logging.getLogger("privnum.serve")


class FastAgiService:
    name = "fastagi"

    def __init__(self, settings: Settings, handler: RouteHandler, *,
                 reuse_port: bool = False) -> None:
        agi = settings.agi
        self._grace = agi.shutdown_grace_seconds
        self._where = f"{agi.host}:{agi.port}"
        self.server = FastAgiServer(
            {"route": handler, HEALTH_SCRIPT: answer_health}, host=agi.host, port=agi.port,
            env_timeout=agi.env_timeout_seconds, env_max_bytes=agi.env_max_bytes,
            command_timeout=agi.command_timeout_seconds, call_timeout=agi.call_timeout_seconds,
            reuse_port=reuse_port)

    async def startup(self) -> None:
        try:
            await self.server.start()
        except OSError as exc:
            raise StoreUnavailable(
                f"cannot listen on {self._where}: {exc.strerror or exc}") from exc
        # Last to start (the other services were built before it): from here on the heap
        # holds little more than calls.
        settle_for_serving()
        log.info("privnum serving FastAGI on %s", ", ".join(self.server.addresses))

    async def ended(self) -> None:
        await self.server.serve_forever()

    async def shutdown(self) -> None:
        log.info("shutting down: draining calls for up to %gs", self._grace)
        await self.server.shutdown(grace=self._grace)


def attempt_writer(attempts: AttemptWriter) -> Resource:
    async def start() -> None:
        attempts.start()

    return Resource("attempt-writer", start, attempts.close)


def index_healer(healer: IndexHealer) -> Resource:
    async def start() -> None:
        healer.start()

    return Resource("index-healer", start, healer.close)


# ---- AMI ------------------------------------------------------------------------------------


def ami_listener(container: Container, metrics: Metrics | None = None,
                 sink: CdrSink | None = None) -> AmiListener:
    """The CDR listener; after each (re)connect it reconciles from Asterisk's safety-net CSV
    (one warning at start-up when that file cannot be read). ``sink``: where the records go
    (the call log, through the recordings' claim in ``serve``)."""
    async def reconcile(system_name: str) -> int:
        result = await container.reconcile(system_name=system_name, sink=sink)
        return result.stored + result.orphans_closed

    path = default_csv_file(container.settings)
    problem = csv_problem(path)
    if problem is not None:
        log.warning("AMI is on but Asterisk's safety-net CDR file %s cannot be read (%s): "
                    "call records missed while AMI is down cannot be re-imported; set "
                    "call_log.cdr_csv_dir (env PRIVNUM_CALL_LOG__CDR_CSV_DIR)", path, problem)
    listener = AmiListener(container.ami_config(), sink or container.call_log_store, reconcile,
                           observe_lag=metrics.cdr_lag if metrics is not None else None)
    if metrics is not None:
        metrics.watch_listener(listener)  # /metrics: connected, records, reconciles
    return listener


def listener_service(listener: AmiListener, name: str = "ami-listener") -> Task:
    async def stop() -> None:
        await listener.stop()  # flushes buffered CDRs
        stats = {k: v for k, v in asdict(listener.stats).items()
                 if k != "last_error"}  # counts only: fields of the line, not a dict repr
        log.info("AMI listener stopped", extra=stats)

    return Task(name, listener.run, stop)


# ---- webhooks ---------------------------------------------------------------------------------


def delivery_worker(container: Container, observer: WebhookObserver | None = None
                    ) -> DeliveryWorker:
    w = container.settings.webhooks
    return DeliveryWorker(container.webhook_deliveries, clock=utc_now, observer=observer,
                          options=WorkerOptions(timeout=w.timeout_seconds,
                                                concurrency=w.concurrency, poll=w.poll_seconds,
                                                retention=timedelta(days=w.retention_days)))


# ---- how privnum runs them -----------------------------------------------------------------


async def serve(settings: Settings, stop: asyncio.Event | None = None, *,
                clock: Clock = utc_now) -> None:
    """``privnum serve``: FastAGI (in this process, or in ``agi.workers`` worker processes on
    the same port: ``scripts.workers``) plus, per the settings, the HTTP API, the AMI
    listener and (on PostgreSQL) the call log's partition upkeep,
    sharing one container (one database engine, one Redis client), one metrics registry (the
    API's ``/metrics`` shows the call path) and one AMI connection (click-to-call originates
    through the listener's login). SIGTERM drains calls, then stops the API and the listener
    (which flushes its CDRs), then the attempt writer; the stores close last. ``clock`` is
    the call path's and the API's "now" (the real clock but in an end-to-end test)."""
    metrics = Metrics()
    async with open_container(settings, metrics=metrics, clock=clock) as container:
        container.warn_open_key_file()
        await prepare_stores(container)
        checked = await check_active_keys(container.database, container.cipher,
                                          str(settings.keys_file))
        log.info("key file %s opens the active bindings (%d key id(s) in use)",
                 settings.keys_file, checked)
        workers = worker_count(settings.agi.workers, settings.database_url)
        services: list[Service] = []
        stack = None
        if workers == 1:
            healer = container.index_healer(metrics.index_event)
            stack = call_path(container, decision_observer(metrics), metrics.attempt_refused,
                              healer)
            index = container.index
            metrics.watch_lookup(stack.lookup.stats, (lambda: index.switches)
                                 if index is not None else (lambda: 0))
            services.append(attempt_writer(stack.attempts))
            if healer is not None:
                services.append(index_healer(healer))
        listener = None
        recordings = RecordingSink(container.call_log_store, container.recordings)
        # before the listener: on SIGTERM it stops after the listener flushed its records
        services.append(recording_upkeep(container.recordings, recordings,
                                         settings.recordings.sweep_seconds))
        if settings.ami.enabled:
            listener = ami_listener(container, metrics, recordings)
            services.append(listener_service(listener))
        if settings.api.enabled:
            api = api_services(container, metrics, originator=listener,
                               ami_probe=AmiProbe(listener) if listener is not None else None,
                               fastagi_probe=fastagi_probe(settings, workers))
            services += [HttpService(settings, api), key_purger(settings, api)]
        if partitions_wanted(settings):
            services.append(partition_upkeep(settings, container.database))
        if settings.bindings.expiry_sweep_seconds > 0:
            services.append(expiry_sweeper(container.bindings,
                                           settings.bindings.expiry_sweep_seconds))
        if settings.webhooks.enabled:
            services.append(delivery_service(delivery_worker(container, metrics)))
        if stack is not None:
            services.append(FastAgiService(settings, stack.handler))
        else:
            # Last in, first out: on SIGTERM the workers drain their calls before the API
            # and the stores stop.
            services.append(PortLock(settings.data_dir, settings.agi.port))
            config = settings_json(settings)
            services += [WorkerProcess(n, config, grace=settings.agi.shutdown_grace_seconds)
                         for n in range(1, workers + 1)]
            services.append(Announce(f"privnum serving FastAGI on {settings.agi.host}:"
                                     f"{settings.agi.port} with {workers} worker processes"))
        await Lifecycle(services, stop=stop).serve()


async def run_api(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """``privnum api``: the HTTP API alone; with ``ami.enabled`` it opens an originate-only AMI
    connection of its own for click-to-call."""
    metrics = Metrics()
    async with open_container(settings, metrics=metrics) as container:
        services: list[Service] = []
        listener = None
        if settings.ami.enabled:
            listener = originate_only(container.ami_config())
            services.append(listener_service(listener, "api-ami"))
        api = api_services(container, metrics, originator=listener,
                           ami_probe=AmiProbe(listener) if listener is not None else None,
                           fastagi_probe=fastagi_probe(settings, 1)
                           if settings.api.probe_fastagi else None)
        services += [HttpService(settings, api), key_purger(settings, api)]
        await Lifecycle(services, stop=stop).serve()


async def run_ami_listener(settings: Settings, stop: asyncio.Event | None = None
                           ) -> ListenerStats:
    """``privnum ami listen``: the CDR listener alone, until SIGTERM/SIGINT (then flushes)."""
    async with open_container(settings) as container:
        listener = ami_listener(container)
        await Lifecycle([listener_service(listener)], stop=stop).serve()
        return listener.stats

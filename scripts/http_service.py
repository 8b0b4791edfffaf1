"""The HTTP API as a lifecycle service: its services over the container's use cases (with
click-to-call when AMI is there, and the web console), uvicorn on a socket bound here, and the
purge of expired idempotency keys while it serves. ``scripts.front_doors`` runs it, alone
(``privnum api``) or beside the call path (``privnum serve``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn
from cryptography.fernet import Fernet

from agi.ami_click import AmiClickToCall
from agi.health import FastAgiProbe
from api.app import create_app
from api.console.options import ConsoleOptions
from api.metrics import Metrics
from api.services import ApiServices
from routing.cdr_ports import Originator
from routing.errors import StoreUnavailable
from routing.health_ports import HealthProbe
from scripts.background import idempotency_purger
from scripts.cdr_export import write_export
from scripts.container import Container
from scripts.lifecycle import Task
from scripts.settings import Settings

log = logging.getLogger("privnum.serve")


class EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handlers: the :class:`Lifecycle` owns them."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind(host: str, port: int) -> socket.socket:
    try:
        return socket.create_server((host, port), reuse_port=False)
    except OSError as exc:
        raise StoreUnavailable(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


def click_to_call(originator: Originator, settings: Settings) -> AmiClickToCall:
    """Click-to-call over ``originator`` (the AMI listener or an originate-only connection),
    dialling A the way the dialplan dials numbers."""
    return AmiClickToCall(originator, dial_template=settings.asterisk.dial_template,
                          national_format=settings.agi.dial_format == "national")


def api_services(container: Container, metrics: Metrics, *,
                 originator: Originator | None = None,
                 ami_probe: HealthProbe | None = None,
                 fastagi_probe: HealthProbe | None = None) -> ApiServices:
    """The API over the container's use cases; ``originator`` (AMI) enables click-to-call."""
    container.metrics = metrics  # the use cases count into the registry /metrics shows
    settings = container.settings
    click = click_to_call(originator, settings) if originator is not None else None
    return ApiServices(use_cases=container.use_cases(click),
                       health=container.health_probes(ami_probe, fastagi_probe),
                       metrics=metrics,
                       clock=container.clock, max_body_bytes=settings.api.max_body_bytes,
                       body_timeout_seconds=settings.api.body_timeout_seconds,
                       console=console_options(settings))


def fastagi_probe(settings: Settings, workers: int) -> FastAgiProbe:
    """The FastAGI port probed as Asterisk reaches it (a wildcard address over loopback)."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(settings.agi.host,
                                                                   settings.agi.host)
    return FastAgiProbe(host, settings.agi.port, workers=workers)


def console_options(settings: Settings) -> ConsoleOptions | None:
    """The web console's options (``None`` when it is switched off); the session key is new
    in every process, so a restart signs everyone out and no key lies on disk."""
    console = settings.console
    if not console.enabled:
        return None
    assert console.export_dir is not None  # filled in by the settings
    return ConsoleOptions(session_key=Fernet.generate_key(),
                          session_seconds=console.session_minutes * 60,
                          export_dir=console.export_dir, export_writer=write_export,
                          platform_timezone=console.timezone, chart_days=console.chart_days)


def key_purger(settings: Settings, api: ApiServices) -> Task:
    """Deletes the API's expired idempotency keys while it serves."""
    return idempotency_purger(api.use_cases.idempotency,
                              settings.api.idempotency_purge_minutes * 60)


class HttpService:
    name = "http-api"

    def __init__(self, settings: Settings, services: ApiServices, *, grace: float = 10.0
                 ) -> None:
        self._host, self._port = settings.api.host, settings.api.port
        self._grace = grace
        # log_config=None: uvicorn's server and access logs go through privnum's handler
        # (scripts/logs.py), in the same format as every other line.
        self._app = create_app(services)
        config = uvicorn.Config(self._app, lifespan="off",
                                log_level=settings.log_level.lower(), log_config=None,
                                timeout_graceful_shutdown=int(grace), access_log=True,
                                server_header=False)
        self.server = EmbeddedServer(config)
        self._socket: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None

    async def startup(self) -> None:
        self._socket = bind(self._host, self._port)
        self._task = asyncio.create_task(self.server.serve(sockets=[self._socket]),
                                         name="http-api")
        log.info("privnum HTTP API on http://%s:%d", self._host, self._port)

    async def ended(self) -> None:
        assert self._task is not None
        await asyncio.shield(self._task)

    async def shutdown(self) -> None:
        self.server.should_exit = True
        try:
            if self._task is not None:
                try:
                    await asyncio.wait_for(asyncio.shield(self._task), timeout=self._grace + 5)
                except TimeoutError:
                    self.server.force_exit = True
                    await asyncio.wait_for(self._task, timeout=5)
        finally:
            if self._socket is not None:
                self._socket.close()
            console = getattr(self._app.state, "console", None)
            if console is not None:
                await console.jobs.aclose()  # an export cut short leaves no partial file

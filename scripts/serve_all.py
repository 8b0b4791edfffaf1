"""``privnum serve``: FastAGI plus, per the settings, the HTTP API and the AMI listener, sharing
one metrics registry (the API's ``/metrics`` shows the call path's counters and latency) and
one AMI connection (click-to-call originates through the listener's login); on PostgreSQL also
the call log's partition upkeep."""

from __future__ import annotations

import asyncio

from api.metrics import Metrics
from scripts import wiring
from scripts.agi_service import Companion, serve
from scripts.ami_service import AmiService
from scripts.api_service import decision_observer, run_api
from scripts.partition_service import keep_partitions, wanted
from scripts.settings import Settings


async def serve_everything(settings: Settings, stop: asyncio.Event | None = None) -> None:
    metrics = Metrics()
    companions: list[Companion] = []
    ami: AmiService | None = None
    if settings.ami.enabled:
        ami = AmiService(settings, wiring.database(settings))

        async def ami_listener(_settings: Settings, stopping: asyncio.Event) -> None:
            assert ami is not None
            ami.start()
            try:
                await stopping.wait()
            finally:
                await ami.stop()  # flushes buffered CDRs
                await ami.db.dispose()

        companions.append(ami_listener)
    if settings.api.enabled:
        originator = ami.originator if ami is not None else None

        async def http_api(_settings: Settings, stopping: asyncio.Event) -> None:
            await run_api(settings, stopping, originator=originator, metrics=metrics)

        companions.append(http_api)
    if wanted(settings):
        companions.append(keep_partitions)
    await serve(settings, tuple(companions), stop=stop, observe=decision_observer(metrics),
                on_refused=metrics.attempt_refused, index_events=metrics.index_event)

"""Background services of ``privnum serve`` beside the front doors: the webhook delivery
worker, the binding-expiry sweeper and the idempotency-key purge (each a
:class:`~scripts.lifecycle.Task`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from binding_store.bindings import BindingStore
from routing.errors import PrivnumError
from routing.usecases.idempotency import Idempotency
from scripts.clock import utc_now
from scripts.lifecycle import Task
from scripts.webhook_worker import DeliveryWorker

log = logging.getLogger("privnum.serve")
_SWEEP_BATCH = 1_000


def delivery_service(worker: DeliveryWorker) -> Task:
    async def stop() -> None:
        await worker.stop()
        log.info("webhook delivery stopped: %d request(s), %d event(s) delivered, %d failed",
                 worker.requests, worker.delivered, worker.failed)

    return Task("webhook-delivery", worker.run, stop)


async def sweep_expired(bindings: BindingStore, interval: float, stopping: asyncio.Event
                        ) -> None:
    """Until ``stopping``: mark bindings past their expiry as expired (each with its
    ``binding.expired`` event, in the same transaction) every ``interval`` seconds."""
    while not stopping.is_set():
        try:
            while await bindings.expire_due(utc_now(), _SWEEP_BATCH) >= _SWEEP_BATCH:
                if stopping.is_set():
                    break
        except PrivnumError as exc:
            log.warning("binding expiry sweep failed (retried in %g s): %s", interval, exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), interval)


def expiry_sweeper(bindings: BindingStore, interval: float) -> Task:
    stopping = asyncio.Event()

    async def stop() -> None:
        stopping.set()

    return Task("expiry-sweeper", lambda: sweep_expired(bindings, interval, stopping), stop)


async def purge_idempotency_keys(keys: Idempotency, interval: float, stopping: asyncio.Event
                                 ) -> None:
    """Until ``stopping``: delete the idempotency keys past their time every ``interval``
    seconds (a repeat after that runs anew, like a new request)."""
    while not stopping.is_set():
        try:
            removed = await keys.purge(utc_now())
            if removed:
                log.info("idempotency keys: %d expired key(s) deleted", removed)
        except PrivnumError as exc:
            log.warning("idempotency-key purge failed (retried in %g s): %s", interval, exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), interval)


def idempotency_purger(keys: Idempotency, interval: float) -> Task:
    stopping = asyncio.Event()

    async def stop() -> None:
        stopping.set()

    return Task("idempotency-purge",
                lambda: purge_idempotency_keys(keys, interval, stopping), stop)

"""The webhook delivery worker: a lifecycle service of ``privnum serve``.

It works off the outbox (``binding_store.webhook_queue``) and never touches the call path or
the API: they only insert outbox rows. Each round it hands new events to their subscriptions,
then keeps up to ``concurrency`` requests in flight, each a signed POST of up to a
subscription's batch size of events (one per stream, oldest first) with a per-request
timeout. A 2xx marks them delivered; anything else (5xx, 4xx, a redirect, a refused or closed
connection, a stall past the timeout) moves each one rung up the retry ladder, or to the dead
letters after the last, and pauses the subscription for the first rung. A shutdown lets the
requests in flight finish; what was leased and not sent is given back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import httpx

from binding_store.webhook_queue import Claimed, DeliveryQueue
from routing.errors import PrivnumError
from routing.webhooks import signed_headers

log = logging.getLogger("privnum.webhooks")
USER_AGENT = "privnum-webhooks/1"
_PURGE_EVERY = timedelta(hours=1)


class WebhookObserver(Protocol):
    """What the worker counts (``api.metrics.Metrics``)."""

    def webhook_request(self, result: str, events: int) -> None: ...

    def webhook_delivered(self, lag_seconds: float) -> None: ...

    def webhook_dead(self, count: int) -> None: ...


@dataclass(frozen=True)
class WorkerOptions:
    timeout: float = 10.0  # per request
    concurrency: int = 8  # requests in flight
    poll: float = 0.5  # seconds between looks at an idle outbox
    retention: timedelta = timedelta(days=14)
    dispatch_batch: int = 500

    @property
    def lease(self) -> timedelta:
        """How long a claimed delivery is ours: twice its request's timeout and a margin.
        A worker that died holds its deliveries that long; then another sends them."""
        return timedelta(seconds=2 * self.timeout + 5)


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status: int | None
    error: str


def body_of(claimed: Claimed) -> bytes:
    return json.dumps({"events": list(claimed.events)}, ensure_ascii=False,
                      separators=(",", ":")).encode()


async def post(client: httpx.AsyncClient, claimed: Claimed, *, now: datetime,
               limit: float) -> Outcome:
    """One signed request bounded by ``limit`` seconds; never raises for what the receiver
    or the network does."""
    body = body_of(claimed)
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
               "Privnum-Attempt": str(claimed.attempt),
               **signed_headers(claimed.secret, int(now.timestamp()), body)}
    try:
        async with asyncio.timeout(limit):  # the whole exchange, body included
            response = await client.post(claimed.subscription.url, content=body,
                                         headers=headers, timeout=limit)
    except (TimeoutError, httpx.TimeoutException):
        return Outcome(False, None, f"no answer within {limit:g} s")
    except httpx.HTTPError as exc:
        return Outcome(False, None, f"{type(exc).__name__}: {str(exc)[:150]}")
    if 200 <= response.status_code < 300:
        return Outcome(True, response.status_code, "")
    return Outcome(False, response.status_code, f"HTTP {response.status_code}")


class DeliveryWorker:
    def __init__(self, queue: DeliveryQueue, *, clock: Callable[[], datetime],
                 options: WorkerOptions | None = None,
                 observer: WebhookObserver | None = None,
                 client: httpx.AsyncClient | None = None) -> None:
        self._queue = queue
        self._clock = clock
        self.options = options or WorkerOptions()
        self._observer = observer
        self._client = client
        self._stopping = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._last_purge: datetime | None = None
        self._store_down = False
        self.requests = 0
        self.delivered = 0
        self.failed = 0

    async def run(self) -> None:
        own = self._client is None
        client = self._client or httpx.AsyncClient(
            follow_redirects=False, trust_env=False,
            limits=httpx.Limits(max_connections=self.options.concurrency * 2))
        try:
            while not self._stopping.is_set():
                busy = await self._round(client)
                await self._wait(0 if busy else self.options.poll)
            if self._inflight:
                await asyncio.gather(*self._inflight, return_exceptions=True)
        finally:
            if own:
                await client.aclose()

    async def stop(self) -> None:
        self._stopping.set()

    async def _round(self, client: httpx.AsyncClient) -> bool:
        """Fan out, claim what the free slots can take, start their requests. True when
        there was work (look again at once)."""
        now = self._clock()
        try:
            dispatched = await self._queue.dispatch(now, self.options.dispatch_batch)
            free = self.options.concurrency - len(self._inflight)
            claimed = await self._queue.claim(now, lease=self.options.lease, requests=free)
            await self._purge(now)
        except PrivnumError as exc:  # the database is away: wait, keep everything
            if not self._store_down:
                log.warning("webhook delivery waiting for the database: %s", exc)
            self._store_down = True
            return False
        except Exception as exc:  # a bug here must not stop serve (and so routing): log, go on
            log.error("webhook delivery round failed: %s: %s", type(exc).__name__, exc)
            return False
        if self._store_down:
            log.info("webhook delivery resumed")
            self._store_down = False
        for batch in claimed:
            task = asyncio.create_task(self._send(client, batch), name="webhook-request")
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
        return bool(dispatched or claimed)

    async def _wait(self, seconds: float) -> None:
        """Until ``seconds`` pass, a request finishes (a slot is free), or stop."""
        waiters: list[asyncio.Future[object]] = [
            asyncio.ensure_future(self._stopping.wait())]
        waiters += [asyncio.shield(t) for t in self._inflight]
        try:
            await asyncio.wait(waiters, timeout=seconds if seconds > 0 else 0,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)

    async def _send(self, client: httpx.AsyncClient, batch: Claimed) -> None:
        ids = list(batch.delivery_ids)
        if self._stopping.is_set():
            with contextlib.suppress(PrivnumError):
                await self._queue.release(ids)
            return
        outcome = await post(client, batch, now=self._clock(), limit=self.options.timeout)
        self.requests += 1
        done = self._clock()
        try:
            if outcome.ok:
                await self._queue.delivered(ids, done, outcome.status or 200)
                if batch.subscription.paused_until is not None:
                    await self._queue.resume(batch.subscription.id)
            else:
                dead = await self._queue.failed(ids, done, subscription_id=batch.subscription.id,
                                                status=outcome.status, error=outcome.error)
                if dead and self._observer is not None:
                    self._observer.webhook_dead(dead)
                if dead:
                    log.warning("webhook %s: %d event(s) dead-lettered after %d attempts (%s)",
                                batch.subscription.id, dead, self._queue.ladder.max_attempts,
                                outcome.error)
        except Exception as exc:
            # The outcome is lost (the database went away, or a bug); the lease runs out and
            # the deliveries are sent again (at least once).
            log.warning("webhook %s: outcome not recorded (%s: %s); sent again later",
                        batch.subscription.id, type(exc).__name__, exc)
            return
        self._count(batch, outcome, done)

    def _count(self, batch: Claimed, outcome: Outcome, done: datetime) -> None:
        events = len(batch.delivery_ids)
        if outcome.ok:
            self.delivered += events
        else:
            self.failed += events
            log.info("webhook %s: %d event(s) not delivered (%s), attempt %d",
                     batch.subscription.id, events, outcome.error, batch.attempt)
        if self._observer is None:
            return
        self._observer.webhook_request("delivered" if outcome.ok else "failed", events)
        if outcome.ok:
            for event in batch.events:
                recorded = datetime.fromisoformat(str(event["recorded_at"]).replace("Z",
                                                                                    "+00:00"))
                self._observer.webhook_delivered(max(0.0, (done - recorded).total_seconds()))

    async def _purge(self, now: datetime) -> None:
        if self._last_purge is not None and now - self._last_purge < _PURGE_EVERY:
            return
        self._last_purge = now
        removed = await self._queue.purge(now - self.options.retention)
        if removed:
            log.info("webhook history: %d finished deliveries older than %s removed", removed,
                     self.options.retention)

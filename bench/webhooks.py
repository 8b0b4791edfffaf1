"""Webhook delivery: events/s delivered to a local receiver and the lag p99, against a baseline
that feeds the same receiver directly (same run); and what the outbox insert costs the paths
that write it.

``python -m bench.webhooks [--quick] [--pg]`` (SQLite by default, ``--pg`` a scratch PostgreSQL
database). Three measurements, each printed as a ratio to its baseline:

1. drain: N events waiting in the outbox, the worker (concurrency 8, batches of 50) delivers
   them all; baseline: a plain httpx client posting the same envelopes in batches of 50 at
   concurrency 8 (no database, no signature).
2. steady lag: events committed at a fixed rate while the worker runs (batches of 10);
   lag = receipt minus commit. Baseline: each event posted by the producer the moment it is
   produced.
3. outbox cost: call attempts written by the batched attempt writer, and bindings issued,
   with the outbox on and off (interleaved in one database).
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.common import console, latency_summary, print_table, ratio, scratch_pg, write_result
from binding_store.all_models import Base
from binding_store.attempt_writer import AttemptWriter
from binding_store.binding_policy import BindingPolicy
from binding_store.bindings import BindingStore
from binding_store.crypto import BuyerCipher, KeyRing
from binding_store.db import Database
from binding_store.models import Account, CallerNumber, PoolNumber, Shop
from binding_store.outbox import Outbox
from binding_store.webhook_queue import DeliveryQueue
from binding_store.webhooks import SubscriptionStore
from routing.events import Event, EventType
from routing.model import Action, CallAttempt
from routing.reasons import Reason
from routing.webhooks import EventFilter, RetryLadder
from scripts.webhook_worker import DeliveryWorker, WorkerOptions

PORT = 17980
CONCURRENCY = 8
BATCH = 50


def utc_now() -> datetime:
    return datetime.now(UTC)


@asynccontextmanager
async def receiver() -> AsyncIterator[str]:
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before anything is measured
        [sys.executable, "-m", "bench.webhook_receiver", str(PORT)])
    url = f"http://127.0.0.1:{PORT}"
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", PORT)) == 0:
                    break
            await asyncio.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait()


async def stats(client: httpx.AsyncClient, url: str) -> tuple[int, list[float]]:
    body = (await client.get(f"{url}/stats")).json()
    return int(body["count"]), list(body["lags"])


async def wait_for(client: httpx.AsyncClient, url: str, count: int, limit: float = 300
                   ) -> list[float]:
    deadline = time.monotonic() + limit
    while True:
        got, lags = await stats(client, url)
        if got >= count or time.monotonic() > deadline:
            return lags
        await asyncio.sleep(0.02)


@asynccontextmanager
async def database(pg: bool) -> AsyncIterator[Database]:
    if pg:
        async with scratch_pg("webhooks") as url:
            db = Database(url, timeout=10.0)
            async with db.engine.begin() as conn:
                await conn.run_sync(Base.metadata.create_all)
            try:
                yield db
            finally:
                await db.dispose()
        return
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}", timeout=10.0)
        async with db.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        try:
            yield db
        finally:
            await db.dispose()


def event(i: int) -> Event:
    return Event(EventType.CALL_ENDED, f"call:bench-{i % 500}", "shop1", utc_now(),
                 {"call_id": f"bench-{i}", "duration": 30, "buyer_masked": "139****0001"})


async def write_events(db: Database, events: list[Event]) -> None:
    async with db.session() as s:
        await Outbox().write(s, events, utc_now())
        await s.commit()


def worker(db: Database, batch_timeout: float = 10.0) -> DeliveryWorker:
    queue = DeliveryQueue(db, RetryLadder.of_minutes([0.01]))
    return DeliveryWorker(queue, clock=utc_now, options=WorkerOptions(
        timeout=batch_timeout, concurrency=CONCURRENCY, poll=0.05))


async def subscribe(db: Database, url: str, batch: int) -> None:
    await SubscriptionStore(db).add(url=f"{url}/hook", now=utc_now(), actor="bench",
                                    events=EventFilter(), batch_size=batch)


def envelopes(n: int) -> list[dict[str, Any]]:
    return [{"id": f"evt_{uuid.uuid4().hex}", "type": "call.ended", "sequence": i,
             "stream": f"call:bench-{i % 500}", "shop_id": "shop1",
             "occurred_at": utc_now().isoformat(), "recorded_at": utc_now().isoformat(),
             "data": {"call_id": f"bench-{i}", "duration": 30}} for i in range(n)]


async def direct(client: httpx.AsyncClient, url: str, batches: list[list[dict[str, Any]]]
                 ) -> None:
    queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
    for b in batches:
        queue.put_nowait(b)

    async def one() -> None:
        while not queue.empty():
            batch = queue.get_nowait()
            await client.post(f"{url}/hook", content=json.dumps({"events": batch}))

    await asyncio.gather(*(one() for _ in range(CONCURRENCY)))


async def drain(pg: bool, n: int, client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    await client.post(f"{url}/reset")
    items = envelopes(n)
    t0 = time.perf_counter()
    await direct(client, url, [items[i:i + BATCH] for i in range(0, n, BATCH)])
    await wait_for(client, url, n)
    baseline = n / (time.perf_counter() - t0)
    async with database(pg) as db:
        await subscribe(db, url, BATCH)
        for i in range(0, n, 500):
            await write_events(db, [event(j) for j in range(i, min(n, i + 500))])
        await client.post(f"{url}/reset")
        w = worker(db)
        t0 = time.perf_counter()
        task = asyncio.create_task(w.run())
        await wait_for(client, url, n)
        privnum = n / (time.perf_counter() - t0)
        await w.stop()
        await task
    return {"events": n, "baseline_events_per_s": round(baseline, 1),
            "privnum_events_per_s": round(privnum, 1), "ratio": ratio(privnum, baseline)}


async def produce(rate: float, seconds: float, emit: Any) -> int:
    count = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        due = int(elapsed * rate) + 1
        while count < due:
            await emit(count)
            count += 1
        await asyncio.sleep(1 / rate)
    return count


async def steady(pg: bool, rate: float, seconds: float, client: httpx.AsyncClient, url: str
                 ) -> dict[str, Any]:
    await client.post(f"{url}/reset")

    async def post_now(i: int) -> None:
        await client.post(f"{url}/hook", content=json.dumps({"events": envelopes(1)}))

    sent = await produce(rate, seconds, post_now)
    base_lags = await wait_for(client, url, sent)
    async with database(pg) as db:
        await subscribe(db, url, 10)
        await client.post(f"{url}/reset")
        w = worker(db)
        task = asyncio.create_task(w.run())

        async def commit(i: int) -> None:
            await write_events(db, [event(i)])

        sent = await produce(rate, seconds, commit)
        lags = await wait_for(client, url, sent)
        await w.stop()
        await task
    base, ours = latency_summary(base_lags), latency_summary(lags)
    return {"rate_per_s": rate, "seconds": seconds, "events": sent, "baseline_lag": base,
            "privnum_lag": ours, "p99_ratio": ratio(ours["p99_ms"], base["p99_ms"])}


async def outbox_cost(pg: bool, attempts: int, issues: int) -> dict[str, Any]:
    """Outbox on and off in the same database, interleaved (chunks of attempts, one issue
    each in turn), so the machine's noise falls on both alike."""
    rounds = 6
    seconds = {False: 0.0, True: 0.0}
    times: dict[bool, list[float]] = {False: [], True: []}
    async with database(pg) as db:
        await seed_issue(db, 2 * issues)
        for r in range(rounds):
            for enabled in (r % 2 == 0, r % 2 == 1):
                writer = AttemptWriter(db, batch_size=100, linger=0.005,
                                       outbox=Outbox(enabled=enabled))
                writer.start()
                now = utc_now()
                t0 = time.perf_counter()
                for i in range(attempts // rounds):
                    uid = f"pbx-1764331200.{r}{int(enabled)}{i}"
                    await writer.record(CallAttempt(
                        uniqueid=uid, linkedid=uid, at=now, caller_masked="137****0009",
                        caller_a="", virtual_x="+8617000000001", action=Action.REJECT,
                        reason=Reason.CALLER_NOT_AUTHORIZED, direction=None, binding_id="",
                        shop_id="", order_id="", system_name="pbx"))
                await writer.close()
                seconds[enabled] += time.perf_counter() - t0
        stores = {enabled: BindingStore(db, BuyerCipher(KeyRing.generate()),
                                        policy=BindingPolicy(cooldown=timedelta(0)),
                                        outbox=Outbox(enabled=enabled))
                  for enabled in (False, True)}
        for i in range(2 * issues):
            enabled = i % 2 == 1
            t0 = time.perf_counter()
            await stores[enabled].issue("s1", f"o{i}", "b", "+8613800000001",
                                        f"+86139{i:08d}", utc_now(), actor="bench")
            times[enabled].append(time.perf_counter() - t0)
    per = rounds * (attempts // rounds)
    out: dict[str, Any] = {
        ("outbox_on" if on else "outbox_off"): {
            "attempts_per_s": round(per / seconds[on], 1),
            "issue": latency_summary(times[on])} for on in (False, True)}
    out["attempts_ratio"] = ratio(out["outbox_on"]["attempts_per_s"],
                                  out["outbox_off"]["attempts_per_s"])
    out["issue_p50_ratio"] = ratio(out["outbox_on"]["issue"]["p50_ms"],
                                   out["outbox_off"]["issue"]["p50_ms"])
    return out


async def seed_issue(db: Database, n: int) -> None:
    now = utc_now()
    async with db.session() as s:
        s.add(Shop(id="s1", name="s1", service_state="enabled", created_at=now, updated_at=now))
        await s.flush()
        s.add(Account(id="s1-main", shop_id="s1", role="main", created_at=now))
        s.add_all(PoolNumber(number=f"+86170{i:08d}", region="bj", state="available",
                             created_at=now) for i in range(n))
        await s.flush()
        s.add(CallerNumber(shop_id="s1", number="+8613800000001", account_id="s1-main",
                           status="approved", created_at=now, updated_at=now))
        await s.commit()


async def run(quick: bool, pg: bool) -> dict[str, Any]:
    async with receiver() as url, httpx.AsyncClient(timeout=30) as client:
        drained = await drain(pg, 1000 if quick else 5000, client, url)
        lag = await steady(pg, 50 if quick else 100, 4 if quick else 10, client, url)
    cost = await outbox_cost(pg, 1000 if quick else 3000, 100 if quick else 300)
    return {"database": "postgresql" if pg else "sqlite", "drain": drained, "steady": lag,
            "outbox_cost": cost}


def main(argv: list[str]) -> None:
    result = asyncio.run(run("--quick" in argv, "--pg" in argv))
    d, s, c = result["drain"], result["steady"], result["outbox_cost"]
    print_table(f"webhook delivery ({result['database']})", ["measure", "baseline", "privnum",
                                                             "ratio"], [
        ["events/s delivered (batches of 50)", d["baseline_events_per_s"],
         d["privnum_events_per_s"], d["ratio"]],
        [f"lag p99 ms at {s['rate_per_s']:g} events/s", s["baseline_lag"]["p99_ms"],
         s["privnum_lag"]["p99_ms"], s["p99_ratio"]],
        ["lag p50 ms", s["baseline_lag"]["p50_ms"], s["privnum_lag"]["p50_ms"],
         ratio(s["privnum_lag"]["p50_ms"], s["baseline_lag"]["p50_ms"])]])
    print_table("outbox cost on the writing paths", ["measure", "outbox off", "outbox on",
                                                     "ratio"], [
        ["call attempts/s (batched writer)", c["outbox_off"]["attempts_per_s"],
         c["outbox_on"]["attempts_per_s"], c["attempts_ratio"]],
        ["binding issue p50 ms", c["outbox_off"]["issue"]["p50_ms"],
         c["outbox_on"]["issue"]["p50_ms"], c["issue_p50_ratio"]],
        ["binding issue p99 ms", c["outbox_off"]["issue"]["p99_ms"],
         c["outbox_on"]["issue"]["p99_ms"],
         ratio(c["outbox_on"]["issue"]["p99_ms"], c["outbox_off"]["issue"]["p99_ms"])]])
    name = "webhooks_pg" if "--pg" in argv else "webhooks"
    console.print(f"written to {write_result(name, result)}")


if __name__ == "__main__":
    main(sys.argv[1:])

"""What an ``Idempotency-Key`` costs a POST, and what a replay costs.

    python -m bench.api_idempotency [--requests N] [--quick]

On SQLite, through the app (httpx's ASGI transport, no network), one shop's
``POST /v1/shops/{shop}/service/disable`` (idempotent: the same work every time) is sent N
times in each of three ways, interleaved round by round so that the machine's load falls on
all alike: without a key (the baseline), with a new key each time (claim, run, keep), and
with one key again and again (the kept response replayed). Reported: the median latency of
each and its ratio to the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx

from api.app import create_app
from api.metrics import Metrics
from bench.common import console, print_table, ratio, write_result
from binding_store import migrate
from binding_store.crypto import KeyRing
from binding_store.db import Database
from binding_store.models import Shop
from binding_store.tokens import TokenStore
from scripts.container import Container
from scripts.http_service import api_services
from scripts.settings import Settings

NAME = "api_idempotency"
SHOP = "bench-shop"


async def _timed(client: httpx.AsyncClient, headers: dict[str, str]) -> float:
    started = time.perf_counter()
    response = await client.post(f"/v1/shops/{SHOP}/service/disable", headers=headers)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text
    return elapsed


async def run(requests: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        await asyncio.to_thread(migrate.upgrade, url)
        KeyRing.generate().save(Path(tmp) / "keys.json")
        db = Database(url, timeout=30.0)
        now = datetime.now(UTC)
        async with db.session() as session:
            session.add(Shop(id=SHOP, name="bench", service_state="enabled", created_at=now,
                             updated_at=now))
            await session.commit()
        token = (await TokenStore(db).issue(now=now, admin=True)).secret
        settings = Settings(data_dir=Path(tmp), database={"url": url},
                            keys={"file": Path(tmp) / "keys.json"})
        app = create_app(api_services(Container(settings, database=db), Metrics()))
        auth = {"Authorization": f"Bearer {token}"}
        replayed = {**auth, "Idempotency-Key": "bench-replay"}
        times: dict[str, list[float]] = {"plain": [], "new key": [], "replay": []}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://bench") as client:
            await _timed(client, replayed)  # the replayed key's first (kept) run
            for _ in range(requests):
                times["plain"].append(await _timed(client, auth))
                times["new key"].append(await _timed(
                    client, {**auth, "Idempotency-Key": str(uuid.uuid4())}))
                times["replay"].append(await _timed(client, replayed))
        await db.dispose()
    median = {k: statistics.median(v) for k, v in times.items()}
    print_table(f"POST with and without Idempotency-Key, SQLite, {requests} each, median",
                ["request", "ms", "ratio to no key"],
                [[k, round(v * 1000, 2), ratio(v, median["plain"])] for k, v in median.items()])
    return {"requests": requests, "median_seconds": median,
            "new_key_ratio": ratio(median["new key"], median["plain"]),
            "replay_ratio": ratio(median["replay"], median["plain"])}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.api_idempotency")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--quick", action="store_true", help="50 requests each")
    args = parser.parse_args(argv)
    result = asyncio.run(run(50 if args.quick else args.requests))
    console.print(f"written {write_result(NAME, result)}")


if __name__ == "__main__":
    main()

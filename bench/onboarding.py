"""A platform onboards shops over the HTTP API alone, with no shell on the privnum host.

    python -m bench onboarding [--quick]
    python -m bench.onboarding [--shops N] [--concurrency C]

For each shop, with the platform credential only: enable the service (agreement version, main
account and phone, time zone), add two sub-accounts (one recorded as reviewed at once, one
reviewed afterwards), enable their phones as caller numbers in one batch (a bad row shows its
own result), issue the main account's token and read the shop's status with it. Seven requests
a shop, through the app (ASGI, no network), on SQLite.

Baseline, in the same run and database: as many authenticated reads of a shop's status
(``GET /v1/shops/{shop}/service``) as onboarding made requests. Reported: shops/s, requests/s,
and onboarding requests/s ÷ baseline requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from api.app import create_app
from api.metrics import Metrics
from bench.common import console, print_table, ratio, write_result
from binding_store import migrate
from binding_store.crypto import KeyRing
from binding_store.db import Database
from binding_store.tokens import TokenStore
from scripts.container import Container
from scripts.http_service import api_services
from scripts.settings import Settings

NAME = "onboarding"
REQUESTS_PER_SHOP = 7
AGREEMENT = "2025-01"


def shop_id(i: int) -> str:
    return f"onb-{i:05d}"


def phones(i: int) -> tuple[str, str, str]:
    """(main, sub 1, sub 2) mobiles of shop ``i``."""
    return f"+86139{i:08d}", f"+86137{i:08d}", f"+86136{i:08d}"


@dataclass
class Onboarded:
    shop_id: str
    token: str
    callers_added: int
    refused_rows: list[str] = field(default_factory=list)


class OnboardingFailed(Exception):
    pass


def _ok(r: httpx.Response, *expected: int) -> dict[str, object]:
    if r.status_code not in expected:
        raise OnboardingFailed(f"{r.request.method} {r.request.url.path}: {r.status_code} "
                               f"{r.text[:300]}")
    body = r.json()
    assert isinstance(body, dict)
    return body


async def onboard_shop(client: httpx.AsyncClient, platform: str, i: int) -> Onboarded:
    """One shop, the platform credential only: seven requests."""
    auth = {"Authorization": f"Bearer {platform}"}
    shop = shop_id(i)
    main, sub1, sub2 = phones(i)
    base = f"/v1/shops/{shop}"
    _ok(await client.post(f"{base}/service/enable", headers=auth, json={
        "agreement_version": AGREEMENT, "main_account_id": f"{shop}-main", "main_phone": main,
        "timezone": "Asia/Shanghai"}), 200)
    _ok(await client.post(f"{base}/accounts", headers=auth, json={
        "account_id": f"{shop}-s1", "phone": sub1, "name": "clerk 1",
        "phone_reviewed": True}), 201)
    _ok(await client.post(f"{base}/accounts", headers=auth, json={
        "account_id": f"{shop}-s2", "phone": sub2, "name": "clerk 2"}), 201)
    _ok(await client.put(f"{base}/accounts/{shop}-s2/review", headers=auth,
                         json={"reviewed": True}), 200)
    batch = _ok(await client.post(f"{base}/callers/batch", headers=auth, json={"rows": [
        {"number": sub1, "account_id": f"{shop}-s1"},
        {"number": sub2, "account_id": f"{shop}-s2"},
        {"number": "not-a-number"}]}), 200)
    token = _ok(await client.post("/v1/tokens", headers=auth, json={
        "kind": "account", "shop_id": shop, "account_id": f"{shop}-main",
        "label": "shop backend"}), 201)
    secret = str(token["secret"])
    status = _ok(await client.get(f"{base}/service",
                                  headers={"Authorization": f"Bearer {secret}"}), 200)
    if status["service_state"] != "enabled":
        raise OnboardingFailed(f"{shop}: service {status['service_state']}")
    rows = batch["rows"]
    assert isinstance(rows, list)
    return Onboarded(shop_id=shop, token=secret, callers_added=int(str(batch["added"])),
                     refused_rows=[str(r["outcome"]) for r in rows if r["outcome"] != "ok"])


async def onboard(client: httpx.AsyncClient, platform: str, shops: range,
                  concurrency: int = 4) -> list[Onboarded]:
    """Onboard ``shops`` (indexes), ``concurrency`` at a time; in index order."""
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> Onboarded:
        async with gate:
            return await onboard_shop(client, platform, i)

    return list(await asyncio.gather(*(one(i) for i in shops)))


async def _reads(client: httpx.AsyncClient, platform: str, shops: range, count: int,
                 concurrency: int) -> None:
    gate = asyncio.Semaphore(concurrency)
    auth = {"Authorization": f"Bearer {platform}"}
    ids = [shop_id(i) for i in shops]

    async def one(n: int) -> None:
        async with gate:
            _ok(await client.get(f"/v1/shops/{ids[n % len(ids)]}/service", headers=auth), 200)

    await asyncio.gather(*(one(n) for n in range(count)))


async def run(shops: int, concurrency: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        await asyncio.to_thread(migrate.upgrade, url)
        KeyRing.generate().save(Path(tmp) / "keys.json")
        db = Database(url, timeout=30.0)
        # The one token minted at the host: the platform's; everything else is HTTP.
        platform = (await TokenStore(db).issue(now=datetime.now(UTC), admin=True)).secret
        settings = Settings(data_dir=Path(tmp), database={"url": url},
                            keys={"file": Path(tmp) / "keys.json"})
        app = create_app(api_services(Container(settings, database=db), Metrics()))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            started = time.perf_counter()
            done = await onboard(client, platform, range(shops), concurrency)
            onboarding = time.perf_counter() - started
            requests = shops * REQUESTS_PER_SHOP
            started = time.perf_counter()
            await _reads(client, platform, range(shops), requests, concurrency)
            baseline = time.perf_counter() - started
        await db.dispose()
    callers = sum(d.callers_added for d in done)
    shop_rate, request_rate = shops / onboarding, requests / onboarding
    baseline_rate = requests / baseline
    print_table(f"Onboarding {shops} shops over the API ({REQUESTS_PER_SHOP} requests a shop, "
                f"{concurrency} at a time, SQLite)",
                ["measure", "seconds", "per second", "ratio to baseline requests/s"],
                [["onboarding (shops/s)", round(onboarding, 2), round(shop_rate, 1), ""],
                 ["onboarding (requests/s)", round(onboarding, 2), round(request_rate, 1),
                  ratio(request_rate, baseline_rate)],
                 ["baseline: status reads (requests/s)", round(baseline, 2),
                  round(baseline_rate, 1), 1.0]])
    return {"shops": shops, "concurrency": concurrency, "requests": requests,
            "onboarding_seconds": onboarding, "shops_per_second": shop_rate,
            "requests_per_second": request_rate, "baseline_requests_per_second": baseline_rate,
            "ratio_to_baseline": ratio(request_rate, baseline_rate),
            "caller_numbers_added": callers}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.onboarding")
    parser.add_argument("--shops", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="100 shops")
    args = parser.parse_args(argv)
    result = asyncio.run(run(100 if args.quick else args.shops, args.concurrency))
    console.print(f"written {write_result(NAME, result)}")


if __name__ == "__main__":
    main()

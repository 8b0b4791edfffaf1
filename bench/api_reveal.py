"""Reveal ("little eye") throughput of the HTTP API at concurrency 50 on PostgreSQL + Redis.

``python -m bench.api_reveal [--seconds 8] [--concurrency 50]``

One ``privnum api`` server process (uvicorn, one worker) on a scratch PostgreSQL database with
Redis counters and index; this process drives it with ``concurrency`` keep-alive connections.
In the same run, against the same server: the baseline ``GET /livez`` (no I/O), then
``reveal-new`` (a new order each time: risk policy, counters, binding allocation once the
daily plaintext quota is used up) and ``reveal-repeat`` (the same orders again: the existing
binding comes back). Prints a table and writes ``bench/results/api_reveal.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    REDIS_URL,
    ROOT,
    clear_redis_prefix,
    console,
    latency_summary,
    print_table,
    proc_cpu_seconds,
    ratio,
    redis_prefix,
    scratch_pg,
    write_result,
)
from binding_store.accounts import AccountRepository
from binding_store.all_models import Base
from binding_store.callers import CallerRepository
from binding_store.crypto import KeyRing
from binding_store.db import Database
from binding_store.pool import PoolRepository
from binding_store.shops import ShopRepository
from binding_store.tokens import TokenStore

SHOP, MAIN = "bench-shop", "bench-main"
ACCOUNTS = 10
PORT = int(os.environ.get("PRIVNUM_BENCH_API_PORT", "18457"))
POLICY = """[risk]
timezone = "Asia/Shanghai"
daily_plaintext_quota = 200
velocity_limit = 1000000
velocity_window_seconds = 60
"""


async def seed(url: str, pool_size: int) -> list[str]:
    """Shop, main + sub-accounts (each with its own approved caller number), pool, tokens."""
    now = datetime.now(UTC)
    db = Database(url, timeout=10.0)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        await PoolRepository(db).import_csv(
            ["number,region"] + [f"+86170{i:08d},east" for i in range(pool_size)], now=now)
        await ShopRepository(db).enable(SHOP, now=now, main_account_id=MAIN,
                                        main_phone="+8613800000000", agreement_version="bench",
                                        level="L2")
        accounts, callers = AccountRepository(db), CallerRepository(db)
        tokens = TokenStore(db)
        secrets = [(await tokens.issue(now=now, shop_id=SHOP, account_id=MAIN)).secret]
        for i in range(1, ACCOUNTS):
            account, phone = f"bench-sub-{i}", f"+86138{i:08d}"
            await accounts.add_sub_account(SHOP, account, actor=MAIN, now=now, phone=phone,
                                           phone_reviewed=True)
            await callers.add(SHOP, phone, actor=MAIN, now=now, account_id=account)
            secrets.append((await tokens.issue(now=now, shop_id=SHOP, account_id=account)).secret)
        return secrets
    finally:
        await db.dispose()


def start_server(url: str, prefix: str, workdir: Path) -> subprocess.Popen[bytes]:
    KeyRing.generate().save(workdir / "keys.json")
    (workdir / "risk.toml").write_text(POLICY, encoding="utf-8")
    env = {**os.environ,
           "PRIVNUM_DATA_DIR": str(workdir),
           "PRIVNUM_DATABASE__URL": url,
           "PRIVNUM_DATABASE__POOL_SIZE": "20",
           "PRIVNUM_REDIS__URL": REDIS_URL,
           "PRIVNUM_REDIS__PREFIX": prefix,
           "PRIVNUM_KEYS__FILE": str(workdir / "keys.json"),
           "PRIVNUM_RISK_POLICY_FILE": str(workdir / "risk.toml"),
           "PRIVNUM_LOG_LEVEL": "WARNING"}
    env.pop("PRIVNUM_CONFIG", None)
    return subprocess.Popen([sys.executable, "-c", "from scripts.cli import main; main()",
                             "api", "--port", str(PORT)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def wait_up(client: httpx.AsyncClient, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(200):
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise SystemExit(f"api server exited: {err.strip()[-500:]}")
        try:
            if (await client.get("/livez")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit("api server did not start")


Request = Callable[[httpx.AsyncClient, int, int], Awaitable[httpx.Response]]


async def drive(client: httpx.AsyncClient, request: Request, seconds: float, workers: int
                ) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        n = 0
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            response = await request(client, w, n)
            latencies.append(time.perf_counter() - began)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            n += 1

    began = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(workers)))
    elapsed = time.perf_counter() - began
    return {"requests": len(latencies), "seconds": round(elapsed, 3),
            "rps": round(len(latencies) / elapsed, 1), "statuses": statuses,
            **latency_summary(latencies)}


async def run(seconds: float, workers: int) -> dict[str, Any]:
    prefix = redis_prefix("api")
    async with scratch_pg("api") as url:
        tokens = await seed(url, pool_size=20_000)
        with tempfile.TemporaryDirectory() as tmp:
            proc = start_server(url, prefix, Path(tmp))
            limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
            try:
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{PORT}",
                                             limits=limits, timeout=30.0) as client:
                    await wait_up(client, proc)
                    heads = [{"Authorization": f"Bearer {t}"} for t in tokens]
                    done: dict[int, int] = {}

                    async def livez(c: httpx.AsyncClient, w: int, n: int) -> httpx.Response:
                        return await c.get("/livez")

                    async def reveal_new(c: httpx.AsyncClient, w: int, n: int
                                         ) -> httpx.Response:
                        done[w] = n + 1
                        body = {"buyer_number": f"+86139{w:03d}{n:05d}", "buyer_id": f"b{w}-{n}"}
                        return await c.post(f"/v1/orders/o-{w}-{n}/reveal", json=body,
                                            headers=heads[w % len(heads)])

                    async def reveal_repeat(c: httpx.AsyncClient, w: int, n: int
                                            ) -> httpx.Response:
                        k = n % max(1, done.get(w, 1))
                        body = {"buyer_number": f"+86139{w:03d}{k:05d}", "buyer_id": f"b{w}-{k}"}
                        return await c.post(f"/v1/orders/o-{w}-{k}/reveal", json=body,
                                            headers=heads[w % len(heads)])

                    await drive(client, livez, 1.0, workers)  # warm-up
                    results: dict[str, Any] = {}
                    cpu0 = proc_cpu_seconds(proc.pid)
                    for name, request in (("baseline GET /livez", livez),
                                          ("reveal-new", reveal_new),
                                          ("reveal-repeat", reveal_repeat)):
                        before = proc_cpu_seconds(proc.pid)
                        results[name] = await drive(client, request, seconds, workers)
                        results[name]["server_cpu_s"] = round(
                            proc_cpu_seconds(proc.pid) - before, 2)
                    results["server_cpu_total_s"] = round(proc_cpu_seconds(proc.pid) - cpu0, 2)
                    return results
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                clear_redis_prefix(prefix)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.api_reveal")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args(argv)
    results = asyncio.run(run(args.seconds, args.concurrency))
    base = results["baseline GET /livez"]["rps"]
    rows = []
    for name in ("baseline GET /livez", "reveal-new", "reveal-repeat"):
        r = results[name]
        rows.append([name, r["requests"], r["rps"], ratio(r["rps"], base), r["p50_ms"],
                     r["p99_ms"], r["server_cpu_s"],
                     " ".join(f"{k}:{v}" for k, v in sorted(r["statuses"].items()))])
    print_table(f"HTTP API at concurrency {args.concurrency}, {args.seconds:g} s each "
                "(PostgreSQL + Redis, 1 uvicorn worker)",
                ["scenario", "requests", "req/s", "x baseline", "p50 ms", "p99 ms",
                 "server CPU s", "statuses"], rows)
    path = write_result("api_reveal", {"concurrency": args.concurrency,
                                       "seconds": args.seconds, "results": results})
    console.print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

"""Reveal ("little eye") throughput of the HTTP API at concurrency 50 on PostgreSQL + Redis.

``python -m bench.api_reveal [--seconds 8] [--concurrency 50]``

One ``privnum api`` server process (uvicorn, one worker) on a scratch PostgreSQL database with
Redis counters and index; this process drives it with ``concurrency`` keep-alive connections.
In the same run, against the same server: the baseline ``GET /livez`` (no I/O), then
``reveal-new`` (a new order each time: risk policy, counters; the first 100 are plaintext
(the daily quota), the rest allocate a privacy number) and ``reveal-repeat`` (the orders that
got a privacy number, clicked again: the existing binding comes back). Prints a table and
writes ``bench/results/api_reveal.json``.

Every order is registered first, as the platform does (``PUT /v1/orders/{id}``): a reveal of
an unregistered order is a 404, which measures nothing. The orders are written in bulk
before the server starts (encrypted with the server's key ring), so the measured phases are
reveals only; any status other than 200 is reported and marks the run as not honest.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert

from bench.common import (
    REDIS_URL,
    RESULTS,
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
from binding_store.api_models import Order
from binding_store.callers import CallerRepository
from binding_store.crypto import BuyerCipher, KeyRing
from binding_store.db import Database
from binding_store.pool import PoolRepository
from binding_store.shops import ShopRepository
from binding_store.tokens import TokenStore
from routing.numbers import mask
from routing.orders import OrderStatus

SHOP, MAIN = "bench-shop", "bench-main"
ACCOUNTS = 10
PORT = int(os.environ.get("PRIVNUM_BENCH_API_PORT", "18457"))
POLICY = """[risk]
timezone = "Asia/Shanghai"
daily_plaintext_quota = 100
velocity_limit = 1000000
velocity_window_seconds = 60
"""


def buyer_of(w: int, k: int) -> tuple[str, str]:
    """Worker ``w``'s ``k``-th order: its buyer number and buyer id."""
    return f"+86139{w:03d}{k:05d}", f"b{w}-{k}"


def order_id(w: int, k: int) -> str:
    return f"o-{w}-{k}"


async def register_orders(db: Database, ring: KeyRing, workers: int, per_worker: int,
                          now: datetime) -> None:
    """What the platform's ``PUT /v1/orders/{id}`` stores, in bulk: the bench measures the
    reveal, not the registration."""
    cipher = BuyerCipher(ring)
    ordered = now - timedelta(minutes=5)
    rows = []
    for w in range(workers):
        for k in range(per_worker):
            number, buyer = buyer_of(w, k)
            rows.append({"shop_id": SHOP, "order_id": order_id(w, k),
                         "buyer_cipher": cipher.encrypt(number), "buyer_masked": mask(number),
                         "buyer_id": buyer, "ordered_at": ordered, "status": OrderStatus.PAID.value,
                         "created_at": now, "updated_at": now})
    async with db.engine.begin() as conn:
        for i in range(0, len(rows), 5_000):
            await conn.execute(insert(Order), rows[i:i + 5_000])


async def seed(url: str, pool_size: int, ring: KeyRing, workers: int, per_worker: int
               ) -> list[str]:
    """Shop, main + sub-accounts (each with its own approved caller number), pool, tokens,
    the registered orders."""
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
        await register_orders(db, ring, workers, per_worker, now)
        return secrets
    finally:
        await db.dispose()


def start_server(url: str, prefix: str, workdir: Path, ring: KeyRing,
                 profile: Path | None = None) -> subprocess.Popen[bytes]:
    ring.save(workdir / "keys.json")
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
    # --profile: the server runs under pyinstrument (wall-clock samples, written at SIGTERM).
    runner = ([sys.executable, "-m", "pyinstrument", "-r", "text", "-o", str(profile),
               "-m", "scripts.cli"] if profile else
              [sys.executable, "-c", "from scripts.cli import main; main()"])
    return subprocess.Popen([*runner, "api", "--port", str(PORT)], cwd=ROOT, env=env,
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


class Conn:
    """A minimal HTTP/1.1 keep-alive client: the load driver must cost far less than the
    server, or the baseline measures the driver (httpx costs ~5 ms CPU per request)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes = b"",
                      headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1",
                f"Content-Length: {len(body)}"]
        if body:
            head.append("Content-Type: application/json")
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        status_line = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return int(status_line.split()[1]), await self.reader.readexactly(length)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()


# A request answers (status, body), or None when the worker has nothing left to send.
Request = Callable[[Conn, int, int], Awaitable[tuple[int, bytes] | None]]


async def drive(conns: list[Conn], request: Request, seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    exhausted: list[int] = []
    deadline = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        n = 0
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            answer = await request(conns[w], w, n)
            if answer is None:
                exhausted.append(w)
                return
            status = answer[0]
            latencies.append(time.perf_counter() - began)
            statuses[status] = statuses.get(status, 0) + 1
            n += 1

    began, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker(w) for w in range(len(conns))))
    elapsed = time.perf_counter() - began
    return {"requests": len(latencies), "seconds": round(elapsed, 3),
            "client_cpu_s": round(time.process_time() - cpu, 2),
            "rps": round(len(latencies) / elapsed, 1), "statuses": statuses,
            "workers_out_of_orders": len(exhausted),
            **latency_summary(latencies)}


# Orders registered per worker: more than a worker can reveal in the phase at this box's best
# rate so far, so "reveal-new" never runs out (a worker that does stops and it is reported).
ORDERS_PER_SECOND_PER_WORKER = 40


async def run(seconds: float, workers: int, profile: Path | None = None) -> dict[str, Any]:
    prefix = redis_prefix("api")
    per_worker = max(100, int(seconds * ORDERS_PER_SECOND_PER_WORKER))
    ring = KeyRing.generate()
    async with scratch_pg("api") as url:
        tokens = await seed(url, pool_size=20_000, ring=ring, workers=workers,
                            per_worker=per_worker)
        with tempfile.TemporaryDirectory() as tmp:
            proc = start_server(url, prefix, Path(tmp), ring, profile)
            conns = [Conn(PORT) for _ in range(workers)]
            try:
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{PORT}") as client:
                    await wait_up(client, proc)
                heads = [{"Authorization": f"Bearer {t}"} for t in tokens]
                bound: dict[int, list[int]] = {}  # orders that got a privacy number, per worker

                async def livez(c: Conn, w: int, n: int) -> tuple[int, bytes]:
                    return await c.request("GET", "/livez")

                def reveal_of(w: int, k: int) -> tuple[str, bytes]:
                    # an older client's body: it must match the registered order
                    number, buyer = buyer_of(w, k)
                    body = json.dumps({"buyer_number": number, "buyer_id": buyer}).encode()
                    return f"/v1/orders/{order_id(w, k)}/reveal", body

                async def reveal_new(c: Conn, w: int, n: int) -> tuple[int, bytes] | None:
                    if n >= per_worker:
                        return None  # this worker's registered orders are used up
                    path, body = reveal_of(w, n)
                    status, answer = await c.request("POST", path, body, heads[w % len(heads)])
                    if status == 200 and json.loads(answer)["decision"] == "privacy":
                        bound.setdefault(w, []).append(n)
                    return status, answer

                async def reveal_repeat(c: Conn, w: int, n: int) -> tuple[int, bytes]:
                    orders = bound.get(w) or [0]
                    path, body = reveal_of(w, orders[n % len(orders)])
                    return await c.request("POST", path, body, heads[w % len(heads)])

                await drive(conns, livez, 1.0)  # warm-up
                results: dict[str, Any] = {}
                cpu0 = proc_cpu_seconds(proc.pid)
                for name, request in (("baseline GET /livez", livez),
                                      ("reveal-new", reveal_new),
                                      ("reveal-repeat", reveal_repeat)):
                    before = proc_cpu_seconds(proc.pid)
                    results[name] = await drive(conns, request, seconds)
                    results[name]["server_cpu_s"] = round(proc_cpu_seconds(proc.pid) - before, 2)
                results["server_cpu_total_s"] = round(proc_cpu_seconds(proc.pid) - cpu0, 2)
                results["reveal-new"]["privacy_decisions"] = sum(len(v) for v in bound.values())
                return results
            finally:
                for conn in conns:
                    await conn.close()
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
    parser.add_argument("--quick", action="store_true", help="3 s per scenario")
    parser.add_argument("--profile", action="store_true",
                        help="profile the server (bench/results/api_reveal_profile.txt)")
    args = parser.parse_args(argv)
    profile = RESULTS / "api_reveal_profile.txt" if args.profile else None
    if profile:
        RESULTS.mkdir(parents=True, exist_ok=True)
    if args.quick:
        args.seconds = 3.0
    results = asyncio.run(run(args.seconds, args.concurrency, profile))
    base = results["baseline GET /livez"]["rps"]
    rows = []
    for name in ("baseline GET /livez", "reveal-new", "reveal-repeat"):
        r = results[name]
        rows.append([name, r["requests"], r["rps"], ratio(r["rps"], base), r["p50_ms"],
                     r["p99_ms"], r["server_cpu_s"], r["client_cpu_s"],
                     " ".join(f"{k}:{v}" for k, v in sorted(r["statuses"].items()))])
    print_table(f"HTTP API at concurrency {args.concurrency}, {args.seconds:g} s each "
                "(PostgreSQL + Redis, 1 uvicorn worker)",
                ["scenario", "requests", "req/s", "x baseline", "p50 ms", "p99 ms",
                 "server CPU s", "client CPU s", "statuses"], rows)
    failed = {name: {k: v for k, v in results[name]["statuses"].items() if k != 200}
              for name in ("baseline GET /livez", "reveal-new", "reveal-repeat")}
    failed = {name: bad for name, bad in failed.items() if bad}
    new = results["reveal-new"]
    console.print(f"reveal-new: {new['privacy_decisions']} privacy numbers issued, the rest "
                  f"plaintext; workers out of registered orders: {new['workers_out_of_orders']}")
    if failed:
        console.print(f"[red]NOT HONEST: requests that did not succeed: {failed}[/red]")
    path = write_result("api_reveal", {"concurrency": args.concurrency,
                                       "seconds": args.seconds, "results": results})
    console.print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

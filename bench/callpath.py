"""The call path at a platform's peak: the lean path against the floor, every core, a burst
on the embedded store.

    python -m bench callpath [--quick] [--rounds N] [--calls N] [--only lean|workers|burst]

Every comparison is measured in the same run with the same driver (``bench.agi_driver``, one
process), rounds interleaved, each server a fresh process:

(lean) the no-op FastAGI floor (``bench.wiring.FloorHandler``: the same answer, no look-up)
    against privnum on PostgreSQL + Redis (``route_stack``, the shipped wiring), at C = 100
    and C = 10. Target: privnum >= 0.6 x floor calls/s at both.
(workers) ``privnum serve --workers 2`` against ``--workers 1`` (PostgreSQL + Redis, API off),
    C = 100. Target: >= 1.6 x. The driver shares the two cores with the servers.
(burst) privnum on SQLite at C = 100 with the look-up queue (the default: 4 slots, queue
    inside the call's deadline) against no queue (``agi.max_concurrent_lookups = 0``, the
    previous behaviour): bound calls that failed closed, and the latency the queue costs.
    Target: 0 failed closed with the queue.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from statistics import median
from typing import Any

from bench.agi_driver import run_load
from bench.agi_load import calls_for, server_variant, summarize
from bench.agi_stack import Stores, seeded_stores
from bench.common import print_table, proc_cpu_seconds, ratio, write_result

NAME = "callpath"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@asynccontextmanager
async def serve_process(env: dict[str, str], workers: int) -> AsyncIterator[tuple[int, int]]:
    """``privnum serve --workers N`` (FastAGI only); (port, pid) once every worker listens."""
    port = free_port()
    run_env = {**env, "PRIVNUM_AGI__PORT": str(port), "PRIVNUM_API__ENABLED": "false",
               "PRIVNUM_LOG_LEVEL": "INFO", "PRIVNUM_AGI__SHUTDOWN_GRACE_SECONDS": "5"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "scripts.cli", "serve", "--workers", str(workers), env=run_env,
        stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL)
    assert proc.stderr is not None
    want = "serving calls" if workers > 1 else "privnum serving FastAGI on"
    seen = 0
    tail: list[bytes] = []
    drain: asyncio.Task[None] | None = None
    try:
        async with asyncio.timeout(120):
            while seen < workers:
                line = await proc.stderr.readline()
                if not line:
                    raise RuntimeError(f"privnum serve did not start: {b''.join(tail[-20:])!r}")
                tail.append(line)
                seen += want.encode() in line
        # Keep reading its log (one line per call) so the pipe never blocks the server.
        drain = asyncio.create_task(_drain(proc.stderr))
        yield port, proc.pid
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(60):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if drain is not None:
            drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drain


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


def tree_cpu(pid: int) -> float:
    return proc_cpu_seconds(pid) + sum(proc_cpu_seconds(c) for c in children(pid))


async def workers_variant(stores: Stores, workers: int, calls: int, concurrency: int,
                          max_seconds: float, tag: str) -> dict[str, Any]:
    warmup = max(100, calls // 20)
    envs, expected, _ = calls_for(stores, warmup + calls, tag)
    async with serve_process(stores.pg_env, workers) as (port, pid):
        await run_load("127.0.0.1", port, envs[:warmup], expected[:warmup], concurrency)
        cpu0 = tree_cpu(pid)
        res = await run_load("127.0.0.1", port, envs[warmup:], expected[warmup:], concurrency,
                             max_seconds=max_seconds)
        cpu = tree_cpu(pid) - cpu0
    return summarize(f"serve --workers {workers}", res, cpu)


def _row(v: dict[str, Any]) -> list[Any]:
    return [v["variant"], v["calls_per_s"], v["decision"]["p50_ms"], v["decision"]["p99_ms"],
            v.get("server_cpu_us_per_call", "-"), v["lost"], v["wrong_action"]]


COLUMNS = ["variant", "calls/s", "p50 ms", "p99 ms", "srv CPU us/call", "lost", "wrong*"]


async def lean(stores: Stores, rounds: int, calls: int, max_seconds: float
               ) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for c in (100, 10):
        rows: list[dict[str, Any]] = []
        ratios = []
        for r in range(rounds):
            warmup = max(50, calls // 50)
            envs, _, _ = calls_for(stores, warmup + calls, f"f{os.getpid()}{c}{r}")
            floor = await server_variant(f"floor C={c} #{r + 1}", "floor", stores.pg_env,
                                         envs, [None] * len(envs), c, warmup,
                                         max_seconds=max_seconds)
            envs, expected, _ = calls_for(stores, warmup + calls, f"p{os.getpid()}{c}{r}")
            route = await server_variant(f"privnum PG+Redis C={c} #{r + 1}", "route",
                                         stores.pg_env, envs, expected, c, warmup,
                                         max_seconds=max_seconds)
            rows += [floor, route]
            ratios.append(ratio(route["calls_per_s"], floor["calls_per_s"]))
        out[f"C={c}"] = {"rounds": rows, "ratios": ratios, "median_ratio": median(ratios)}
        print_table(f"lean call path vs the no-op floor, C = {c} (rounds interleaved)",
                    [*COLUMNS, "Redis hits / SQL reads"],
                    [[*_row(v), _fast(v)] for v in rows])
        print(f"privnum / floor at C = {c}: rounds {ratios}, median {median(ratios)} "
              "(target >= 0.6)")
    return out


def _fast(v: dict[str, Any]) -> str:
    fp = v.get("fast_path")
    return f"{fp['index_hits']:,} / {fp['sql_reads']:,}" if fp else "-"


async def workers(stores: Stores, rounds: int, calls: int, max_seconds: float
                  ) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    ratios = []
    for r in range(rounds):
        one = await workers_variant(stores, 1, calls, 100, max_seconds, f"w1{os.getpid()}{r}")
        two = await workers_variant(stores, 2, calls, 100, max_seconds, f"w2{os.getpid()}{r}")
        rows += [one, two]
        ratios.append(ratio(two["calls_per_s"], one["calls_per_s"]))
    print_table("privnum serve --workers 2 vs 1 (PostgreSQL + Redis), C = 100",
                COLUMNS, [_row(v) for v in rows])
    print(f"2 workers / 1 worker: rounds {ratios}, median {median(ratios)} (target >= 1.6)")
    return {"rounds": rows, "ratios": ratios, "median_ratio": median(ratios)}


async def burst(stores: Stores, rounds: int, calls: int, max_seconds: float
                ) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for r in range(rounds):
        for label, slots in (("no queue (slots 0)", "0"), ("queue (default)", "")):
            env = dict(stores.sqlite_env)
            if slots:
                env["PRIVNUM_AGI__MAX_CONCURRENT_LOOKUPS"] = slots
            warmup = max(50, calls // 50)
            envs, expected, _ = calls_for(stores, warmup + calls, f"b{os.getpid()}{r}{slots}")
            v = await server_variant(f"SQLite C=100 {label} #{r + 1}", "route", env, envs,
                                     expected, 100, warmup, max_seconds=max_seconds)
            v["bound_calls"] = sum(1 for e in expected[warmup:] if e == "bridge")
            rows.append(v)
    print_table("SQLite burst at C = 100: bound calls failed closed (* = wrong)",
                COLUMNS, [_row(v) for v in rows])
    return {"rounds": rows}


async def run(rounds: int, calls: int, max_seconds: float, only: str | None
              ) -> dict[str, Any]:
    results: dict[str, Any] = {"params": {"rounds": rounds, "calls": calls,
                                          "max_seconds": max_seconds}}
    async with seeded_stores(1_000, 10_000, tag="callpath") as stores:
        if only in (None, "lean"):
            results["lean"] = await lean(stores, rounds, calls, max_seconds)
        if only in (None, "workers"):
            results["workers"] = await workers(stores, rounds, calls, max_seconds)
        if only in (None, "burst"):
            results["burst"] = await burst(stores, rounds, calls, max_seconds)
    write_result(NAME, results)
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench callpath")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--calls", type=int)
    parser.add_argument("--max-seconds", type=float)
    parser.add_argument("--only", choices=["lean", "workers", "burst"])
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 2)
    calls = args.calls or (3_000 if args.quick else 8_000)
    max_seconds = args.max_seconds or (8.0 if args.quick else 15.0)
    return asyncio.run(run(rounds, calls, max_seconds, args.only))


if __name__ == "__main__":
    main()

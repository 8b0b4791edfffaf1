"""The call path at a platform's peak: the lean path against the floor, every core, a burst
on the embedded store.

    python -m bench callpath [--quick] [--rounds N] [--calls N] [--only lean|workers|burst]

Every comparison is measured in the same run with the same driver (``bench.agi_driver``, one
process), rounds interleaved, each server a fresh process:

(lean) the no-op FastAGI floor (``bench.wiring.FloorHandler``: the same answer, no look-up)
    against privnum on PostgreSQL + Redis (``route_stack``, the shipped wiring, logging as
    shipped: a line per call at INFO, to a file; ``--log-level WARNING``: no line;
    ``--log-flush-seconds S``: lines in batches), at
    C = 100 and C = 10. Target: privnum >= 0.6 x floor calls/s at both.
(workers) ``privnum serve --workers 2`` against ``--workers 1`` (PostgreSQL + Redis, API off),
    C = 100. Target: >= 1.6 x. The driver, PostgreSQL and Redis share the cores with the
    servers, so each round also reports every party's CPU per call and the ratio those
    allow (``scaling_bound``), and the ratio as a share of it.
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
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from statistics import median
from typing import Any

from bench.agi_driver import run_load
from bench.agi_load import calls_for, server_variant, summarize
from bench.agi_stack import Stores, seeded_stores
from bench.common import (
    box_cpu,
    children,
    cores,
    cpu_of,
    database_backends,
    print_table,
    proc_cpu_seconds,
    ratio,
    server_pids,
    write_result,
)

NAME = "callpath"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@asynccontextmanager
async def serve_process(env: dict[str, str], workers: int) -> AsyncIterator[tuple[int, int]]:
    """``privnum serve --workers N`` (FastAGI only); (port, pid) once every worker listens.

    Its log (INFO, the shipped default: a line per call) goes to a file, not through this
    process: reading it here put the servers' log on the driver's CPU, beside the calls."""
    port = free_port()
    run_env = {**env, "PRIVNUM_AGI__PORT": str(port), "PRIVNUM_API__ENABLED": "false",
               "PRIVNUM_LOG_LEVEL": "INFO", "PRIVNUM_AGI__SHUTDOWN_GRACE_SECONDS": "5"}
    log_path = Path(tempfile.gettempdir()) / f"privnum_serve_{os.getpid()}_{port}.log"
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "scripts.cli", "serve", "--workers", str(workers),
            env=run_env, stderr=log, stdout=asyncio.subprocess.DEVNULL)
    want = ("serving calls" if workers > 1 else "privnum serving FastAGI on").encode()
    try:
        async with asyncio.timeout(120):
            while (text := await asyncio.to_thread(log_path.read_bytes)).count(want) < workers:
                if proc.returncode is not None:
                    raise RuntimeError(f"privnum serve did not start: {text[-2000:]!r}")
                await asyncio.sleep(0.05)
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
        with contextlib.suppress(OSError):
            log_path.unlink()


def tree_cpu(pid: int) -> float:
    return proc_cpu_seconds(pid) + sum(proc_cpu_seconds(c) for c in children(pid))


async def workers_variant(stores: Stores, workers: int, calls: int, concurrency: int,
                          max_seconds: float, tag: str, redis_pid: int) -> dict[str, Any]:
    """One ``serve --workers N`` run, with the CPU of every party to the calls: the servers
    (all processes), the driver (this process), PostgreSQL (the backends on the bench's
    database) and Redis (the whole server, shared with other clients), and what the rest of
    the box used meanwhile (other processes, the kernel's interrupt work)."""
    warmup = max(100, calls // 20)
    envs, expected, _ = calls_for(stores, warmup + calls, tag)
    pg_url = stores.pg_env["PRIVNUM_DATABASE__URL"]
    async with serve_process(stores.pg_env, workers) as (port, pid):
        await run_load("127.0.0.1", port, envs[:warmup], expected[:warmup], concurrency)
        backends = database_backends(pg_url)
        before = cpu_of([*backends, redis_pid])
        cpu0, own0, box0 = tree_cpu(pid), proc_cpu_seconds(pid), box_cpu()[0]
        res = await run_load("127.0.0.1", port, envs[warmup:], expected[warmup:], concurrency,
                             max_seconds=max_seconds)
        cpu, box = tree_cpu(pid) - cpu0, box_cpu()[0] - box0
        own, processes = proc_cpu_seconds(pid) - own0, 1 + len(children(pid))
        after = cpu_of({*backends, *database_backends(pg_url), redis_pid})
    redis_cpu = after.get(redis_pid, 0.0) - before.get(redis_pid, 0.0)
    pg_cpu = sum(v - before.get(p, 0.0) for p, v in after.items() if p != redis_pid)
    out = summarize(f"serve --workers {workers}", res, cpu)  # with server_cores_used
    n = max(1, res.completed)
    out.update(
        workers=workers, server_processes=processes,
        # With workers, the parent (API, AMI, background services) apart from the call path.
        parent_cpu_us_per_call=round(own / n * 1e6) if processes > 1 else 0,
        pg_cpu_us_per_call=round(pg_cpu / n * 1e6),
        redis_cpu_us_per_call=round(redis_cpu / n * 1e6),
        pg_redis_cpu_us_per_call=round((pg_cpu + redis_cpu) / n * 1e6),
        rest_of_box_cores=round(
            (box - cpu - res.driver_cpu_seconds - pg_cpu - redis_cpu) / res.seconds, 3)
        if res.seconds else 0.0)
    return out


def _row(v: dict[str, Any]) -> list[Any]:
    return [v["variant"], v["calls_per_s"], v["decision"]["p50_ms"], v["decision"]["p99_ms"],
            v.get("server_cpu_us_per_call", "-"), v["lost"], v["wrong_action"]]


COLUMNS = ["variant", "calls/s", "p50 ms", "p99 ms", "srv CPU us/call", "lost", "wrong*"]


async def lean(stores: Stores, rounds: int, calls: int, max_seconds: float,
               log_level: str = "INFO", log_flush_seconds: float | None = None
               ) -> dict[str, Any]:
    logging_env = {"PRIVNUM_LOG_LEVEL": log_level}
    if log_flush_seconds is not None:
        logging_env["PRIVNUM_LOG__FLUSH_SECONDS"] = str(log_flush_seconds)
    out: dict[str, Any] = {}
    for c in (100, 10):
        rows: list[dict[str, Any]] = []
        ratios = []
        bounds = []
        for r in range(rounds):
            warmup = max(50, calls // 50)
            envs, _, _ = calls_for(stores, warmup + calls, f"f{os.getpid()}{c}{r}")
            floor = await server_variant(f"floor C={c} #{r + 1}", "floor", stores.pg_env,
                                         envs, [None] * len(envs), c, warmup,
                                         max_seconds=max_seconds)
            envs, expected, _ = calls_for(stores, warmup + calls, f"p{os.getpid()}{c}{r}")
            route = await server_variant(f"privnum PG+Redis C={c} #{r + 1}", "route",
                                         {**stores.pg_env, **logging_env},
                                         envs, expected, c, warmup, max_seconds=max_seconds)
            rows += [floor, route]
            ratios.append(ratio(route["calls_per_s"], floor["calls_per_s"]))
            bounds.append(cpu_bound(floor, route))
        out[f"C={c}"] = {"rounds": rows, "ratios": ratios, "median_ratio": median(ratios),
                         "cpu_bounds": bounds}
        print_table(f"lean call path vs the no-op floor, C = {c} (rounds interleaved)",
                    [*COLUMNS, "srv cores", "Redis hits / SQL reads", "writer backlog"],
                    [[*_row(v), v.get("server_cores_used", "-"), _fast(v), _backlog(v)]
                     for v in rows])
        print(f"privnum / floor at C = {c}: rounds {ratios}, median {median(ratios):.3f} "
              f"(target >= 0.6); server CPU per call, floor / privnum: {bounds}")
    return out


def cpu_bound(floor: dict[str, Any], route: dict[str, Any]) -> float:
    """The calls/s ratio the servers' CPU allows when each keeps its core busy: floor CPU
    per call over privnum's. A measured ratio near it means privnum's server is CPU-bound
    (only less work per call raises it); well below it, privnum's server also waited
    (``server_cores_used``) on the driver, Redis or PostgreSQL."""
    f, r = floor.get("server_cpu_us_per_call"), route.get("server_cpu_us_per_call")
    return ratio(f, r) if f and r else 0.0


def _backlog(v: dict[str, Any]) -> str:
    """Call attempts still queued when the load ended: a writer falling behind the calls
    (written at shutdown, after the measured window; a longer peak would fill its queue)."""
    queued = v.get("server_stats", {}).get("attempts_queued_at_stop")
    return f"{queued:,}" if isinstance(queued, int) else "-"


def _fast(v: dict[str, Any]) -> str:
    fp = v.get("fast_path")
    return f"{fp['index_hits']:,} / {fp['sql_reads']:,}" if fp else "-"


def scaling_bound(one: dict[str, Any], two: dict[str, Any], n_cores: int) -> dict[str, Any]:
    """What limits ``--workers 2`` against ``--workers 1``, from the two runs' CPU per call.

    s1 = server CPU per call with 1 worker, s2 = with 2 (all its processes' CPU, the parent's
    included), d = the driver's, r = PostgreSQL's (the bench database's backends) + Redis's
    (the whole server: other clients' commands count too), d and r from the 2-worker run,
    where they share the cores.
    One worker is one process: X1 <= 1 / s1, equal when it keeps its core busy (see
    ``server_cores_used``). Two workers are bounded twice: each by its own core,
    X2 <= 2 / s2, and all parties together by the box, X2 * (s2 + d + r) <= cores. So

        X2 / X1 <= bound = min(2 * s1 / s2, cores * s1 / (s2 + d + r))

    (with s2 = s1 this is min(2, cores * s1 / (s1 + d + r))). efficiency = ratio / bound.
    The rest of the box (other benchmarks) is not in the bound: it takes from the cores too,
    so efficiency below 1 is partly theirs (``rest_of_box_cores``). A 1-worker run that did
    not keep its core busy makes the ratio able to pass the bound."""
    s1, s2 = one["server_cpu_us_per_call"], two["server_cpu_us_per_call"]
    d, r = two["driver_cpu_us_per_call"], two["pg_redis_cpu_us_per_call"]
    if not (s1 and s2):
        return {}
    bound = round(min(2 * s1 / s2, n_cores * s1 / (s2 + d + r)), 3)
    measured = ratio(two["calls_per_s"], one["calls_per_s"])
    return {"ratio": measured, "s1_us": s1, "s2_us": s2, "s2_over_s1": ratio(s2, s1),
            "driver_us": d, "pg_redis_us": r, "cores": n_cores, "bound": bound,
            "efficiency": ratio(measured, bound),
            "one_worker_core_use": one.get("server_cores_used", 0.0),
            "rest_of_box_cores": [one["rest_of_box_cores"], two["rest_of_box_cores"]]}


async def workers(stores: Stores, rounds: int, calls: int, max_seconds: float
                  ) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    ratios = []
    limits = []
    n_cores = cores()
    redis_pid = server_pids(stores.pg_env["PRIVNUM_DATABASE__URL"])[1]
    load_before = os.getloadavg()
    for r in range(rounds):
        one = await workers_variant(stores, 1, calls, 100, max_seconds, f"w1{os.getpid()}{r}",
                                    redis_pid)
        two = await workers_variant(stores, 2, calls, 100, max_seconds, f"w2{os.getpid()}{r}",
                                    redis_pid)
        rows += [one, two]
        ratios.append(ratio(two["calls_per_s"], one["calls_per_s"]))
        limits.append(scaling_bound(one, two, n_cores))
    load_after = os.getloadavg()
    print_table("privnum serve --workers 2 vs 1 (PostgreSQL + Redis), C = 100",
                [*COLUMNS, "driver us/call", "PG+Redis us/call", "srv cores", "rest cores"],
                [[*_row(v), v["driver_cpu_us_per_call"], v["pg_redis_cpu_us_per_call"],
                  v.get("server_cores_used", 0.0), v["rest_of_box_cores"]] for v in rows])
    print_table(f"what bounds 2 workers / 1 on {n_cores} cores: min(2 s1/s2, cores s1/(s2+d+r))"
                " (CPU us per call)",
                ["round", "ratio", "s1", "s2", "s2/s1", "d", "r", "bound", "efficiency",
                 "1 worker's core use"],
                [[i + 1, b.get("ratio", "-"), b.get("s1_us", "-"), b.get("s2_us", "-"),
                  b.get("s2_over_s1", "-"), b.get("driver_us", "-"), b.get("pg_redis_us", "-"),
                  b.get("bound", "-"), b.get("efficiency", "-"),
                  b.get("one_worker_core_use", "-")] for i, b in enumerate(limits)])
    print(f"2 workers / 1 worker: rounds {ratios}, median {median(ratios):.3f} (target >= 1.6); "
          f"load average {load_before[0]:.2f} -> {load_after[0]:.2f}")
    return {"rounds": rows, "ratios": ratios, "median_ratio": median(ratios),
            "bounds": limits, "cores": n_cores,
            "load_avg": {"before": load_before, "after": load_after}}


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


async def run(rounds: int, calls: int, max_seconds: float, only: str | None,
              log_level: str = "INFO", log_flush_seconds: float | None = None
              ) -> dict[str, Any]:
    results: dict[str, Any] = {"params": {"rounds": rounds, "calls": calls,
                                          "max_seconds": max_seconds,
                                          "lean_log_level": log_level,
                                          "lean_log_flush_seconds": log_flush_seconds}}
    async with seeded_stores(1_000, 10_000, tag="callpath") as stores:
        if only in (None, "lean"):
            results["lean"] = await lean(stores, rounds, calls, max_seconds, log_level,
                                         log_flush_seconds)
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
    parser.add_argument("--log-level", choices=["INFO", "WARNING"], default="INFO",
                        help="lean: privnum's log level (INFO, the shipped default, writes a "
                        "line per call to a file)")
    parser.add_argument("--log-flush-seconds", type=float,
                        help="lean: privnum's log.flush_seconds (default: the setting's, 0)")
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 2)
    calls = args.calls or (3_000 if args.quick else 8_000)
    max_seconds = args.max_seconds or (8.0 if args.quick else 15.0)
    return asyncio.run(run(rounds, calls, max_seconds, args.only, args.log_level,
                           args.log_flush_seconds))


if __name__ == "__main__":
    main()

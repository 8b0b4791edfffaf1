"""Routing latency vs concurrency and pool size (PostgreSQL + Redis, the production setup).

    python -m bench scaling [--quick | --full] [--calls N] [--max-seconds S]

Defaults: up to 3 000 calls or 10 s per cell (``--full``: 5 000 calls / 15 s; ``--quick``:
1 500 / 5 s). Each cell is a fresh server process on the shipped wiring (``route_stack``).

Grid: C = 10, 100, 1 000 x pool = 1 k, 100 k numbers (10 k active bindings each, same call
mix as agi_load). The baseline is the first cell (C=10, 1 k pool); every cell reports calls/s,
p50/p99 of the post-dial delay and its ratios to the baseline. Expectation: flat in pool size
(the look-ups are keyed: Redis GET and primary-key / index probes); flat in calls/s across C
once saturated, latency then growing with C by Little's law (C / throughput).
"""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import Any

from bench.agi_load import calls_for, fast_path_cell, server_variant
from bench.agi_stack import seeded_stores
from bench.common import print_table, ratio, write_result

NAME = "scaling"
CONCURRENCY = (10, 100, 1_000)
POOLS = (1_000, 100_000)


async def run(calls: int = 3_000, bindings: int = 10_000, max_seconds: float = 10.0,
              concurrency: tuple[int, ...] = CONCURRENCY, pools: tuple[int, ...] = POOLS,
              quiet: bool = False) -> dict[str, Any]:
    cells: list[dict[str, Any]] = []
    for pool in pools:
        async with seeded_stores(pool, bindings, sqlite=False, tag="scale") as stores:
            for c in concurrency:
                warmup = max(c, 100)
                envs, expected, _ = calls_for(stores, warmup + calls, f"s{os.getpid()}{pool}{c}")
                out = await server_variant(f"pool {pool:,} C={c}", "route", stores.pg_env,
                                           envs, expected, c, warmup, max_seconds=max_seconds)
                out.update(pool=pool, concurrency=c)
                cells.append(out)
    base = cells[0]
    for cell in cells:
        cell["ratio_calls_per_s"] = ratio(cell["calls_per_s"], base["calls_per_s"])
        cell["ratio_p50"] = ratio(cell["decision"]["p50_ms"], base["decision"]["p50_ms"])
        cell["ratio_p99"] = ratio(cell["decision"]["p99_ms"], base["decision"]["p99_ms"])
    by_pool = {}
    for c in concurrency:
        small = next(x for x in cells if x["pool"] == pools[0] and x["concurrency"] == c)
        big = next(x for x in cells if x["pool"] == pools[-1] and x["concurrency"] == c)
        by_pool[f"C={c}"] = {
            "p50_big/small": ratio(big["decision"]["p50_ms"], small["decision"]["p50_ms"]),
            "calls_per_s_big/small": ratio(big["calls_per_s"], small["calls_per_s"])}
    results: dict[str, Any] = {
        "params": dict(calls_cap=calls, bindings=bindings, max_seconds=max_seconds,
                       concurrency=list(concurrency), pools=list(pools)),
        "cells": cells, "pool_ratio": by_pool,
        "lost_total": sum(c["lost"] for c in cells),
        "wrong_action_total": sum(c["wrong_action"] for c in cells),
    }
    if not quiet:
        print_table("Scaling (PostgreSQL + Redis): baseline = first row",
                    ["cell", "calls/s", "p50 ms", "p99 ms", "x calls/s", "x p50", "x p99",
                     "srv CPU us/call", "Redis hits / SQL reads", "lost", "wrong"],
                    [[c["variant"], c["calls_per_s"], c["decision"]["p50_ms"],
                      c["decision"]["p99_ms"], c["ratio_calls_per_s"], c["ratio_p50"],
                      c["ratio_p99"], c.get("server_cpu_us_per_call", "-"), fast_path_cell(c),
                      c["lost"], c["wrong_action"]] for c in cells])
        print_table("pool 100k vs 1k at the same C", ["C", "p50 ratio", "calls/s ratio"],
                    [[k, v["p50_big/small"], v["calls_per_s_big/small"]]
                     for k, v in by_pool.items()])
    write_result(NAME, results)
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench scaling")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--calls", type=int)
    parser.add_argument("--max-seconds", type=float)
    args = parser.parse_args(argv)
    calls = args.calls or (1_500 if args.quick else 5_000 if args.full else 3_000)
    max_seconds = args.max_seconds or (5.0 if args.quick else 15.0 if args.full else 10.0)
    return asyncio.run(run(calls=calls, max_seconds=max_seconds))


if __name__ == "__main__":
    main()

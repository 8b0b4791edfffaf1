"""The database's own cost of issuing a binding: ``privnum_issue`` per binding, PostgreSQL.

    python -m bench issue_function [--quick] [--rounds N]

The same batches of 32 new orders (a seeded database: 1 000 numbers, 10 000 active bindings)
go to ``privnum_issue`` once with no preferred region (the usual request) and once preferring
the region every seeded number has: the query that ranks regions, which must choose the same
numbers (the trees before and after migration 0019 compared: BENCHMARKS.md section 19).
Each batch is rolled back, so both variants see the same tables; ``VACUUM ANALYZE`` and the
writer's plan choice before each variant, rounds interleaved. Measured: the backend's CPU
per binding (``/proc``, so PostgreSQL must run on this machine) and the wall time per binding
at the client.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from datetime import UTC, datetime, timedelta
from statistics import median
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from bench.agi_stack import seeded_stores
from bench.common import print_table, proc_cpu_seconds, ratio, write_result
from binding_store.allocation_sql import CANDIDATE_WINDOW
from binding_store.group_commit import libpq_url
from binding_store.issue_requests import IssueInput
from binding_store.issue_sql import CALL, PLAN_CHOICE

NAME = "issue_function"
BATCH = 32
VARIANTS = {"ranked regions (preferred region)": "", "no preferred region": None}


async def run(rounds: int = 3, batches: int = 60, pool_size: int = 1_000,
              bindings: int = 10_000, quiet: bool = False) -> dict[str, Any]:
    async with seeded_stores(pool_size, bindings, sqlite=False, tag="issuefn") as stores:
        pop = stores.population
        rnd = random.Random(1)
        now = datetime.now(UTC)
        orders = [[(rnd.choice(pop.callers), f"fn{k}-{i}") for i in range(BATCH)]
                  for k in range(batches)]

        def requests(region: str | None) -> list[list[dict[str, Any]]]:
            return [[IssueInput(pop.caller_shop[a], order, "", a, b"\x01" * 40, f"bidx-{order}",
                                "138****0000", now, timedelta(days=1), region, "bench"
                                ).request(with_event=True) for a, order in batch]
                    for batch in orders]

        plans = {name: requests(region) for name, region in VARIANTS.items()}
        conn = await psycopg.AsyncConnection.connect(
            libpq_url(stores.pg_env["PRIVNUM_DATABASE__URL"]), autocommit=True)
        try:
            pid = (await (await conn.execute("SELECT pg_backend_pid()")).fetchone() or [0])[0]
            cpu: dict[str, list[float]] = {name: [] for name in VARIANTS}
            wall: dict[str, list[float]] = {name: [] for name in VARIANTS}
            chosen: dict[str, list[Any]] = {}
            for _ in range(rounds):
                for name, batch_list in plans.items():
                    await conn.execute("VACUUM ANALYZE")
                    await conn.execute(PLAN_CHOICE)
                    picks: list[Any] = []
                    cpu0, t0 = proc_cpu_seconds(pid), time.perf_counter()
                    for batch in batch_list:
                        async with conn.transaction(force_rollback=True):
                            rows = await (await conn.execute(CALL, (
                                Jsonb(batch), timedelta(hours=1), CANDIDATE_WINDOW, 40))
                            ).fetchall()
                        picks += [(row[1], row[3]) for row in sorted(rows)]
                    n = BATCH * len(batch_list)
                    cpu[name].append((proc_cpu_seconds(pid) - cpu0) / n * 1e6)
                    wall[name].append((time.perf_counter() - t0) / n * 1e6)
                    chosen.setdefault(name, picks)
        finally:
            await conn.close()
    ranked, plain = VARIANTS
    statuses = {status for status, _ in chosen[plain]}
    results: dict[str, Any] = {
        "params": dict(rounds=rounds, batches=batches, batch=BATCH, pool_size=pool_size,
                       seeded_bindings=bindings),
        "cpu_us_per_binding": {k: [round(v, 1) for v in vs] for k, vs in cpu.items()},
        "wall_us_per_binding": {k: [round(v, 1) for v in vs] for k, vs in wall.items()},
        "cpu_ratio": ratio(median(cpu[plain]), median(cpu[ranked])),
        "wall_ratio": ratio(median(wall[plain]), median(wall[ranked])),
        "same_numbers": chosen[plain] == chosen[ranked], "statuses": sorted(statuses),
    }
    if not quiet:
        print_table(f"privnum_issue per binding, {batches} batches of {BATCH} rolled back, "
                    f"{rounds} interleaved rounds (PostgreSQL backend CPU, client wall)",
                    ["query", "CPU us/binding", "median", "wall us/binding", "median"],
                    [[name, ", ".join(f"{v:.0f}" for v in cpu[name]), round(median(cpu[name])),
                      ", ".join(f"{v:.0f}" for v in wall[name]), round(median(wall[name]))]
                     for name in VARIANTS])
        print(f"no region / ranked: CPU {results['cpu_ratio']}, wall {results['wall_ratio']}; "
              f"same numbers chosen: {results['same_numbers']}; statuses {sorted(statuses)}")
    write_result(NAME, results)
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench issue_function")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    if args.quick:
        return asyncio.run(run(rounds=1, batches=10))
    return asyncio.run(run(rounds=args.rounds))


if __name__ == "__main__":
    main()

"""Bindings issued per second on PostgreSQL + Redis at concurrency 32 across 2 processes.

    python -m bench allocation [--quick] [--seconds S] [--issues N] [--rounds N] [--profile]

Baselines in the same run, same concurrency and processes, interleaved with the issue phase
round by round: the bare one-commit floor (``INSERT ...; COMMIT`` on a psycopg connection
per task, the client library the store uses) and the same transaction through the
``Database`` sessions (SQLAlchemy, pool pre-ping). Each issue writes the binding, its audit
row and its ``binding.created`` outbox row, then its Redis index keys. Afterwards the
active bindings are checked for duplicate (A, X), (B, X) and (shop, order) pairs: must be 0.
Beside the clients' CPU per operation, the servers' (PostgreSQL: the postmaster and all its
processes; Redis) when they run on this machine: on a shared server it counts others' work too.
Goal: issue >= 1.0x the bare floor; stretch 5 000/s.

A round of a phase runs its workers together for ``--seconds`` (default 2); ``--issues N``
instead gives each phase N operations over all rounds (30 s at most a round). A phase's rate
is the sum of its workers' rates, each over its own span from the start line to its last
operation: process start-up and teardown (about 0.15 s a round) are not in it. Until
2026-12-05 the rate was a phase's operations over the coordinator's wall time, teardown
included, in rounds of 3 000 operations: rounds of 0.4-0.7 s, in which the teardown and the
wait for the slower worker cost the fastest phase, the floor, the largest share. That
measure put the issue path nearer to the floor than it is (BENCHMARKS.md section 29; the
old figure stays in the JSON as ``wall_per_s``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from statistics import median
from typing import Any

import psycopg
from pyinstrument import Profiler
from sqlalchemy import text

from bench import seed
from bench.agi_stack import seeded_stores
from bench.common import (
    REDIS_URL,
    RESULTS,
    ROOT,
    print_table,
    ratio,
    server_cpu,
    server_pids,
    write_result,
)
from binding_store.binding_policy import BindingPolicy
from binding_store.bindings import BindingStore
from binding_store.crypto import BuyerCipher, KeyRing
from binding_store.db import Database
from binding_store.group_commit import libpq_url
from binding_store.outbox import Outbox
from binding_store.redis_index import RedisIndex
from routing.errors import PrivnumError

NAME = "allocation"
PROCESSES = 2
_COUNTED_ROUND_SECONDS = 30.0

_DUPLICATES = """
SELECT
 (SELECT count(*) FROM (SELECT 1 FROM bindings WHERE state = 'active'
   GROUP BY caller_a, virtual_x HAVING count(*) > 1) d) AS ax,
 (SELECT count(*) FROM (SELECT 1 FROM bindings WHERE state = 'active'
   GROUP BY buyer_bidx, virtual_x HAVING count(*) > 1) d) AS bx,
 (SELECT count(*) FROM (SELECT 1 FROM bindings WHERE state = 'active'
   GROUP BY shop_id, order_id HAVING count(*) > 1) d) AS orders
"""


# ---- the worker process --------------------------------------------------------------------

async def _worker(args: argparse.Namespace) -> dict[str, Any]:
    cipher = BuyerCipher(KeyRing.load(Path(args.keys)))
    db = Database(args.db, timeout=10.0, pool_size=args.tasks)
    index = RedisIndex.from_url(REDIS_URL, prefix=args.prefix, timeout=5.0)
    store = BindingStore(db, cipher, index=index, policy=BindingPolicy(), outbox=Outbox())
    raw: list[psycopg.AsyncConnection[Any]] = []
    if args.phase == "floor":
        raw = [await psycopg.AsyncConnection.connect(libpq_url(args.db))
               for _ in range(args.tasks)]
    pop = seed.plan(args.pool, args.bindings)
    rnd = random.Random(args.worker)
    counter = 0
    errors: dict[str, int] = {}

    async def issue_one() -> None:
        nonlocal counter
        counter += 1
        n = counter
        a = rnd.choice(pop.callers)
        try:
            await store.issue(pop.caller_shop[a], f"w{args.worker}-{args.phase_no}-{n}",
                              f"buyer{n}", a, f"+86135{args.worker}{args.phase_no}{n:06d}",
                              datetime.now(UTC), actor="bench")
        except PrivnumError as exc:
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1

    async def session_floor_one(_task: int) -> None:
        async with db.session() as s:
            await s.execute(text("INSERT INTO bench_floor (worker) VALUES (:w)"),
                            {"w": args.worker})
            await s.commit()

    async def floor_one(task: int) -> None:
        conn = raw[task]
        await conn.execute("INSERT INTO bench_floor (worker) VALUES (%s)", (args.worker,))
        await conn.commit()

    async def issue_task(_task: int) -> None:
        await issue_one()

    op = {"issue": issue_task, "floor": floor_one, "session_floor": session_floor_one}[
        args.phase]

    measured = await _measure(op, args)
    for conn in raw:
        await conn.close()
    await index.close()
    await db.dispose()
    return {**measured, "errors": errors, "retries": store.stats.retries,
            "issued": store.stats.issued, "batches": store.batches}


async def _measure(op: Callable[[int], Awaitable[None]], args: argparse.Namespace
                   ) -> dict[str, Any]:
    """Warm up, report WARM, wait for the start line, run ``args.count`` operations over
    ``args.tasks`` tasks (or until ``args.max_seconds``)."""
    deadline = float("inf")

    async def loop(task: int, count: int) -> int:
        done = 0
        for _ in range(count):
            if time.perf_counter() >= deadline:
                break
            await op(task)
            done += 1
        return done

    per_task = max(1, args.count // args.tasks)
    await asyncio.gather(*(loop(t, 2) for t in range(args.tasks)))  # warm the pool
    print("WARM", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    profiler = Profiler(interval=0.0005) if args.profile else None
    if profiler:
        profiler.start()
    began = time.perf_counter()
    deadline = began + args.max_seconds if args.max_seconds else float("inf")
    cpu = time.process_time()
    done = sum(await asyncio.gather(*(loop(t, per_task) for t in range(args.tasks))))
    seconds = time.perf_counter() - began
    cpu = time.process_time() - cpu
    if profiler:
        profiler.stop()
        Path(args.profile).parent.mkdir(parents=True, exist_ok=True)
        Path(args.profile).write_text(  # noqa: ASYNC240 - after the measurement
            profiler.output_text(unicode=False, color=False))
    return {"done": done, "seconds": seconds, "cpu": cpu}


def worker_main(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    for name in ("--db", "--keys", "--prefix", "--phase", "--profile"):
        p.add_argument(name, default="")
    for name in ("--worker", "--tasks", "--count", "--pool", "--bindings", "--phase-no"):
        p.add_argument(name, type=int, default=0)
    p.add_argument("--max-seconds", type=float, default=0.0)
    print("RESULT " + json.dumps(asyncio.run(_worker(p.parse_args(argv)))), flush=True)


# ---- the coordinator -----------------------------------------------------------------------

async def _phase(phase: str, phase_no: int, env: dict[str, str], common: list[str],
                 concurrency: int, count: int, profile: bool, max_seconds: float,
                 servers: tuple[int, int]) -> dict[str, Any]:
    procs = []
    for w in range(PROCESSES):
        argv = [sys.executable, "-m", "bench.allocation", "--worker", str(w), "--phase", phase,
                "--phase-no", str(phase_no), "--tasks", str(concurrency // PROCESSES),
                "--count", str(count // PROCESSES), "--max-seconds", str(max_seconds),
                *common]
        if profile and w == 0:
            argv += ["--profile", str(RESULTS / f"allocation_profile_{phase}.txt")]
        procs.append(await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env,
            cwd=ROOT))
    for proc in procs:
        assert proc.stdout is not None
        line = await proc.stdout.readline()
        if line.strip() != b"WARM":
            raise RuntimeError(f"allocation worker failed to start: {line!r}")
    began = time.perf_counter()
    server_began = server_cpu(*servers)
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        await proc.stdin.drain()
    outs = [await proc.communicate() for proc in procs]
    wall = time.perf_counter() - began
    pg_seconds, redis_seconds = (after - before for after, before in zip(
        server_cpu(*servers), server_began, strict=True))
    results = []
    for out, _ in outs:
        for raw in out.splitlines():
            if raw.startswith(b"RESULT "):
                results.append(json.loads(raw[7:]))
    if len(results) != PROCESSES:
        raise RuntimeError("an allocation worker did not report")
    done = sum(r["done"] for r in results)
    per_s = workers_rate(results)
    errors: dict[str, int] = {}
    for r in results:
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
    return {"phase": phase, "done": done, "wall_seconds": round(wall, 3),
            "per_s": round(per_s, 1), "wall_per_s": round(done / wall, 1),
            "cpu_ms_per_op": round(
                sum(r["cpu"] for r in results) / max(1, done) * 1000, 3),
            "server_cpu_ms_per_op": round(pg_seconds / max(1, done) * 1000, 3),
            "redis_cpu_ms_per_op": round(redis_seconds / max(1, done) * 1000, 3),
            "retries": sum(r.get("retries", 0) for r in results), "errors": errors,
            "batches": sum(r.get("batches", 0) for r in results)}


def workers_rate(results: list[dict[str, Any]]) -> float:
    """Operations per second of workers that ran side by side: each one's operations over its
    own span (start line to last operation), added up."""
    return sum(r["done"] / r["seconds"] for r in results if r["seconds"] > 0)


def _merge(phases: list[dict[str, Any]]) -> dict[str, Any]:
    """Rounds of one phase as one figure: the median round's rate (rounds last alike)."""
    done = sum(p["done"] for p in phases)
    wall = sum(p["wall_seconds"] for p in phases)
    errors: dict[str, int] = {}
    for p in phases:
        for k, v in p["errors"].items():
            errors[k] = errors.get(k, 0) + v
    return {"phase": phases[0]["phase"], "done": done, "wall_seconds": round(wall, 3),
            "per_s": round(median(p["per_s"] for p in phases), 1),
            "wall_per_s": round(done / wall, 1) if wall else 0.0,
            "per_round_per_s": [p["per_s"] for p in phases],
            "cpu_ms_per_op": round(sum(p["cpu_ms_per_op"] * p["done"] for p in phases)
                                   / max(1, done), 3),
            "server_cpu_ms_per_op": round(sum(p["server_cpu_ms_per_op"] * p["done"]
                                              for p in phases) / max(1, done), 3),
            "redis_cpu_ms_per_op": round(sum(p["redis_cpu_ms_per_op"] * p["done"]
                                             for p in phases) / max(1, done), 3),
            "retries": sum(p["retries"] for p in phases), "errors": errors,
            "ops_per_batch": round(done / max(1, sum(p["batches"] for p in phases)), 1)}


async def run(issues: int | None = None, concurrency: int = 32, pool_size: int = 1_000,
              bindings: int = 10_000, profile: bool = False, quiet: bool = False,
              seconds: float = 2.0, rounds: int = 2) -> dict[str, Any]:
    """Timed rounds of ``seconds`` each, or ``issues`` operations a phase over all rounds."""
    timed = issues is None
    max_seconds = seconds if timed else _COUNTED_ROUND_SECONDS
    # a timed round's cap: more than any machine issues in it
    issues = issues if issues is not None else 1_000_000 * rounds
    async with seeded_stores(pool_size, bindings, sqlite=False, tag="alloc") as stores:
        env = stores.pg_env
        db_url = env["PRIVNUM_DATABASE__URL"]
        db = Database(db_url, timeout=30.0)
        async with db.engine.begin() as conn:
            await conn.execute(text("CREATE TABLE bench_floor (id bigserial primary key, "
                                    "worker int, at timestamptz default now())"))
        async with db.engine.connect() as conn:
            # The seed is a bulk load: give the planner the statistics a live database has.
            await (await conn.execution_options(isolation_level="AUTOCOMMIT")).execute(
                text("ANALYZE"))
        common = ["--db", db_url, "--keys", env["PRIVNUM_KEYS__FILE"],
                  "--prefix", env["PRIVNUM_REDIS__PREFIX"], "--pool", str(pool_size),
                  "--bindings", str(bindings)]
        per_round = max(PROCESSES, issues // rounds)
        servers = server_pids(db_url)
        phases: dict[str, list[dict[str, Any]]] = {"floor": [], "session_floor": [],
                                                   "issue": []}
        for r in range(rounds):
            for name, done in phases.items():
                done.append(await _phase(
                    name, r + 1, env, common, concurrency, per_round,
                    profile and r == 0 and name == "issue", max_seconds, servers))
        floor, session_floor, issue = (_merge(phases[n]) for n in phases)
        async with db.engine.connect() as conn:
            dup = (await conn.execute(text(_DUPLICATES))).one()
            active = (await conn.execute(text(
                "SELECT count(*) FROM bindings WHERE state = 'active'"))).scalar_one()
        await db.dispose()
    duplicates = {"ax": int(dup.ax), "bx": int(dup.bx), "orders": int(dup.orders)}
    results: dict[str, Any] = {
        "params": dict(issues=None if timed else issues, round_seconds=max_seconds,
                       concurrency=concurrency, processes=PROCESSES,
                       pool_size=pool_size, seeded_bindings=bindings),
        "floor": floor, "session_floor": session_floor, "issue": issue,
        "active_bindings_after": int(active),
        "duplicates": duplicates, "duplicate_pairs": sum(duplicates.values()),
        "ratio_issue_to_floor": ratio(issue["per_s"], floor["per_s"]),
        # On a box the two sides keep busy, throughput goes as 1 / CPU per operation: the
        # ratio this allows, whatever the batching does.
        "cpu_bound_issue_to_floor": ratio(cpu_per_op(floor), cpu_per_op(issue)),
        "ratio_issue_to_session_floor": ratio(issue["per_s"], session_floor["per_s"]),
        "targets": {"issue >= 1.0x bare floor": issue["per_s"] >= floor["per_s"],
                    "issued/s >= 5000 (stretch)": issue["per_s"] >= 5_000,
                    "duplicates == 0": sum(duplicates.values()) == 0},
    }
    if not quiet:
        length = (f"{rounds} interleaved rounds of {max_seconds:g} s" if timed
                  else f"{issues:,} operations a phase in {rounds} interleaved rounds")
        print_table(f"Allocation: {length}, "
                    f"C={concurrency} over {PROCESSES} processes (PostgreSQL + Redis)",
                    ["phase", "ops/s (median round)", "per round", "CPU ms/op (clients)",
                     "CPU ms/op (PostgreSQL)", "CPU ms/op (Redis)", "ops/commit", "retries",
                     "errors"],
                    [["floor: INSERT+COMMIT (psycopg)", floor["per_s"],
                      floor["per_round_per_s"], floor["cpu_ms_per_op"],
                      floor["server_cpu_ms_per_op"], floor["redis_cpu_ms_per_op"], 1,
                      floor["retries"], floor["errors"] or "-"],
                     ["floor: INSERT+COMMIT (Database session)", session_floor["per_s"],
                      session_floor["per_round_per_s"], session_floor["cpu_ms_per_op"],
                      session_floor["server_cpu_ms_per_op"],
                      session_floor["redis_cpu_ms_per_op"], 1,
                      session_floor["retries"], session_floor["errors"] or "-"],
                     ["issue binding", issue["per_s"], issue["per_round_per_s"],
                      issue["cpu_ms_per_op"], issue["server_cpu_ms_per_op"],
                      issue["redis_cpu_ms_per_op"],
                      issue["ops_per_batch"], issue["retries"],
                      issue["errors"] or "-"]])
        print_table("checks", ["check", "value", "target"], [
            ["issue / bare floor", results["ratio_issue_to_floor"], ">= 1.0"],
            ["issue / session floor", results["ratio_issue_to_session_floor"], "-"],
            ["CPU per op, floor / issue (clients + PostgreSQL + Redis): the ratio a busy "
             "box allows", results["cpu_bound_issue_to_floor"], "-"],
            ["issued/s", issue["per_s"], ">= 5,000 (stretch)"],
            ["duplicate (A,X)/(B,X)/order pairs", results["duplicate_pairs"], "0"]])
    write_result(NAME, results)
    return results


def cpu_per_op(phase: dict[str, Any]) -> float:
    """Milliseconds of CPU per operation of every party: the clients, PostgreSQL, Redis."""
    return float(phase["cpu_ms_per_op"] + phase["server_cpu_ms_per_op"]
                 + phase["redis_cpu_ms_per_op"])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench allocation")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=float,
                        help="each round of each phase (default 2; --quick 0.5)")
    parser.add_argument("--issues", type=int,
                        help="operations a phase over all rounds, instead of timed rounds")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    seconds = args.seconds if args.seconds is not None else (0.5 if args.quick else 2.0)
    if seconds <= 0 or args.rounds < 1 or (args.issues is not None and args.issues < 1):
        parser.error("--seconds, --rounds and --issues must be positive")
    return asyncio.run(run(issues=args.issues, seconds=seconds, profile=args.profile,
                           rounds=args.rounds))


if __name__ == "__main__":
    if "--worker" in sys.argv:
        worker_main(sys.argv[1:])
    else:
        main()

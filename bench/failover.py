"""Failover under judged call load: Redis master lost (Sentinel promotes the replica), a
binding released just before, one privnum node killed.

    python -m bench failover [--quick]
    python -m bench.failover [--quick] [--seconds S] [--rate N] [--sqlite] [--keep DIR]

Everything is started here, on this machine: a Redis master, one replica and three Sentinels
(``redis-server [--sentinel]``, ports from ``PRIVNUM_PRIVATE_REDIS_PORTS``), a PostgreSQL
database of its own (``PRIVNUM_TEST_PG_URL``'s server; ``--sqlite``: one SQLite file both nodes
share) and two ``privnum serve`` nodes that find the master through the Sentinels. Asterisk's
side is played here: each call asks node 1 then node 2 (or node 2 then node 1, alternately),
as a dialplan with two FastAGI hosts does.

Load: ``--rate`` calls a second for ``--seconds`` (default 60; ``--quick`` 20): merchant
calls on every binding (those released included) and a few strangers; every second a binding
is issued on one node's API and called at once through the other node. Timeline (fractions of
the run): 0.30 (c) a binding is released on node 1 with the master's link to its replica cut,
then (a) the master is SIGKILLed; 0.65 (b) node 1 is SIGKILLed.

Report: calls placed; misroutes and resurrected bindings (must be 0); per switch the calls
failed closed (no answer, or a reject while the binding was active) and over how long, and
the time until the fast path (answers from Redis alone, ``privnum_route_lookups_total
{source="index"}`` on the nodes' /metrics) is back; decision latency per phase against the
steady phase before the first failure (the baseline, same run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import random
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis

from bench.common import (
    console,
    latency_summary,
    print_table,
    ratio,
    scratch_pg,
    write_result,
)
from bench.failover_calls import Bound, Placed, Verdicts, judge, place
from bench.failover_stack import NodeApi, Stack, buyer_number
from bench.sentinel_group import SentinelGroup, sentinel_group

NAME = "failover"
SEED_BINDINGS = 30
POLL = 0.25  # seconds between /metrics polls
GAP = 0.75  # no answer from Redis alone for this long: the fast path is interrupted


@dataclass
class Switch:
    name: str
    at: float
    fast_path_back: float | None = None  # seconds after ``at``
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Run:
    stack: Stack
    api: NodeApi
    began: float
    bindings: list[Bound] = field(default_factory=list)
    placed: list[Placed] = field(default_factory=list)
    switches: list[Switch] = field(default_factory=list)
    polls: list[tuple[float, str, float]] = field(default_factory=list)  # t, node, index hits
    issue_refused: int = 0
    counter: itertools.count[int] = field(default_factory=itertools.count)

    def node(self, name: str) -> Any:
        return next(n for n in self.stack.nodes if n.name == name)


async def issue(run: Run, via: str) -> Bound:
    i = next(run.counter)
    body = await run.api.reveal(run.node(via), f"o{i}-{os.getpid()}", buyer_number(i))
    bound = Bound(body["binding_id"], body["caller_number"], body["virtual_number"],
                  buyer_number(i), issued_at=time.monotonic())
    run.bindings.append(bound)
    return bound


async def call(run: Run, bound: Bound | None, caller: str, x: str, first: int,
               fresh: bool = False) -> None:
    nodes = run.stack.nodes
    order = [nodes[first % len(nodes)], nodes[(first + 1) % len(nodes)]]
    hosts = [(n.name, n.agi_port) for n in order]
    started = time.monotonic()
    answer = await place(hosts, caller, x, f"fo{os.getpid()}.{next(run.counter)}")
    run.placed.append(Placed(started, time.monotonic(), bound, answer, order[0].name, fresh))


async def load(run: Run, until: float, rate: float) -> None:
    """``rate`` calls a second, started on schedule (a slow answer does not slow the rate)."""
    rnd = random.Random(7)
    tasks: set[asyncio.Task[None]] = set()
    k = 0
    start = time.monotonic()
    victim = run.bindings[0]  # the one released before the failover: watched closely
    while time.monotonic() < until:
        r = rnd.random()
        if r < 0.1:
            x = rnd.choice(run.bindings).x
            coro = call(run, None, f"+86137{k:08d}", x, k)  # a stranger: always a reject
        else:
            b = victim if r < 0.25 else rnd.choice(run.bindings)
            coro = call(run, b, b.caller, b.x, k)
        task = asyncio.create_task(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        k += 1
        await asyncio.sleep(max(0.0, start + k / rate - time.monotonic()))
    if tasks:
        await asyncio.gather(*tasks)


async def fresh_issues(run: Run, until: float) -> None:
    """Every second: issue on one live node's API, call at once through another."""
    while time.monotonic() < until:
        live = [i for i, n in enumerate(run.stack.nodes) if n.alive]
        via = live[0]
        try:
            bound = await issue(run, run.stack.nodes[via].name)
        except (httpx.HTTPError, KeyError):  # a refusal during a switch: counted
            run.issue_refused += 1
        else:
            await call(run, bound, bound.caller, bound.x, via + 1, fresh=True)
        await asyncio.sleep(1.0)


async def poll_metrics(run: Run, until: float) -> None:
    while time.monotonic() < until:
        for node in run.stack.nodes:
            if node.alive:
                got = await run.api.lookups(node)
                if got is not None:
                    run.polls.append((time.monotonic(), node.name, got.get("index", 0.0)))
        await asyncio.sleep(POLL)


def fast_path_back(run: Run, start: float, stop: float, nodes: list[str]) -> float | None:
    """Seconds from ``start`` until every node in ``nodes`` answers from Redis alone again
    after an interruption (no such answer for ``GAP`` seconds); 0.0 when none was seen;
    None when it did not come back before ``stop``."""
    worst = 0.0
    for name in nodes:
        series = [(t, v) for t, n, v in run.polls if n == name and start <= t < stop]
        hits = [t1 for (_, v0), (t1, v1) in itertools.pairwise(series) if v1 > v0]
        edges = [start, *hits]
        back = next((t1 - start for t0, t1 in itertools.pairwise(edges) if t1 - t0 >= GAP),
                    None)
        if back is None and (not hits or stop - hits[-1] >= GAP):
            return None  # interrupted until the end of the phase
        worst = max(worst, back or 0.0)
    return worst


async def redis_failover(run: Run, group: SentinelGroup, victim: Bound) -> Switch:
    """(c) then (a): release ``victim`` on node 1 with replication cut, kill the master."""
    node1 = run.stack.nodes[0]
    group.cut_replication()
    victim.release_started = time.monotonic()
    status = await run.api.release(node1, victim.binding_id)
    victim.released_at = time.monotonic()
    group.master.kill()
    switch = Switch("redis master killed", time.monotonic(), notes={"release_status": status})
    old = group.master.port
    async with asyncio.timeout(60):  # Sentinel promotes within seconds, or the run fails
        while True:
            port = await asyncio.to_thread(group.master_port)
            if port not in (old, None):
                break
            await asyncio.sleep(0.05)
    switch.notes["promoted_after_s"] = round(time.monotonic() - switch.at, 2)
    with contextlib.suppress(redis.RedisError), group.replica.client() as c:
        prefix = run.stack.prefix
        base = f"{prefix}:{{{prefix}}}"  # the index's hash-tagged key base
        mark = c.get(f"{base}:index:watermark")
        switch.notes["promoted_index_watermark"] = int(mark) if mark else None
        switch.notes["released_binding_in_promoted_index"] = bool(
            c.exists(f"{base}:ax:{victim.caller}:{victim.x}"))
    switch.notes["new_master_port"] = port
    return switch


def phase_rows(run: Run, end: float) -> list[dict[str, Any]]:
    marks = [("steady (baseline)", run.began)] + [(s.name, s.at) for s in run.switches]
    rows = []
    for (name, start), (_, stop) in zip(marks, [*marks[1:], ("end", end)], strict=True):
        calls = [p for p in run.placed if start <= p.started < stop]
        decided = sorted(p.ended - p.started for p in calls if p.answer.action)
        rows.append({"phase": name, "calls": len(calls), "seconds": round(stop - start, 1),
                     "latency": latency_summary(decided) if decided else {}})
    base = rows[0]["latency"].get("p50_ms", 0.0)
    for row in rows:
        row["p50_ratio"] = ratio(row["latency"].get("p50_ms", 0.0), base) if base else 0.0
    return rows


def switch_report(run: Run, verdicts: Verdicts, end: float) -> list[dict[str, Any]]:
    out = []
    for s, stop in zip(run.switches, [*(x.at for x in run.switches[1:]), end], strict=True):
        failed = [p for p in verdicts.failed_closed if s.at <= p.ended and p.started < stop]
        out.append({
            "switch": s.name, "failed_closed": len(failed),
            "failed_for_s": round(max(p.ended for p in failed) - s.at, 2) if failed else 0.0,
            "fast_path_back_s": None if s.fast_path_back is None
            else round(s.fast_path_back, 2), **s.notes})
    return out


@asynccontextmanager
async def database(url: str | None, sqlite: bool, workdir: Path) -> AsyncIterator[str]:
    if url is not None:
        yield url
    elif sqlite:
        yield f"sqlite+aiosqlite:///{workdir / 'privnum.db'}"
    else:
        async with scratch_pg("failover") as pg_url:
            yield pg_url


async def run(seconds: float = 60.0, rate: float = 40.0, *, sqlite: bool = False,
              database_url: str | None = None, workdir: Path | None = None,
              quiet: bool = False) -> dict[str, Any]:
    """The whole run; ``database_url``: an empty database to use (else one of its own)."""
    tmp = workdir or Path(tempfile.mkdtemp(prefix="privnum-failover-"))
    try:
        async with database(database_url, sqlite, tmp) as url:
            return await _run(tmp, url, seconds, rate, quiet)
    finally:
        if workdir is None:
            shutil.rmtree(tmp, ignore_errors=True)


async def _run(tmp: Path, url: str, seconds: float, rate: float, quiet: bool
               ) -> dict[str, Any]:
    with sentinel_group(tmp / "redis") as group:
        stack = Stack(tmp, url, group, prefix=f"fo{os.getpid()}")
        await stack.prepare(pool_size=SEED_BINDINGS + int(seconds) + 50)
        stack.add_nodes(2)
        await asyncio.to_thread(stack.start_nodes)
        api = NodeApi(stack.token, stack.platform_token)
        try:
            return await _scenario(Run(stack, api, time.monotonic()), group, seconds, rate,
                                   quiet)
        finally:
            await api.aclose()
            stack.stop_nodes()


async def _scenario(run: Run, group: SentinelGroup, seconds: float, rate: float,
                    quiet: bool) -> dict[str, Any]:
    for i in range(SEED_BINDINGS):
        await issue(run, run.stack.nodes[i % 2].name)
    victim = run.bindings[0]
    # Warm-up, not judged: each node's first calls open its database and Redis connections.
    warm = Run(run.stack, run.api, time.monotonic(), bindings=run.bindings)
    await asyncio.gather(*(call(warm, b, b.caller, b.x, i) for i, b in enumerate(run.bindings)))
    run.began = time.monotonic()
    until = run.began + seconds
    background = [asyncio.create_task(load(run, until, rate)),
                  asyncio.create_task(fresh_issues(run, until)),
                  asyncio.create_task(poll_metrics(run, until + 0.5))]
    await asyncio.sleep(0.30 * seconds)
    run.switches.append(await redis_failover(run, group, victim))
    await asyncio.sleep(max(0.0, run.began + 0.65 * seconds - time.monotonic()))
    node1 = run.stack.nodes[0]
    node1.kill()
    run.switches.append(Switch("privnum node1 killed", time.monotonic()))
    await asyncio.gather(*background)
    end = time.monotonic()
    live = [n.name for n in run.stack.nodes if n.alive]
    redis_sw, node_sw = run.switches
    redis_sw.fast_path_back = fast_path_back(run, redis_sw.at, node_sw.at, live)
    node_sw.fast_path_back = fast_path_back(run, node_sw.at, end, live)
    verdicts = judge(run.placed)
    results = {
        "params": {"seconds": seconds, "rate": rate, "bindings_seeded": SEED_BINDINGS},
        "calls": verdicts.calls, "bridged": verdicts.bridged,
        "rejected_right": verdicts.rejected_right, "misroutes": verdicts.misroutes,
        "resurrected": verdicts.resurrected, "failed_closed": len(verdicts.failed_closed),
        "fresh_bindings_called": verdicts.fresh, "fresh_routed_on_other_node":
            verdicts.fresh_routed, "issues_refused": run.issue_refused,
        "answered_by": {n.name: sum(p.answer.node == n.name for p in run.placed)
                        for n in run.stack.nodes},
        "switches": switch_report(run, verdicts, end), "phases": phase_rows(run, end),
        "failed_closed_calls": [
            {"at_s": round(p.started - run.began, 2), "took_s": round(p.ended - p.started, 2),
             "first_choice": p.first_choice, "answered_by": p.answer.node or None,
             "action": p.answer.action or None, "reason": p.answer.reason or None}
            for p in verdicts.failed_closed]}
    if not quiet:
        report(results)
    return results


def report(results: dict[str, Any]) -> None:
    print_table("failover: calls", ["calls", "bridged", "rejected (right)", "misroutes",
                                    "resurrected", "failed closed", "fresh routed",
                                    "issues refused"],
                [[results["calls"], results["bridged"], results["rejected_right"],
                  results["misroutes"], results["resurrected"], results["failed_closed"],
                  f"{results['fresh_routed_on_other_node']}/"
                  f"{results['fresh_bindings_called']}", results["issues_refused"]]])
    print_table("failover: switches", ["switch", "failed closed", "for (s)",
                                       "fast path back (s)", "notes"],
                [[s["switch"], s["failed_closed"], s["failed_for_s"], s["fast_path_back_s"],
                  ", ".join(f"{k}={v}" for k, v in s.items() if k not in (
                      "switch", "failed_closed", "failed_for_s", "fast_path_back_s"))]
                 for s in results["switches"]])
    print_table("failover: decision latency by phase (baseline: steady)",
                ["phase", "calls", "s", "p50 ms", "p99 ms", "p50 / baseline"],
                [[p["phase"], p["calls"], p["seconds"], p["latency"].get("p50_ms", "-"),
                  p["latency"].get("p99_ms", "-"), p["p50_ratio"]] for p in results["phases"]])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench failover")
    parser.add_argument("--quick", action="store_true", help="20 s instead of 60 s")
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--rate", type=float, default=40.0, help="calls a second")
    parser.add_argument("--sqlite", action="store_true", help="one SQLite file, not PostgreSQL")
    parser.add_argument("--keep", type=Path, default=None,
                        help="work in this directory and keep it (node logs, Redis logs)")
    args = parser.parse_args(argv)
    seconds = args.seconds or (20.0 if args.quick else 60.0)
    results = asyncio.run(run(seconds, args.rate, sqlite=args.sqlite, workdir=args.keep))
    path = write_result(NAME, results)
    console.print(f"wrote {path}")
    return results


if __name__ == "__main__":
    main()

"""FastAGI routing under load: the protocol floor vs privnum (SQLite, PostgreSQL+Redis) vs
process-per-call AGI.

    python -m bench agi_load [--quick | --full] [--calls N] [--concurrency C] [--profile]

Defaults (fit the ~10-minute ``python -m bench`` budget): up to 10 000 calls or 25 s per
server variant, (d) 24 calls at C=4. ``--full``: the issue's N = 20 000 calls (45 s cap) and
100 process-per-call calls. ``--quick``: 3 000 calls / 15 s, (d) 12 calls.

(a) floor: our ``FastAgiServer`` with a handler sending the same answer (a bridge's
``SET VARIABLE`` and ``EXEC MSet``, same variables), no look-up; (b) ``RouteHandler`` on
SQLite; (c) on PostgreSQL + Redis index; (d) one process per call (``privnum agi`` when it
exists, else ``python -m bench.agi_script``), fewer calls. Every server runs in its own
process; the driver runs in this one.
Targets: c >= 0.8 x a calls/s; c >= 100 x d calls/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

from bench import seed
from bench.agi_driver import LoadResult, build_envs, run_load, run_script_load
from bench.agi_stack import Stores, agi_server, seeded_stores
from bench.common import (
    RESULTS,
    ROOT,
    latency_summary,
    print_table,
    proc_cpu_seconds,
    ratio,
    write_result,
)

NAME = "agi_load"


def summarize(label: str, res: LoadResult, server_cpu: float = 0.0) -> dict[str, Any]:
    out: dict[str, Any] = {
        "variant": label, "calls": res.calls, "completed": res.completed, "lost": res.lost,
        "wrong_action": res.wrong_action, "seconds": round(res.seconds, 3),
        "calls_per_s": round(res.calls_per_s, 1),
        "decision": latency_summary(res.decision_s), "call": latency_summary(res.total_s),
        "driver_cpu_us_per_call": round(res.driver_cpu_seconds / max(1, res.completed) * 1e6),
        "errors": res.errors,
    }
    if server_cpu:
        out["server_cpu_us_per_call"] = round(server_cpu / max(1, res.completed) * 1e6)
        # Below 1: the server waited (on the driver, Redis, PostgreSQL) part of the run.
        out["server_cores_used"] = round(server_cpu / res.seconds, 3) if res.seconds else 0.0
    return out


async def server_variant(label: str, mode: str, env: dict[str, str], envs: list[bytes],
                         expected: list[str | None], concurrency: int, warmup: int,
                         profile: Path | None = None, max_seconds: float | None = None
                         ) -> dict[str, Any]:
    async with agi_server(mode, env, profile=profile) as srv:
        if warmup:
            await run_load("127.0.0.1", srv.port, envs[:warmup], expected[:warmup], concurrency)
        if profile is not None:
            os.kill(srv.pid, signal.SIGUSR1)  # profile the measured run only
        cpu0 = proc_cpu_seconds(srv.pid)
        res = await run_load("127.0.0.1", srv.port, envs[warmup:], expected[warmup:],
                             concurrency, max_seconds=max_seconds)
        cpu = proc_cpu_seconds(srv.pid) - cpu0
    out = summarize(label, res, cpu)
    out["server_stats"] = srv.stats
    hits, reads = srv.stats.get("index_hits"), srv.stats.get("sql_reads")
    if isinstance(hits, int) and isinstance(reads, int):
        # Whole server life (warm-up included): how many look-ups Redis answered alone.
        out["fast_path"] = {"index_hits": hits, "sql_reads": reads,
                            "hit_share": ratio(hits, hits + reads)}
    return out


def fast_path_cell(variant: dict[str, Any]) -> str:
    fp = variant.get("fast_path")
    if not fp:
        return "-"
    return f"{fp['index_hits']:,} / {fp['sql_reads']:,} ({fp['hit_share']:.0%})"


def script_argv() -> tuple[list[str], str]:
    """``privnum agi`` if the command exists in this tree, else the bench fallback."""
    privnum = Path(sys.executable).with_name("privnum")
    cli_serve = ROOT / "scripts" / "cli_serve.py"
    if privnum.exists() and cli_serve.exists() and "agi" in cli_serve.read_text():
        return [str(privnum), "agi"], "privnum agi"
    return [sys.executable, "-m", "bench.agi_script"], "python -m bench.agi_script"


async def script_variant(env: dict[str, str], envs: list[bytes], expected: list[str | None],
                         concurrency: int) -> dict[str, Any]:
    argv, how = script_argv()
    probe = await run_script_load(argv, env, envs[:1], expected[:1], 1)
    if probe.completed != 1 or probe.wrong_action:
        fallback = [sys.executable, "-m", "bench.agi_script"]
        if argv != fallback:
            argv, how = fallback, f"python -m bench.agi_script ({how} failed the probe)"
    res = await run_script_load(argv, env, envs[1:], expected[1:], concurrency)
    out = summarize("d: process per call", res)
    out["command"] = how
    out["concurrency"] = concurrency
    return out


def calls_for(stores: Stores, n: int, run_tag: str) -> tuple[list[bytes], list[str | None],
                                                               dict[str, int]]:
    mix = seed.call_mix(stores.population, n)
    envs = build_envs([(seed.national_digits(c), seed.national_digits(x)) for _, c, x in mix],
                      run_tag)
    kinds: dict[str, int] = {}
    for kind, _, _ in mix:
        kinds[kind] = kinds.get(kind, 0) + 1
    return envs, [seed.expected_actions(k) for k, _, _ in mix], kinds


async def run(calls: int = 20_000, concurrency: int = 100, script_calls: int = 100,
              script_concurrency: int = 4, pool_size: int = 1_000, bindings: int = 10_000,
              profile: bool = False, quiet: bool = False, max_seconds: float | None = 60.0
              ) -> dict[str, Any]:
    warmup = max(50, calls // 50)
    results: dict[str, Any] = {"params": dict(
        calls=calls, concurrency=concurrency, warmup=warmup, script_calls=script_calls,
        script_concurrency=script_concurrency, pool_size=pool_size, bindings=bindings,
        max_seconds_per_variant=max_seconds)}
    async with seeded_stores(pool_size, bindings) as stores:
        tag = f"r{os.getpid()}"
        variants = []
        envs, expected, kinds = calls_for(stores, warmup + calls, tag + "a")
        results["call_mix"] = kinds
        floor_expected: list[str | None] = [None] * len(envs)
        variants.append(await server_variant("a: floor (no look-up)", "floor", stores.pg_env,
                                             envs, floor_expected, concurrency, warmup,
                                             max_seconds=max_seconds))
        envs, expected, _ = calls_for(stores, warmup + calls, tag + "b")
        variants.append(await server_variant("b: privnum SQLite", "route", stores.sqlite_env,
                                             envs, expected, concurrency, warmup,
                                             max_seconds=max_seconds))
        envs, expected, _ = calls_for(stores, warmup + calls, tag + "c")
        prof = RESULTS / "agi_load_profile_c.txt" if profile else None
        variants.append(await server_variant("c: privnum PostgreSQL+Redis", "route",
                                             stores.pg_env, envs, expected, concurrency,
                                             warmup, profile=prof, max_seconds=max_seconds))
        envs, expected, _ = calls_for(stores, script_calls + 1, tag + "d")
        variants.append(await script_variant(stores.pg_env, envs, expected, script_concurrency))
    a, b, c, d = (v["calls_per_s"] for v in variants)
    results["variants"] = variants
    results["ratios"] = {"b/a": ratio(b, a), "c/a": ratio(c, a), "c/d": ratio(c, d)}
    results["targets"] = {
        "c/a >= 0.8": results["ratios"]["c/a"] >= 0.8,
        "c/d >= 100": results["ratios"]["c/d"] >= 100,
    }
    results["lost_total"] = sum(v["lost"] for v in variants)
    results["wrong_action_total"] = sum(v["wrong_action"] for v in variants)
    if not quiet:
        print_table(
            f"FastAGI routing: up to {calls:,} calls (or {max_seconds or 0:g} s) per variant at "
            f"C={concurrency} (d: {script_calls} calls at C={script_concurrency})",
            ["variant", "calls/s", "p50 ms", "p99 ms", "p99.9 ms", "call p99 ms",
             "srv CPU us/call", "Redis hits / SQL reads", "lost", "wrong"],
            [[v["variant"], v["calls_per_s"], v["decision"]["p50_ms"], v["decision"]["p99_ms"],
              v["decision"]["p999_ms"], v["call"]["p99_ms"],
              v.get("server_cpu_us_per_call", "-"), fast_path_cell(v), v["lost"],
              v["wrong_action"]]
             for v in variants])
        keyed = kinds.get("merchant", 0) + kinds.get("callback", 0)
        print(f"merchant + callback calls = {keyed / max(1, sum(kinds.values())):.0%} of the "
              "mix; a current index answers strangers and non-pool numbers too (pool set), "
              "so the expected Redis share in (c) is 100 %")
        print_table("ratios (calls/s)", ["ratio", "value", "target"],
                    [["b/a", results["ratios"]["b/a"], "-"],
                     ["c/a", results["ratios"]["c/a"], ">= 0.8"],
                     ["c/d", results["ratios"]["c/d"], ">= 100"]])
    write_result(NAME, results)
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench agi_load")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--full", action="store_true", help="full-size run: 20 000 calls")
    parser.add_argument("--calls", type=int)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--script-calls", type=int)
    parser.add_argument("--max-seconds", type=float, help="time cap per variant (default 25)")
    parser.add_argument("--profile", action="store_true",
                        help="pyinstrument profile of server c -> bench/results/")
    args = parser.parse_args(argv)
    size = "quick" if args.quick else "full" if args.full else "default"
    calls = args.calls or {"quick": 3_000, "default": 10_000, "full": 20_000}[size]
    script_calls = args.script_calls or {"quick": 12, "default": 24, "full": 100}[size]
    max_seconds = args.max_seconds or {"quick": 15.0, "default": 25.0, "full": 45.0}[size]
    return asyncio.run(run(calls=calls, concurrency=args.concurrency,
                           script_calls=script_calls, profile=args.profile,
                           max_seconds=max_seconds))


if __name__ == "__main__":
    main()

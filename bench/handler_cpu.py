"""The route handler's own CPU per call, without sockets: ``python -m bench handler_cpu``.

    python -m bench handler_cpu [--quick] [--rounds N] [--calls N] [--concurrency N]
                                [--log-level INFO|WARNING] [--log-flush-seconds S]

The shipped handler (``scripts.call_path.route_stack`` on PostgreSQL + Redis: the Redis
look-up, the decision, the batching attempt writer) and the floor's handler
(``bench.wiring.FloorHandler``: the same answer, no look-up, no recording) each take the
callpath bench's call mix in this one process, through sessions whose peer is in memory:
the environment block is parsed as from a socket, every command is answered ``200``, and
nothing goes over a socket but the handler's own Redis and PostgreSQL traffic. Rounds are
interleaved; each round is timed with this process's CPU clock and ends once the round's
attempts are written, so the writer's work counts. The garbage collector is set as
``privnum serve`` sets it (``scripts.heap``), for both. Logging is set as ``privnum serve``
sets it, into a scratch file; at the default level here (WARNING) privnum writes no line;
``--log-level INFO`` (the service's default) adds its line per call, and that line's cost.

What it shows: privnum's extra CPU per call over the floor (the minimum over the rounds of
each, and the medians). Sockets, the driver and the servers are left out, so on a shared,
noisy box this moves only with the handler's own work: a change to the call path shows here
before it shows in calls/s (``python -m bench callpath``), whose server also spends the
socket work both variants share. Every answer is checked against the call's expected action.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from statistics import median
from typing import Any

from agi.deadline import DeadlineSweeper
from agi.server import Handler
from agi.session import AgiSession, read_environment
from bench.agi_driver import mset_action
from bench.agi_load import calls_for
from bench.agi_stack import Stores, seeded_stores
from bench.common import print_table, ratio, write_result
from bench.wiring import FloorHandler
from binding_store.attempt_writer import AttemptWriter
from scripts.call_path import CallPath, route_stack
from scripts.cli_serve import configure_logging
from scripts.heap import settle_for_serving
from scripts.logs import logging_restored
from scripts.settings import Settings, load_settings

NAME = "handler_cpu"
_REPLIES = b"200 result=1\n" * 4  # more than a call's commands (at most two)


class _Peer:
    """The session's writer: keeps what the handler sent (its action is checked)."""

    def __init__(self) -> None:
        self.sent = bytearray()

    def write(self, data: bytes) -> None:
        self.sent += data

    async def drain(self) -> None:
        return None

    def action(self) -> str | None:
        return mset_action(bytes(self.sent)).decode() or None


async def _call(handler: Handler, env: bytes, sweeper: DeadlineSweeper) -> str | None:
    reader = asyncio.StreamReader()
    reader.feed_data(env + _REPLIES)
    deadline = sweeper.watch()
    try:
        environment = await read_environment(reader, max_bytes=65_536, env_timeout=5.0,
                                             deadline=deadline)
        assert environment is not None
        peer = _Peer()
        await handler(AgiSession(reader, peer, environment, command_timeout=5.0,
                                 deadline=deadline))
        return peer.action()
    finally:
        sweeper.release(deadline)


async def _round(handler: Handler, envs: list[bytes], expected: list[str | None],
                 concurrency: int, sweeper: DeadlineSweeper) -> int:
    """Every call once, ``concurrency`` at a time; how many answers were not the expected
    action (``None`` expected: any answer will do)."""
    calls = list(zip(envs, expected, strict=True))
    calls.reverse()  # popped from the end: in the mix's order
    wrong = 0

    async def worker() -> None:
        nonlocal wrong
        while calls:
            env, want = calls.pop()
            got = await _call(handler, env, sweeper)
            if got is None or (want is not None and got != want):
                wrong += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return wrong


def _handled(writer: AttemptWriter) -> int:
    return writer.written + writer.refused


async def _written(writer: AttemptWriter, target: int, seconds: float = 60.0) -> None:
    async with asyncio.timeout(seconds):
        # the writer signals nothing: its counters are polled
        while _handled(writer) < target:  # noqa: ASYNC110
            await asyncio.sleep(0.01)


@contextmanager
def _serving_heap() -> Iterator[None]:
    """The collector as ``privnum serve`` sets it, then as it was."""
    thresholds = gc.get_threshold()
    settle_for_serving()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


@contextmanager
def _log_file(settings: Settings) -> Iterator[None]:
    """Logging as ``privnum serve`` sets it (level, format, batches), into a scratch file;
    then this process's logging as it was."""
    with tempfile.TemporaryFile("w+", encoding="utf-8") as stream, logging_restored():
        configure_logging(settings, stream)
        yield


@contextmanager
def _settings_env(stores: Stores) -> Iterator[None]:
    """The stores' ``PRIVNUM_*`` settings in this process's environment (for
    ``load_settings``), then the environment as it was."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("PRIVNUM_")}
    for key in saved:
        del os.environ[key]
    os.environ.update({k: v for k, v in stores.pg_env.items() if k.startswith("PRIVNUM_")})
    try:
        yield
    finally:
        for key in [k for k in os.environ if k.startswith("PRIVNUM_")]:
            del os.environ[key]
        os.environ.update(saved)


async def _rounds(stack: CallPath, stores: Stores, calls: int, rounds: int,
                  concurrency: int) -> tuple[dict[str, list[float]], dict[str, int]]:
    """CPU microseconds per call of each round after the first (which warms both:
    connections, caches, plans), and the wrong answers, per handler."""
    per_call: dict[str, list[float]] = {"floor": [], "privnum": []}
    wrong = {"floor": 0, "privnum": 0}
    handlers: dict[str, Handler] = {"floor": FloorHandler(), "privnum": stack.handler}
    sweeper = DeadlineSweeper()
    try:
        with _serving_heap():
            for n in range(rounds + 1):
                envs, expected, _ = calls_for(stores, calls, f"hcpu{os.getpid()}r{n}")
                for name, handler in handlers.items():
                    done = _handled(stack.attempts)
                    began = time.process_time()
                    missed = await _round(handler, envs, expected if name == "privnum"
                                          else [None] * len(envs), concurrency, sweeper)
                    if name == "privnum":
                        # the round's attempts written: the writer's work counts
                        await _written(stack.attempts, done + calls)
                    seconds = time.process_time() - began
                    if n:
                        per_call[name].append(seconds / calls * 1e6)
                        wrong[name] += missed
    finally:
        await sweeper.close()
    return per_call, wrong


async def run(calls: int = 6_000, rounds: int = 5, concurrency: int = 10,
              pool_size: int = 1_000, bindings: int = 10_000, quiet: bool = False,
              log_level: str = "WARNING", log_flush_seconds: float | None = None
              ) -> dict[str, Any]:
    results: dict[str, Any] = {"params": dict(calls=calls, rounds=rounds,
                                              concurrency=concurrency, pool_size=pool_size,
                                              bindings=bindings, log_level=log_level,
                                              log_flush_seconds=log_flush_seconds)}
    async with seeded_stores(pool_size, bindings, sqlite=False, tag="hcpu") as stores:
        with _settings_env(stores):
            settings = load_settings()
        settings.log_level = log_level  # type: ignore[assignment]  # checked by argparse
        if log_flush_seconds is not None:
            settings.log.flush_seconds = log_flush_seconds
        with _log_file(settings):
            async with route_stack(settings) as stack:
                per_call, wrong = await _rounds(stack, stores, calls, rounds, concurrency)
    summary = {name: {"us_per_call_rounds": [round(v, 1) for v in values],
                      "min_us": round(min(values), 1), "median_us": round(median(values), 1)}
               for name, values in per_call.items()}
    results.update(summary)
    results["extra_us_min"] = round(summary["privnum"]["min_us"] - summary["floor"]["min_us"], 1)
    results["extra_us_median"] = round(
        summary["privnum"]["median_us"] - summary["floor"]["median_us"], 1)
    results["floor_over_privnum_min"] = ratio(summary["floor"]["min_us"],
                                              summary["privnum"]["min_us"])
    results["wrong_answers"] = wrong
    if not quiet:
        print_table(f"route handler CPU per call, in process, C = {concurrency} "
                    f"({calls} calls x {rounds} rounds, interleaved)",
                    ["handler", "us/call per round", "min", "median", "wrong answers"],
                    [[name, summary[name]["us_per_call_rounds"], summary[name]["min_us"],
                      summary[name]["median_us"], wrong[name]] for name in per_call])
        print(f"privnum's own work per call: {results['extra_us_min']} us (minimums), "
              f"{results['extra_us_median']} us (medians); floor / privnum (minimums): "
              f"{results['floor_over_privnum_min']}")
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m bench {NAME}")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--calls", type=int)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--log-level", choices=["INFO", "WARNING"], default="WARNING",
                        help="INFO: privnum writes its line per call as shipped (to a scratch "
                        "file), and its cost counts")
    parser.add_argument("--log-flush-seconds", type=float,
                        help="privnum's log.flush_seconds (default: the setting's, 0)")
    args = parser.parse_args(argv)
    calls = args.calls or (1_000 if args.quick else 6_000)
    rounds = args.rounds or (2 if args.quick else 5)
    write_result(NAME, asyncio.run(run(calls, rounds, args.concurrency,
                                       log_level=args.log_level,
                                       log_flush_seconds=args.log_flush_seconds)))

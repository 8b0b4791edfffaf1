"""The benchmark's FastAGI server process: ``python -m bench.agi_server floor|route``.

Prints ``READY <port>`` once listening, serves until SIGTERM (graceful shutdown), then prints
``STATS <json>`` (server counters, index hits, SQL reads, attempts written and batches, the
attempt writer's backlog when SIGTERM came).
Settings come from ``PRIVNUM_*`` environment variables, as for ``privnum serve``; the route
handler is ``scripts.call_path.route_stack(settings)``, the shipped wiring (batched attempt
writer included), in a process whose garbage collector is set as ``privnum serve`` sets it
(``scripts.heap``); the floor's is left at CPython's defaults. ``--profile FILE`` writes a
pyinstrument text profile of the serving period.
The route server logs as ``privnum serve`` does (``PRIVNUM_LOG_LEVEL``, INFO by default: a
line per call) to its stderr, which ``bench.agi_stack.agi_server`` sends to a file; the floor
logs warnings only (it has no line per call to write).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from contextlib import AsyncExitStack
from pathlib import Path

from pyinstrument import Profiler

from agi.server import FastAgiServer, Handler
from bench.wiring import FloorHandler
from scripts.call_path import route_stack
from scripts.cli_serve import configure_logging
from scripts.heap import settle_for_serving
from scripts.settings import Settings, load_settings


async def serve(mode: str, port: int, profiler: Profiler | None,
                settings: Settings | None) -> dict[str, object]:
    """Serve ``mode`` (``route``: on ``settings``) until SIGTERM; the server's stats."""
    async with AsyncExitStack() as resources:
        stack = None
        handler: Handler
        if mode == "floor":
            handler = FloorHandler()
        else:
            assert settings is not None
            stack = await resources.enter_async_context(route_stack(settings))
            handler = stack.handler
        server = FastAgiServer({"route": handler}, host="127.0.0.1", port=port,
                               command_timeout=5.0, call_timeout=10.0)
        await server.start()
        if stack is not None:
            settle_for_serving()  # as privnum serve's FastAGI service does once it listens
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        # SIGUSR1 = "the measured run starts now": the profile covers only that (no start-up,
        # no warm-up).
        if profiler is not None:
            loop.add_signal_handler(signal.SIGUSR1, profiler.start)
        print(f"READY {server.port}", flush=True)
        await stop.wait()
        if profiler is not None and profiler.is_running:
            profiler.stop()
        # The writer's backlog when the load stopped: what a longer peak would have to wait
        # for (it is written at shutdown, outside any measured window).
        backlog = stack.attempts.queued if stack is not None else None
        await server.shutdown(grace=5.0)
        stats: dict[str, object] = dict(server.stats.as_dict())
        if backlog is not None:
            stats.update(attempts_queued_at_stop=backlog)
        if stack is not None:
            stats.update(index_hits=stack.lookup.index_hits, sql_reads=stack.lookup.sql_reads)
            await stack.attempts.close()  # flush now, so the counts below are final
            stats.update(attempts_written=stack.attempts.written,
                         attempt_batches=stack.attempts.batches)
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.agi_server")
    parser.add_argument("mode", choices=["floor", "route"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--log-level", help="route: instead of the settings' (PRIVNUM_LOG_LEVEL, "
                        "INFO by default, a line per call); floor: WARNING by default")
    args = parser.parse_args()
    settings = None
    if args.mode == "route":
        # Logged as privnum serve logs (its level and format, a line per call at INFO): the
        # line is part of what a served call costs.
        settings = load_settings()
        if args.log_level:
            settings.log_level = args.log_level
        configure_logging(settings)
    else:
        logging.basicConfig(level=args.log_level or "WARNING", stream=sys.stderr)
    profiler = Profiler(interval=0.0005, async_mode="disabled") if args.profile else None
    stats = asyncio.run(serve(args.mode, args.port, profiler, settings))
    if profiler is not None and args.profile is not None:
        args.profile.parent.mkdir(parents=True, exist_ok=True)
        args.profile.write_text(profiler.output_text(unicode=False, color=False, show_all=False))
    print("STATS " + json.dumps(stats), flush=True)


if __name__ == "__main__":
    main()

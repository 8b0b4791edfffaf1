"""The benchmark's FastAGI server process: ``python -m bench.agi_server floor|route``.

Prints ``READY <port>`` once listening, serves until SIGTERM (graceful shutdown), then prints
``STATS <json>`` (server counters, index hits, SQL reads). Settings come from ``PRIVNUM_*``
environment variables, as for ``privnum serve``. ``--profile FILE`` writes a pyinstrument
text profile of the whole serving period.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from pathlib import Path

from pyinstrument import Profiler

from agi.server import FastAgiServer, Handler
from bench.wiring import FloorHandler, route_handler
from scripts.settings import load_settings


async def serve(mode: str, port: int) -> dict[str, object]:
    closer = None
    lookup = None
    handler: Handler
    if mode == "floor":
        handler = FloorHandler()
    else:
        settings = load_settings()
        handler, lookup, closer = route_handler(settings)
    server = FastAgiServer({"route": handler}, host="127.0.0.1", port=port,
                           command_timeout=5.0, call_timeout=10.0)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print(f"READY {server.port}", flush=True)
    await stop.wait()
    await server.shutdown(grace=5.0)
    stats: dict[str, object] = dict(server.stats.as_dict())
    if lookup is not None:
        stats.update(index_hits=lookup.index_hits, sql_reads=lookup.sql_reads)
    if closer is not None:
        await closer()
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.agi_server")
    parser.add_argument("mode", choices=["floor", "route"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args()
    logging.basicConfig(level=args.log_level, stream=sys.stderr)
    profiler = None
    if args.profile is not None:
        profiler = Profiler(interval=0.0005)
        profiler.start()
    stats = asyncio.run(serve(args.mode, args.port))
    if profiler is not None:
        profiler.stop()
        args.profile.parent.mkdir(parents=True, exist_ok=True)
        args.profile.write_text(profiler.output_text(unicode=False, color=False, show_all=False))
    print("STATS " + json.dumps(stats), flush=True)


if __name__ == "__main__":
    main()

"""Process-per-call AGI for the benchmark: ``python -m bench.agi_script``.

The fallback for ``privnum agi`` while that command does not exist: the same handler built
from ``PRIVNUM_*`` settings, served over stdin/stdout by ``agi.script_mode``.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from agi.script_mode import run_script_async
from bench.wiring import route_handler
from scripts.settings import load_settings


async def _main() -> int:
    handler, _, close = route_handler(load_settings())
    try:
        return await run_script_async(handler, sys.stdin, sys.stdout)
    finally:
        await close()


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    sys.exit(asyncio.run(_main()))


if __name__ == "__main__":
    main()

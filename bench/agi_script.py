"""Process-per-call AGI for the benchmark: ``python -m bench.agi_script``.

The fallback for ``privnum agi`` where that command is missing: the same shipped wiring
(``route_stack`` from ``PRIVNUM_*`` settings), served over stdin/stdout by ``agi.script_mode``.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from agi.script_mode import run_script_async
from scripts.call_path import route_stack
from scripts.settings import load_settings


async def _main() -> int:
    async with route_stack(load_settings()) as stack:
        return await run_script_async(stack.handler, sys.stdin, sys.stdout)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    sys.exit(asyncio.run(_main()))


if __name__ == "__main__":
    main()

"""``python -m bench [name ...] [--quick] [--clean]``: run benchmarks, print tables, write JSON.

Names: agi_load, callpath, allocation, cdr_ingest, cdr_export, call_log_query, scaling,
cli_startup, webhooks, api_export, api_reveal, bind_file, onboarding, api_idempotency, failover,
extension_pool, batch_writes, handler_cpu (default: all; ``cdr_*`` run only when those modules
exist).
``--clean`` drops the cached call-log database.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import inspect
import sys
import time
from types import ModuleType

from bench.common import console, machine

ORDER = ("agi_load", "callpath", "allocation", "cdr_ingest", "cdr_export", "call_log_query",
         "scaling",
         "cli_startup", "webhooks", "api_export", "api_reveal", "bind_file", "onboarding",
         "api_idempotency", "failover", "extension_pool", "batch_writes", "handler_cpu")
OPTIONAL = ("cdr_ingest", "cdr_export")
PROFILED = ("agi_load", "allocation", "api_reveal")


def run_main(module: ModuleType, argv: list[str]) -> None:
    """``main(argv)`` when it takes arguments; else ``main()`` (awaited if it is a coroutine
    function) with ``sys.argv`` holding no flags: such a module (another engineer's script)
    parses its own options and knows neither ``--quick`` nor ``--profile``."""
    if inspect.signature(module.main).parameters:
        module.main(argv)
        return
    saved = sys.argv
    sys.argv = [f"bench {module.__name__}"]
    try:
        if inspect.iscoroutinefunction(module.main):
            asyncio.run(module.main())
        else:
            module.main()
    finally:
        sys.argv = saved


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "-h" in args or "--help" in args:
        console.print(__doc__)
        return 0
    if "--clean" in args:
        from bench import call_log_query  # noqa: PLC0415 - only for this flag

        call_log_query.clean()
        console.print("dropped the cached call-log database")
        return 0
    # Flags are passed on to every benchmark (``--quick``, ``--profile``); ``--profile`` is
    # dropped for the ones that do not take it.
    flags = [a for a in args if a.startswith("-")]
    names = [a for a in args if not a.startswith("-")] or list(ORDER)
    unknown = [n for n in names if n not in ORDER]
    if unknown:
        hint = (" (an option's value goes after '=', e.g. --rounds=3)"
                if any(n.isdigit() for n in unknown) else "")
        console.print(f"unknown benchmark(s): {', '.join(unknown)} (one of {', '.join(ORDER)})"
                      + hint)
        return 2
    console.print(f"machine: {machine()}")
    began = time.perf_counter()
    failed = []
    for name in names:
        if name in OPTIONAL and importlib.util.find_spec(f"bench.{name}") is None:
            console.print(f"[{name}] not present in this tree, skipped")
            continue
        module = importlib.import_module(f"bench.{name}")
        passed = [f for f in flags if f != "--profile" or name in PROFILED]
        console.rule(name)
        t0 = time.perf_counter()
        try:
            run_main(module, passed)
        except Exception as exc:
            failed.append(name)
            console.print(f"[{name}] failed: {type(exc).__name__}: {exc}")
        except SystemExit as exc:  # its own usage error (argparse): the others still run
            failed.append(name)
            console.print(f"[{name}] failed: exited with {exc.code}")
        console.print(f"[{name}] {time.perf_counter() - t0:.0f} s")
    console.print(f"all done in {time.perf_counter() - began:.0f} s"
                  + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Extension mode against AXB for one busy caller, on PostgreSQL, in the same run.

    python -m bench extension_pool [--quick] [--bindings N] [--length L] [--tasks T]

1. Pool size needed: one caller A holds N active bindings (default 10,000). In AXB mode
   every binding needs its own X; in extension mode one X holds 10^L bindings. The figure is
   measured, not computed: a pool of exactly the predicted size takes all N bindings, and one
   binding more is refused ("pool exhausted"), in each mode.
2. Allocation speed: the same N bindings of one caller, issued by T concurrent tasks, in AXB
   mode (pool of N numbers) and in extension mode (pool of ceil(N / 10^L) numbers);
   bindings per second and the ratio extension / AXB, and the median time of one issue over
   the last tenth of the run (the caller already holds 90 % of N: what an allocation costs
   deep into a busy caller's bindings). Afterwards: duplicate active (X, extension) and
   (A, X) AXB pairs (must be 0).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from bench.common import print_table, ratio, scratch_pg, write_result
from binding_store.all_models import Base
from binding_store.bindings import BindingPolicy, BindingStore
from binding_store.crypto import BuyerCipher, KeyRing
from binding_store.db import Database
from binding_store.extension_store import ExtensionPool
from binding_store.models import Account, CallerNumber, PoolNumber, Shop
from routing.errors import PoolExhausted
from routing.extensions import ModePolicy, NumberMode

NAME = "extension_pool"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CALLER = "+8613800000001"

_DUPLICATES = """
SELECT
 (SELECT count(*) FROM (SELECT 1 FROM bindings WHERE state = 'active' AND extension <> ''
   GROUP BY virtual_x, extension HAVING count(*) > 1) d) AS x_ext,
 (SELECT count(*) FROM (SELECT 1 FROM bindings WHERE state = 'active' AND extension = ''
   GROUP BY caller_a, virtual_x HAVING count(*) > 1) d) AS ax
"""


def _x(i: int) -> str:
    return f"+86170{i:08d}"


def _buyer(i: int) -> str:
    return f"+86139{i:08d}"


async def _world(url: str, numbers: int, length: int | None) -> Database:
    """A fresh schema: one enabled shop, caller A, ``numbers`` pool numbers in one mode."""
    db = Database(url, timeout=30.0, pool_size=32)
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.drop_all)
        await conn.run_sync(Base.metadata.create_all)
    async with db.session() as s:
        s.add(Shop(id="s1", name="s1", service_state="enabled", created_at=NOW, updated_at=NOW))
        await s.flush()
        s.add(Account(id="s1-main", shop_id="s1", role="main", created_at=NOW))
        s.add_all(PoolNumber(number=_x(i), region="", state="available", created_at=NOW)
                  for i in range(numbers))
        await s.flush()
        s.add(CallerNumber(shop_id="s1", number=CALLER, account_id="s1-main",
                           status="approved", created_at=NOW, updated_at=NOW))
        await s.commit()
    if length is not None:
        pool = ExtensionPool(db)
        for i in range(numbers):
            await pool.set_mode(_x(i), NumberMode.EXTENSION, length, actor="bench", now=NOW)
    return db


async def _issue_all(store: BindingStore, count: int, tasks: int, start: int = 0,
                     took: list[float] | None = None) -> tuple[float, int]:
    """Issue ``count`` bindings of the one caller with ``tasks`` concurrent tasks; seconds
    taken and how many were refused for lack of numbers. ``took`` gets each issue's
    seconds, in the order the issues started."""
    todo = iter(range(start, start + count))
    refused = 0
    times: dict[int, float] = {}

    async def worker() -> None:
        nonlocal refused
        for i in todo:
            began = time.perf_counter()
            try:
                await store.issue("s1", f"o{i}", "", CALLER, _buyer(i), NOW, actor="bench")
            except PoolExhausted:
                refused += 1
            times[i] = time.perf_counter() - began

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    if took is not None:
        took.extend(times[i] for i in sorted(times))
    return time.perf_counter() - started, refused


async def _run_mode(url: str, mode: NumberMode, bindings: int, length: int, tasks: int
                    ) -> dict[str, Any]:
    numbers = bindings if mode is NumberMode.AXB else math.ceil(bindings / 10 ** length)
    db = await _world(url, numbers, None if mode is NumberMode.AXB else length)
    policy = ModePolicy.AXB if mode is NumberMode.AXB else ModePolicy.EXTENSION
    store = BindingStore(db, BuyerCipher(KeyRing.generate()),
                         policy=BindingPolicy(mode_policy=policy, max_attempts=200))
    took: list[float] = []
    seconds, refused = await _issue_all(store, bindings, tasks, took=took)
    deep = took[-max(1, len(took) // 10):]  # the caller already holds 90 % of N
    _, one_more_refused = await _issue_all(store, 1, 1, start=bindings)
    async with db.engine.connect() as conn:
        dup = (await conn.execute(text(_DUPLICATES))).one()
    await db.dispose()
    return {"mode": mode.value, "pool_numbers": numbers, "bindings": bindings,
            "refused": refused, "one_more_refused": bool(one_more_refused),
            "seconds": seconds, "per_second": bindings / seconds,
            "deep_issue_ms": statistics.median(deep) * 1000,
            "retries": store.stats.retries, "duplicates_x_ext": int(dup.x_ext),
            "duplicates_ax": int(dup.ax)}


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    results = []
    async with scratch_pg("extension_pool") as url:
        for mode in (NumberMode.AXB, NumberMode.EXTENSION):
            results.append(await _run_mode(url, mode, args.bindings, args.length, args.tasks))
    axb, ext = results
    return {"bindings": args.bindings, "length": args.length, "tasks": args.tasks,
            "axb": axb, "extension": ext,
            "pool_ratio_axb_over_extension": ratio(axb["pool_numbers"], ext["pool_numbers"]),
            "speed_ratio_extension_over_axb": ratio(ext["per_second"], axb["per_second"]),
            "deep_issue_ratio_axb_over_extension": ratio(axb["deep_issue_ms"],
                                                         ext["deep_issue_ms"])}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench extension_pool")
    parser.add_argument("--quick", action="store_true", help="1,000 bindings")
    parser.add_argument("--bindings", type=int, default=10_000)
    parser.add_argument("--length", type=int, default=4)
    parser.add_argument("--tasks", type=int, default=16)
    args = parser.parse_args(argv or [])
    if args.quick:
        args.bindings = min(args.bindings, 1_000)
    out = asyncio.run(_main(args))
    rows = [[r["mode"], r["pool_numbers"], r["bindings"], r["refused"],
             "yes" if r["one_more_refused"] else "NO", f"{r['per_second']:.0f}",
             f"{r['deep_issue_ms']:.1f}", r["retries"],
             r["duplicates_x_ext"] + r["duplicates_ax"]]
            for r in (out["axb"], out["extension"])]
    print_table(f"{out['bindings']} active bindings of one caller (extensions of "
                f"{out['length']} digits, {out['tasks']} tasks, PostgreSQL)",
                ["mode", "pool numbers", "bindings", "refused", "one more refused",
                 "bindings/s", "ms/issue, last 10 %", "retries", "duplicates"], rows)
    print_table("extension mode against AXB, same run",
                ["pool size AXB / extension", "speed extension / AXB",
                 "one issue, last 10 %: AXB / extension"],
                [[f"{out['pool_ratio_axb_over_extension']:.0f}x",
                  f"{out['speed_ratio_extension_over_axb']:.2f}x",
                  f"{out['deep_issue_ratio_axb_over_extension']:.2f}x"]])
    write_result(NAME, out)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])

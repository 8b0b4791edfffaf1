"""Extension mode against AXB for one busy caller, on PostgreSQL, in the same run.

    python -m bench extension_pool [--quick] [--bindings N] [--length L] [--tail K] [--tasks T]

1. Pool size needed: one caller A holds N active bindings (default 10,000). In AXB mode
   every binding needs its own X; in extension mode one X holds 10^L bindings. The figure is
   measured at the boundary: a pool of exactly the predicted size takes all N bindings, and
   one binding more is refused ("pool exhausted"), in each mode. The first N - K bindings
   are written straight into the tables (as the allocator would have placed them: AXB one X
   each, extension the first slots in the rule's order); the last K go through the
   allocator (``BindingStore.issue``), so the boundary is the allocator's own.
2. Allocation speed, deep into a busy caller: those last K bindings (default 500), issued by
   T concurrent tasks while A already holds N - K: bindings per second and the median time
   of one issue in each mode, and the ratios extension / AXB. (AXB's search for a free X
   skips every X A already holds, so it slows as A's bindings grow; extension mode's search
   reads a small window of free slots.) Afterwards: duplicate active (X, extension) and
   (A, X) AXB pairs (must be 0).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, text, update

from bench.common import print_table, ratio, scratch_pg, write_result
from binding_store.all_models import Base
from binding_store.binding_policy import BindingPolicy
from binding_store.bindings import BindingStore
from binding_store.crypto import BuyerCipher, KeyRing
from binding_store.db import Database
from binding_store.extension_models import PoolExtension
from binding_store.extension_store import ExtensionPool
from binding_store.models import Account, Binding, CallerNumber, PoolNumber, Shop
from routing.errors import PoolExhausted
from routing.extensions import ModePolicy, NumberMode
from routing.numbers import mask

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


async def _seed_active(db: Database, count: int, length: int | None) -> None:
    """``count`` active bindings of the caller, written in bulk where the allocator would
    have put them (AXB: X 0, 1, ...; extension: slots in the rule's order, which for never
    released slots is number then extension) and their slots marked held."""
    per_x = 1 if length is None else 10 ** length
    rows = [{"id": f"seed{i:012d}", "shop_id": "s1", "order_id": f"seed-{i}", "buyer_id": "",
             "caller_a": CALLER, "virtual_x": _x(i // per_x),
             "extension": "" if length is None else f"{i % per_x:0{length}d}",
             "buyer_cipher": b"seed", "buyer_bidx": f"seed-{i}",
             "buyer_masked": mask(_buyer(i)), "created_at": NOW,
             "expires_at": NOW + timedelta(days=30), "released_at": None, "state": "active"}
            for i in range(count)]
    async with db.session() as s:
        for start in range(0, len(rows), 2_000):
            await s.execute(insert(Binding), rows[start:start + 2_000])
        if length is not None:
            await s.execute(update(PoolExtension).where(
                PoolExtension.number == Binding.virtual_x,
                PoolExtension.extension == Binding.extension,
                Binding.id.like("seed%")).values(held_by=Binding.id)
                .execution_options(synchronize_session=False))
        await s.commit()
    async with db.engine.begin() as conn:  # statistics as a long-running database has them
        await conn.execute(text("ANALYZE"))


async def _run_mode(url: str, mode: NumberMode, bindings: int, length: int, tail: int,
                    tasks: int) -> dict[str, Any]:
    numbers = bindings if mode is NumberMode.AXB else math.ceil(bindings / 10 ** length)
    ext_length = None if mode is NumberMode.AXB else length
    db = await _world(url, numbers, ext_length)
    seeded = bindings - tail
    await _seed_active(db, seeded, ext_length)
    policy = ModePolicy.AXB if mode is NumberMode.AXB else ModePolicy.EXTENSION
    store = BindingStore(db, BuyerCipher(KeyRing.generate()),
                         policy=BindingPolicy(mode_policy=policy, max_attempts=200))
    took: list[float] = []
    seconds, refused = await _issue_all(store, tail, tasks, start=seeded, took=took)
    _, one_more_refused = await _issue_all(store, 1, 1, start=bindings)
    async with db.engine.connect() as conn:
        dup = (await conn.execute(text(_DUPLICATES))).one()
        active = (await conn.execute(text(
            "SELECT count(*) FROM bindings WHERE state = 'active'"))).scalar_one()
    await db.dispose()
    return {"mode": mode.value, "pool_numbers": numbers, "bindings": bindings,
            "active": int(active), "seeded": seeded, "issued": tail - refused,
            "refused": refused, "one_more_refused": bool(one_more_refused),
            "seconds": seconds, "per_second": (tail - refused) / seconds,
            "issue_ms_median": statistics.median(took) * 1000,
            "retries": store.stats.retries, "duplicates_x_ext": int(dup.x_ext),
            "duplicates_ax": int(dup.ax)}


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    results = []
    async with scratch_pg("extension_pool") as url:
        for mode in (NumberMode.AXB, NumberMode.EXTENSION):
            results.append(await _run_mode(url, mode, args.bindings, args.length,
                                           min(args.tail, args.bindings), args.tasks))
    axb, ext = results
    return {"bindings": args.bindings, "length": args.length, "tasks": args.tasks,
            "tail": min(args.tail, args.bindings),
            "axb": axb, "extension": ext,
            "pool_ratio_axb_over_extension": ratio(axb["pool_numbers"], ext["pool_numbers"]),
            "speed_ratio_extension_over_axb": ratio(ext["per_second"], axb["per_second"]),
            "issue_ms_ratio_axb_over_extension": ratio(axb["issue_ms_median"],
                                                       ext["issue_ms_median"])}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench extension_pool")
    parser.add_argument("--quick", action="store_true", help="1,000 bindings")
    parser.add_argument("--bindings", type=int, default=10_000)
    parser.add_argument("--length", type=int, default=4)
    parser.add_argument("--tail", type=int, default=500,
                        help="bindings issued through the allocator (the rest are seeded)")
    parser.add_argument("--tasks", type=int, default=8)
    args = parser.parse_args(argv or [])
    if args.quick:
        args.bindings, args.tail = min(args.bindings, 1_000), min(args.tail, 200)
    out = asyncio.run(_main(args))
    rows = [[r["mode"], r["pool_numbers"], r["active"], r["refused"],
             "yes" if r["one_more_refused"] else "NO", f"{r['per_second']:.1f}",
             f"{r['issue_ms_median']:.1f}", r["retries"],
             r["duplicates_x_ext"] + r["duplicates_ax"]]
            for r in (out["axb"], out["extension"])]
    print_table(f"{out['bindings']} active bindings of one caller (extensions of "
                f"{out['length']} digits; the last {out['tail']} through the allocator, "
                f"{out['tasks']} tasks, PostgreSQL)",
                ["mode", "pool numbers", "active", "refused", "one more refused",
                 "bindings/s", "ms/issue (median)", "retries", "duplicates"], rows)
    print_table("extension mode against AXB, same run",
                ["pool size AXB / extension", "bindings/s extension / AXB",
                 "ms per issue AXB / extension"],
                [[f"{out['pool_ratio_axb_over_extension']:.0f}x",
                  f"{out['speed_ratio_extension_over_axb']:.2f}x",
                  f"{out['issue_ms_ratio_axb_over_extension']:.2f}x"]])
    write_result(NAME, out)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])

"""400 concurrent issue requests from 4 OS processes against PostgreSQL: the database, not
luck, keeps every active (A, X) and (B, X) pair unique and every order to one binding.

Reproduce and see the figures:  .venv/bin/pytest -s tests/binding_store/test_concurrency_issue.py
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import time
from collections import defaultdict
from multiprocessing.synchronize import Barrier
from typing import Any

import pytest
from sqlalchemy import func, select

from binding_store.binding_policy import BindingPolicy
from binding_store.bindings import BindingStore
from binding_store.crypto import BuyerCipher, KeyRing
from binding_store.db import Database
from binding_store.models import Binding
from tests.binding_store.test_bindings_helpers import NOW, buyer, caller, seed, virtual

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

PROCESSES = 4
PER_PROCESS = 100
CALLERS, BUYERS, POOL = 20, 80, 24  # 16 orders per A, 4 per B: at most 20 X busy per (A, B)
ORDERS = 320  # plus 80 repeated requests for already-requested orders


def _requests() -> list[tuple[str, str, str]]:
    orders = [(f"o{i}", caller(i % CALLERS), buyer(i % BUYERS)) for i in range(ORDERS)]
    rng = random.Random(7)
    repeats = rng.sample(orders, PROCESSES * PER_PROCESS - ORDERS)
    everything = orders + repeats
    rng.shuffle(everything)
    return everything


def _worker(url: str, ring: KeyRing, chunk: list[tuple[str, str, str]], barrier: Barrier
            ) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        # 100 tasks share 8+8 connections here, so waiting for one may take a while.
        db = Database(url, timeout=30.0, pool_size=8)
        bindings = BindingStore(db, BuyerCipher(ring), policy=BindingPolicy(max_attempts=60))
        results: list[tuple[str, str, str, bool]] = []
        errors: list[str] = []

        async def one(order: str, a: str, b: str) -> None:
            try:
                got = await bindings.issue("s1", order, "", a, b, NOW, actor="load")
            except Exception as exc:  # collected and asserted on below
                errors.append(f"{type(exc).__name__}: {exc}")
            else:
                results.append((order, got.binding_id, got.virtual_x, got.created))

        async with db.session() as s:  # connect before the start line
            await s.execute(select(1))
        barrier.wait()
        started = time.perf_counter()
        await asyncio.gather(*(one(*r) for r in chunk))
        elapsed = time.perf_counter() - started
        await db.dispose()
        return {"results": results, "errors": errors, "retries": bindings.stats.retries,
                "elapsed": elapsed}

    return asyncio.run(main())


async def test_400_concurrent_issues_from_4_processes(pg_database: Database, pg_url: str,
                                                      keyring: KeyRing,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    await seed(pg_database, callers={("s1", caller(i)): "approved" for i in range(CALLERS)},
               pool=[(virtual(i), "", None) for i in range(POOL)])
    requests = _requests()
    chunks = [requests[i::PROCESSES] for i in range(PROCESSES)]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(PROCESSES)
        started = time.perf_counter()
        with ctx.Pool(PROCESSES) as pool:
            outs = await asyncio.to_thread(
                pool.starmap, _worker, [(pg_url, keyring, c, barrier) for c in chunks])
        wall = time.perf_counter() - started

    errors = [e for o in outs for e in o["errors"]]
    assert errors == [], sorted(set(errors))
    results = [r for o in outs for r in o["results"]]
    assert len(results) == PROCESSES * PER_PROCESS
    by_order: dict[str, set[str]] = defaultdict(set)
    for order, binding_id, _x, _created in results:
        by_order[order].add(binding_id)
    assert len(by_order) == ORDERS
    assert all(len(ids) == 1 for ids in by_order.values())  # repeats got the winner's binding
    assert sum(1 for r in results if r[3]) == ORDERS  # exactly one creation per order

    async with pg_database.session() as s:
        active = Binding.state == "active"
        dup_ax = (await s.execute(select(Binding.caller_a, Binding.virtual_x).where(active)
                                  .group_by(Binding.caller_a, Binding.virtual_x)
                                  .having(func.count() > 1))).all()
        dup_bx = (await s.execute(select(Binding.buyer_bidx, Binding.virtual_x).where(active)
                                  .group_by(Binding.buyer_bidx, Binding.virtual_x)
                                  .having(func.count() > 1))).all()
        per_order = (await s.execute(select(Binding.order_id, func.count()).where(active)
                                     .group_by(Binding.order_id))).all()
        used_x = await s.scalar(select(func.count(func.distinct(Binding.virtual_x))))
    assert dup_ax == [] and dup_bx == []
    assert len(per_order) == ORDERS and all(n == 1 for _, n in per_order)

    retries = sum(o["retries"] for o in outs)
    slowest = max(o["elapsed"] for o in outs)
    with capsys.disabled():
        print(f"\n[concurrency] {len(results)} issue requests, {PROCESSES} processes x "
              f"{PER_PROCESS} tasks, PostgreSQL: {slowest:.2f} s (wall incl. spawn "
              f"{wall:.2f} s), {len(results) / slowest:.0f} req/s, {ORDERS} bindings over "
              f"{used_x} X, {retries} retries after lost races, duplicates (A,X)=0 (B,X)=0")

"""400 concurrent extension-mode issue requests from 4 OS processes against PostgreSQL, many
of one caller on few numbers: the database keeps every active (X, extension) unique and every
slot held by exactly the binding on it.

Reproduce and see the figures: .venv/bin/pytest -s tests/binding_store/test_concurrency_extension.py
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from multiprocessing.synchronize import Barrier
from typing import Any

import pytest
from sqlalchemy import func, select

from binding_store.binding_policy import BindingPolicy
from binding_store.bindings import BindingStore
from binding_store.crypto import BuyerCipher, KeyRing
from binding_store.db import Database
from binding_store.extension_models import PoolExtension
from binding_store.extension_store import ExtensionPool
from binding_store.models import Binding
from routing.extensions import ModePolicy, NumberMode
from tests.binding_store.test_bindings_helpers import NOW, buyer, caller, seed, virtual

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

PROCESSES = 4
PER_PROCESS = 100
CALLERS = 3  # most requests share a caller: the (A, X) keys could not tell them apart
NUMBERS, LENGTH = 3, 3  # 3000 slots; the never-released ones come first, so races are real


def _worker(url: str, ring: KeyRing, chunk: list[tuple[str, str, str]], barrier: Barrier
            ) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        db = Database(url, timeout=30.0, pool_size=8)
        bindings = BindingStore(db, BuyerCipher(ring), policy=BindingPolicy(
            max_attempts=60, mode_policy=ModePolicy.EXTENSION))
        results: list[tuple[str, str, str]] = []
        errors: list[str] = []

        async def one(order: str, a: str, b: str) -> None:
            try:
                got = await bindings.issue("s1", order, "", a, b, NOW, actor="load")
            except Exception as exc:  # collected and asserted on below
                errors.append(f"{type(exc).__name__}: {exc}")
            else:
                results.append((order, got.virtual_x, got.extension))

        async with db.session() as s:
            await s.execute(select(1))
        barrier.wait()
        started = time.perf_counter()
        await asyncio.gather(*(one(*r) for r in chunk))
        elapsed = time.perf_counter() - started
        await db.dispose()
        return {"results": results, "errors": errors, "retries": bindings.stats.retries,
                "elapsed": elapsed}

    return asyncio.run(main())


async def test_400_concurrent_extension_issues_from_4_processes(
        pg_database: Database, pg_url: str, keyring: KeyRing,
        capsys: pytest.CaptureFixture[str]) -> None:
    await seed(pg_database, callers={("s1", caller(i)): "approved" for i in range(CALLERS)},
               pool=[(virtual(i), "", None) for i in range(NUMBERS)])
    for i in range(NUMBERS):
        await ExtensionPool(pg_database).set_mode(virtual(i), NumberMode.EXTENSION, LENGTH,
                                                  actor="op", now=NOW)
    requests = [(f"o{i}", caller(i % CALLERS), buyer(i)) for i in range(PROCESSES * PER_PROCESS)]
    chunks = [requests[i::PROCESSES] for i in range(PROCESSES)]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(PROCESSES)
        with ctx.Pool(PROCESSES) as pool:
            outs = await asyncio.to_thread(
                pool.starmap, _worker, [(pg_url, keyring, c, barrier) for c in chunks])

    errors = [e for o in outs for e in o["errors"]]
    assert errors == [], sorted(set(errors))
    results = [r for o in outs for r in o["results"]]
    assert len(results) == PROCESSES * PER_PROCESS
    assert len({(x, ext) for _, x, ext in results}) == len(results)
    assert all(len(ext) == LENGTH for _, _, ext in results)

    async with pg_database.session() as s:
        active = Binding.state == "active"
        dup = (await s.execute(select(Binding.virtual_x, Binding.extension).where(active)
                               .group_by(Binding.virtual_x, Binding.extension)
                               .having(func.count() > 1))).all()
        count = await s.scalar(select(func.count()).select_from(Binding).where(active))
        held = dict((await s.execute(
            select(PoolExtension.held_by, func.concat(PoolExtension.number, "#",
                                                      PoolExtension.extension))
            .where(PoolExtension.held_by.is_not(None)))).all())
        by_id = dict((await s.execute(
            select(Binding.id, func.concat(Binding.virtual_x, "#", Binding.extension))
            .where(active))).all())
    assert dup == []
    assert count == len(results)
    assert held == by_id  # every active binding holds exactly its own slot

    retries = sum(o["retries"] for o in outs)
    slowest = max(o["elapsed"] for o in outs)
    with capsys.disabled():
        print(f"\n[extension concurrency] {len(results)} issues, {PROCESSES} processes, "
              f"{CALLERS} callers on {NUMBERS} X: {slowest:.2f} s, "
              f"{len(results) / slowest:.0f} req/s, {retries} retries, duplicate (X, ext)=0")

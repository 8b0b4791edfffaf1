"""A stale or lost Redis index against the call path, on a private redis-server.

``python -m bench.index_healing [--bindings N] [--workers N] [--postgres]`` runs both scenarios
and prints, for each: calls placed, wrong bridges (a bridge SQL would refuse, or to another
number than SQL says), of which resurrected (a bridge where SQL refuses), and seconds until the
fast path (an answer from Redis alone) is back.

(a) restore: bindings are issued and the index is warm; Redis takes a snapshot; then bindings
    are released and switched, a caller number is disabled, another removed, a shop disabled
    (all through the stores, Redis updated live); Redis is restarted from the older snapshot,
    which still holds every one of those bindings as active.
(b) flush: the same world under concurrent calls; ``FLUSHDB`` in the middle.

The truth for every call is what the same look-up says with SQL alone. The healer runs as under
``privnum serve`` (defaults: check every second); nobody runs ``privnum index rebuild``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench.common import console, print_table, scratch_pg
from bench.private_redis import PrivateRedis, private_redis
from binding_store.accounts import AccountRepository
from binding_store.all_models import Base
from binding_store.binding_policy import BindingPolicy
from binding_store.bindings import BindingStore
from binding_store.callers import CallerRepository
from binding_store.crypto import BuyerCipher, KeyRing
from binding_store.db import Database
from binding_store.index_healer import IndexHealer
from binding_store.index_values import entry_of
from binding_store.models import Binding
from binding_store.pool import PoolRepository
from binding_store.redis_index import RedisIndex
from binding_store.route_lookup import StoreRouteLookup
from binding_store.shops import ShopRepository
from routing.decide import decide
from routing.model import Action, CallerStatus, CallRequest

DEADLINE = 60.0  # seconds a scenario may wait for the fast path before it gives up
SHOP_A, SHOP_B = "shop-a", "shop-b"
MAIN_A, MAIN_B = "+8613800000001", "+8613800000002"
SUBS = [f"+86138000001{i:02d}" for i in range(4)]  # sub-accounts of shop A


def _buyer(i: int) -> str:
    return f"+86139{i:08d}"


@dataclass(frozen=True)
class Call:
    caller: str
    x: str
    expected: tuple[Action, str]  # what SQL alone decides: action and number dialled


@dataclass
class Tally:
    calls: int = 0
    wrong: int = 0
    resurrected: int = 0
    hits: int = 0

    def add(self, got: tuple[Action, str], expected: tuple[Action, str], hit: bool) -> None:
        self.calls += 1
        self.hits += hit
        if got != expected:
            self.wrong += 1
            self.resurrected += got[0] is Action.BRIDGE and expected[0] is Action.REJECT


@dataclass
class World:
    db: Database
    cipher: BuyerCipher
    index: RedisIndex
    bindings: BindingStore
    callers: CallerRepository
    shops: ShopRepository
    healer: IndexHealer
    issued: list[tuple[str, str, str, str]] = field(default_factory=list)  # id, A, B, X

    def lookup(self) -> StoreRouteLookup:
        """A look-up of its own (exact per-call hit counts) wired as under serve."""
        return StoreRouteLookup(self.db, self.cipher, index=self.index,
                                on_stale_index=self.healer.poke)


def now() -> datetime:
    return datetime.now(UTC)  # the stores and Redis: lifetimes are durations from here


async def build_world(db: Database, redis_url: str, n_bindings: int) -> World:
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    cipher = BuyerCipher(KeyRing.generate())
    index = RedisIndex.from_url(redis_url, prefix="heal", timeout=2.0)
    shops, callers = ShopRepository(db, index), CallerRepository(db, index)
    accounts = AccountRepository(db)
    at = now()
    for shop, main in ((SHOP_A, MAIN_A), (SHOP_B, MAIN_B)):
        await shops.enable(shop, now=at, main_account_id=f"{shop}-main", main_phone=main,
                           agreement_version="v1")
    for i, sub in enumerate(SUBS):
        await accounts.add_sub_account(SHOP_A, f"sub{i}", actor=f"{SHOP_A}-main", now=at,
                                       phone=sub, phone_reviewed=True)
        await callers.add(SHOP_A, sub, actor=f"{SHOP_A}-main", now=at)
    pool_size = n_bindings // 2 + 8  # enough for every caller number to switch into
    csv = "number,region\n" + "".join(f"+86170{i:08d},bj\n" for i in range(pool_size))
    await PoolRepository(db).import_csv(io.StringIO(csv), now=at)
    bindings = BindingStore(db, cipher, policy=BindingPolicy(cooldown=timedelta(0)),
                            index=index)
    healer = IndexHealer(index, db, clock=now)
    world = World(db, cipher, index, bindings, callers, shops, healer)
    a_callers = [MAIN_A, *SUBS]
    for i in range(n_bindings):
        shop, caller = (SHOP_B, MAIN_B) if i % 6 == 5 else (SHOP_A, a_callers[i % 5])
        got = await bindings.issue(shop, f"o{i}", f"u{i}", caller, _buyer(i), at,
                                   actor="bench")
        world.issued.append((got.binding_id, caller, _buyer(i), got.virtual_x))
    await healer.run_once()  # the serving process builds the index at start
    return world


async def expected_calls(world: World) -> list[Call]:
    """Merchant and buyer call for every binding ever issued, with SQL's answer."""
    truth = StoreRouteLookup(world.db, world.cipher)
    at = now()
    calls = []
    seen: set[tuple[str, str]] = set()
    for _bid, a, b, x in world.issued:
        for caller in (a, b):
            if (caller, x) in seen:
                continue
            seen.add((caller, x))
            context = await truth.find_for_call(caller, x, at)
            d = decide(CallRequest(caller, x, "u", "l"), context, at, 600)
            calls.append(Call(caller, x, (d.action, d.dial_number)))
    return calls


async def place(lookup: StoreRouteLookup, call: Call, tally: Tally) -> bool:
    """One call through the look-up; True if Redis alone answered."""
    hits = lookup.index_hits
    at = now()
    context = await lookup.find_for_call(call.caller, call.x, at)
    d = decide(CallRequest(call.caller, call.x, "u", "l"), context, at, 600)
    hit = lookup.index_hits > hits
    tally.add((d.action, d.dial_number), call.expected, hit)
    return hit


async def warm(world: World) -> None:
    lookup = world.lookup()
    tally = Tally()
    for call in await expected_calls(world):
        await place(lookup, call, tally)
    assert tally.wrong == 0


async def take_rights_away(world: World) -> dict[str, int]:
    """Every kind of change that takes a right to call away, through the stores."""
    at = now()
    released = switched = 0
    for n, (bid, a, _b, _x) in enumerate(list(world.issued)):
        if a == SUBS[0] and n % 2 == 0:
            await world.bindings.release(bid, actor="bench", now=at)
            released += 1
        elif a == SUBS[1] and n % 2 == 0:
            moved = await world.bindings.switch_caller(bid, MAIN_A, actor="bench", now=at)
            world.issued.append((moved.binding.binding_id, MAIN_A, _b, moved.binding.virtual_x))
            switched += 1
    await world.callers.set_status(SHOP_A, SUBS[2], CallerStatus.DISABLED, actor=f"{SHOP_A}-main",
                                   now=at)
    await world.callers.remove(SHOP_A, SUBS[3], actor=f"{SHOP_A}-main", now=at)
    await world.shops.disable(SHOP_B, actor="bench", now=at)
    return {"released": released, "switched": switched, "callers_off": 2, "shops_off": 1}


async def until_fast_path(world: World, calls: list[Call], tally: Tally, started: float
                          ) -> float | None:
    """Place every call, pass after pass, until one whole pass that SQL bridges is answered
    from Redis alone; seconds from ``started`` to the first answer from Redis."""
    lookup = world.lookup()
    first_hit: float | None = None
    bridged = [c for c in calls if c.expected[0] is Action.BRIDGE]
    while time.monotonic() - started < DEADLINE:
        hits = 0
        for call in calls:
            if await place(lookup, call, tally):
                hits += 1
                first_hit = first_hit or time.monotonic() - started
        if first_hit is not None and hits >= len(bridged):
            return first_hit
        await asyncio.sleep(0.05)
    return None


async def trusted_blindly(world: World, calls: list[Call], redis_url: str) -> Tally:
    """What the restored index says when trusted without its watermark (as before the
    watermark existed): a look-up that believes any index is current."""
    blind = RedisIndex.from_url(redis_url, prefix=world.index.prefix, timeout=2.0)
    blind.known.learn(0)
    tally = Tally()
    try:
        lookup = StoreRouteLookup(world.db, world.cipher, index=blind)
        for call in calls:
            await place(lookup, call, tally)
    finally:
        await blind.close()
    return tally


def _ended(raw: Any, at: datetime) -> bool:
    entry = entry_of(raw)
    return entry is None or entry.ended_at(at)


async def scenario_restore(db: Database, server: PrivateRedis, n_bindings: int
                           ) -> dict[str, Any]:
    world = await build_world(db, server.url, n_bindings)
    try:
        await warm(world)
        server.save()
        changes = await take_rights_away(world)
        calls = await expected_calls(world)
        rebuilds = world.healer.stats.rebuilds
        server.restart_from_snapshot()
        blind = await trusted_blindly(world, calls, server.url)
        world.healer.start()
        tally = Tally()
        started = time.monotonic()
        back = await until_fast_path(world, calls, tally, started)
        return {"scenario": "restore from older dump.rdb", **changes, "calls": tally.calls,
                "wrong_bridges": tally.wrong, "resurrected_bridges": tally.resurrected,
                "fast_path_back_s": back,
                "rebuilds": world.healer.stats.rebuilds - rebuilds,
                "resurrected_if_trusted_blindly": blind.resurrected}
    finally:
        await world.healer.close()
        await world.index.close()


async def scenario_flush(db: Database, server: PrivateRedis, n_bindings: int, workers: int
                         ) -> dict[str, Any]:
    world = await build_world(db, server.url, n_bindings)
    try:
        await warm(world)
        await take_rights_away(world)  # a mix of live and ended bindings under load
        calls = await expected_calls(world)
        rebuilds = world.healer.stats.rebuilds
        world.healer.start()
        tally = Tally()
        flushed = asyncio.Event()
        flushed_at = [0.0]
        first_hit_after: list[float] = []
        stop, back = asyncio.Event(), asyncio.Event()

        async def worker(offset: int) -> None:
            lookup = world.lookup()
            i = offset
            while not stop.is_set():
                call = calls[i % len(calls)]
                i += 1
                started = time.monotonic()
                was_flushed = flushed.is_set()
                if await place(lookup, call, tally) and was_flushed and started >= flushed_at[0]:
                    first_hit_after.append(started - flushed_at[0])
                    back.set()

        tasks = [asyncio.create_task(worker(w * 7)) for w in range(workers)]
        await asyncio.sleep(0.5)  # under load from the warm index
        with server.client() as c:
            c.flushdb()
        flushed_at[0] = time.monotonic()
        flushed.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DEADLINE):
                await back.wait()
        await asyncio.sleep(0.5)  # and on, on the refilled index
        stop.set()
        await asyncio.gather(*tasks)
        at = now()
        with server.client() as c:  # live bindings only: ended ones stay as markers
            refilled = sum(1 for key in c.scan_iter(match=f"{world.index.base}:ax:*")
                           if not _ended(c.get(key), at))
        async with world.db.session() as session:
            live = int(await session.scalar(
                select(func.count()).select_from(Binding).where(Binding.state == "active"))
                or 0)
        return {"scenario": "FLUSHDB under load", "workers": workers, "calls": tally.calls,
                "wrong_bridges": tally.wrong, "resurrected_bridges": tally.resurrected,
                "fast_path_back_s": min(first_hit_after) if first_hit_after else None,
                "active_bindings": live, "bindings_in_index_after": refilled,
                "rebuilds": world.healer.stats.rebuilds - rebuilds}
    finally:
        await world.healer.close()
        await world.index.close()


async def run(*, bindings: int = 60, workers: int = 8, postgres: bool = False,
              data_dir: Path | None = None, quiet: bool = False) -> list[dict[str, Any]]:
    results = []
    with tempfile.TemporaryDirectory(prefix="privnum-heal-") as tmp:
        base = data_dir or Path(tmp)
        for name, job in (("restore", lambda db, s: scenario_restore(db, s, bindings)),
                          ("flush", lambda db, s: scenario_flush(db, s, bindings, workers))):
            results.append(await _with_stores(name, job, base, postgres))
    if not quiet:
        rows = [[r["scenario"], r["calls"], r["wrong_bridges"], r["resurrected_bridges"],
                 "never" if r["fast_path_back_s"] is None else f"{r['fast_path_back_s']:.2f}",
                 r["rebuilds"]] for r in results]
        store = "PostgreSQL" if postgres else "SQLite"
        print_table(f"Stale Redis index, {bindings} bindings ({store})",
                    ["scenario", "calls", "wrong bridges", "resurrected", "fast path back (s)",
                     "rebuilds"], rows)
        for r in results:
            console.print(r)
    return results


async def _with_stores(name: str, job: Callable[[Database, PrivateRedis], Any], base: Path,
                       postgres: bool) -> dict[str, Any]:
    with private_redis(base / f"redis-{name}") as server:
        if postgres:
            async with scratch_pg(f"heal_{name}") as url:
                db = Database(url, timeout=5.0)
                try:
                    return dict(await job(db, server))
                finally:
                    await db.dispose()
        db = Database(f"sqlite+aiosqlite:///{base / f'{name}.db'}", timeout=5.0)
        try:
            return dict(await job(db, server))
        finally:
            await db.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.index_healing")
    parser.add_argument("--bindings", type=int, default=600)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args(argv)
    asyncio.run(run(bindings=args.bindings, workers=args.workers, postgres=args.postgres))


if __name__ == "__main__":
    main()

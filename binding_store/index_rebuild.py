"""Rebuild the Redis hot index from SQL: every live binding, a marker for every binding that
ended within the index's ``keep_ended`` look-back, the pool, every shop and caller state, stale
keys removed, and last the watermark the result is true at.

Why it is safe while calls and changes go on: the watermark is read BEFORE any data, so every
change the data does not show carries a higher watermark; bindings are written with the
tombstone-guarded put (a binding that ends meanwhile is not brought back) and states with the
version guard (a newer state is not overwritten); the watermark is set only if Redis kept the
rebuild's token, i.e. lost nothing in between (a flush or a restart from an old snapshot).
Until the watermark is set the call path keeps reading SQL.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select

from binding_store.db import Database
from binding_store.models import Binding, CallerNumber, PoolNumber, Shop
from binding_store.redis_index import IndexEntry, RedisIndex, ShopState
from binding_store.watermark import read as read_watermark
from routing.errors import RebuildInterrupted
from routing.model import BindingState

Progress = Callable[[str, int, int], None]  # (stage, done, total)
TOKEN_LIFETIME_SECONDS = 3600
ACTIVE = BindingState.ACTIVE.value


@dataclass(frozen=True)
class RebuildReport:
    bindings: int
    shops: int
    callers: int
    removed: int
    watermark: int


async def rebuild_index(index: RedisIndex, database: Database, *, now: datetime,
                        progress: Progress | None = None, batch: int = 500,
                        force: bool = False) -> RebuildReport:
    """Restore every key from SQL and delete keys SQL does not back. ``force`` also replaces
    states and a watermark that claim to be newer than SQL's (an index from another history,
    e.g. after SQL was restored from a backup)."""
    report = progress or (lambda _stage, _done, _total: None)
    token = secrets.token_hex(8)
    await index.begin_rebuild(token, TOKEN_LIFETIME_SECONDS)
    watermark = await read_watermark(database)  # before the data: see the module notes
    live_ids = await _bindings(index, database, now, batch, report)
    ended_ids = await _ended(index, database, now, batch)
    await _pool(index, database, batch, force=force)
    shops, callers = await _states(database)
    items: list[tuple[list[tuple[str, ShopState]], list[tuple[str, str, str | None]]]] = []
    items += [(shops[i:i + batch], []) for i in range(0, len(shops), batch)]
    items += [([], callers[i:i + batch]) for i in range(0, len(callers), batch)]
    done = 0
    for shop_part, caller_part in items:
        await index.write_states(watermark, shops=shop_part, callers=caller_part, force=force)
        done += len(shop_part) + len(caller_part)
        report("states", done, len(shops) + len(callers))
    wanted = {index.shop_key(s) for s, _ in shops} | {index.caller_key(s, n) for s, n, _ in callers}
    removed = await _sweep(index, live_ids, ended_ids, wanted, now)
    report("cleanup", removed, removed)
    if await index.finish_rebuild(token, watermark, force=force) < 0:
        raise RebuildInterrupted("the Redis index changed under the rebuild (Redis flushed or "
                                 "restarted, or another rebuild started); run it again")
    index.known.learn(watermark)
    return RebuildReport(bindings=len(live_ids), shops=len(shops), callers=len(callers),
                         removed=removed, watermark=watermark)


async def _bindings(index: RedisIndex, database: Database, now: datetime, batch: int,
                    report: Progress) -> set[str]:
    """Write every live binding, page by page (keyset on the id); their ids."""
    # Extension bindings are not in the hot index: one A holds many on one X, which the
    # (A, X) keys cannot tell apart; the call path reads them from SQL.
    live = (Binding.state == ACTIVE, Binding.expires_at > now, Binding.extension == "")
    async with database.session() as session:
        total = int(await session.scalar(select(func.count()).select_from(Binding).where(*live))
                    or 0)
    live_ids: set[str] = set()
    after = ""
    while True:
        async with database.session() as session:
            rows = (await session.execute(
                select(Binding.id, Binding.shop_id, Binding.order_id, Binding.caller_a,
                       Binding.virtual_x, Binding.buyer_bidx, Binding.buyer_cipher,
                       Binding.expires_at)
                .where(*live, Binding.id > after).order_by(Binding.id).limit(batch))).all()
        if not rows:
            break
        entries = [IndexEntry(r.id, r.shop_id, r.order_id, r.caller_a, r.virtual_x,
                              r.buyer_bidx, bytes(r.buyer_cipher), r.expires_at) for r in rows]
        await index.put(entries, now=now)
        live_ids.update(e.binding_id for e in entries)
        after = entries[-1].binding_id
        report("bindings", len(live_ids), max(total, len(live_ids)))
        await asyncio.sleep(0)  # let calls through between batches
    report("bindings", len(live_ids), max(total, len(live_ids)))
    return live_ids


async def _ended(index: RedisIndex, database: Database, now: datetime, batch: int
                 ) -> set[str]:
    """Markers of the bindings that ended within the look-back (where their keys are free);
    their ids."""
    since = now - timedelta(milliseconds=index.keep_ended_ms)
    ended = (or_(Binding.state != ACTIVE, Binding.expires_at <= now),
             Binding.expires_at > since)
    ids: set[str] = set()
    after = ""
    while True:
        async with database.session() as session:
            rows = (await session.execute(
                select(Binding.id, Binding.shop_id, Binding.order_id, Binding.caller_a,
                       Binding.virtual_x, Binding.buyer_bidx, Binding.buyer_cipher,
                       Binding.expires_at)
                .where(*ended, Binding.id > after).order_by(Binding.id).limit(batch))).all()
        if not rows:
            return ids
        entries = [IndexEntry(r.id, r.shop_id, r.order_id, r.caller_a, r.virtual_x,
                              r.buyer_bidx, bytes(r.buyer_cipher), r.expires_at) for r in rows]
        await index.put_ended(entries, now=now)
        ids.update(e.binding_id for e in entries)
        after = entries[-1].binding_id
        await asyncio.sleep(0)


async def _pool(index: RedisIndex, database: Database, batch: int, *, force: bool) -> None:
    """Every pool number into the pool's set (numbers never leave the pool in SQL, so only an
    index from another history holds extra ones: ``force`` starts the set afresh)."""
    if force:
        await index.drop_pool()
    after = ""
    while True:
        async with database.session() as session:
            numbers = list((await session.scalars(
                select(PoolNumber.number).where(PoolNumber.number > after)
                .order_by(PoolNumber.number).limit(batch))).all())
        if not numbers:
            return
        await index.add_pool(numbers)
        after = numbers[-1]
        await asyncio.sleep(0)


async def _states(database: Database
                  ) -> tuple[list[tuple[str, ShopState]], list[tuple[str, str, str | None]]]:
    async with database.session() as session:
        main_rows = (await session.execute(
            select(CallerNumber.shop_id, CallerNumber.number)
            .where(CallerNumber.is_main.is_(True))
            .order_by(CallerNumber.id.desc()))).all()
        shop_rows = (await session.execute(
            select(Shop.id, Shop.service_state).order_by(Shop.id))).all()
        caller_rows = (await session.execute(
            select(CallerNumber.shop_id, CallerNumber.number, CallerNumber.status)
            .order_by(CallerNumber.id))).all()
    mains = {shop_id: number for shop_id, number in main_rows}  # the oldest main row wins
    shops = [(shop_id, ShopState(state, mains.get(shop_id, ""))) for shop_id, state in shop_rows]
    callers: list[tuple[str, str, str | None]] = [
        (shop_id, number, status) for shop_id, number, status in caller_rows]
    return shops, callers


async def _sweep(index: RedisIndex, live_ids: set[str], ended_ids: set[str],
                 state_keys: set[str], now: datetime) -> int:
    """Delete binding keys SQL does not back (neither live nor an ended binding's marker) and
    state keys SQL does not back."""
    removed = 0
    for kind in ("ax", "bx", "shop", "caller"):
        async for keys in index.scan(index.pattern(kind)):
            if kind in ("shop", "caller"):
                stale = [k for k in keys if k not in state_keys]
            else:
                stale = _stale_bindings(keys, await index.mget(keys), live_ids, ended_ids, now)
            if stale:
                removed += await index.delete(stale)
    return removed


def _stale_bindings(keys: Sequence[str], values: Sequence[object], live_ids: set[str],
                    ended_ids: set[str], now: datetime) -> list[str]:
    stale = []
    for key, value in zip(keys, values, strict=True):
        if not isinstance(value, bytes | str):
            continue  # expired between SCAN and MGET
        try:
            entry = IndexEntry.loads(value)
        except (ValueError, KeyError, TypeError):
            stale.append(key)  # not ours to keep: unreadable
            continue
        if entry.binding_id in live_ids:
            continue
        if entry.binding_id in ended_ids and entry.ended_at(now):
            continue  # a marker, and one that says so
        stale.append(key)
    return stale

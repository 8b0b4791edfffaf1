"""Rebuild the Redis hot index from SQL: every live binding, every shop and caller state, stale
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
from datetime import datetime

from sqlalchemy import func, select

from binding_store.db import Database
from binding_store.models import Binding, CallerNumber, Shop
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
    removed = await _sweep(index, live_ids, wanted)
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


async def _sweep(index: RedisIndex, live_ids: set[str], state_keys: set[str]) -> int:
    """Delete binding keys of bindings that are not live and state keys SQL does not back."""
    removed = 0
    for kind in ("ax", "bx", "shop", "caller"):
        async for keys in index.scan(f"{index.prefix}:{kind}:*"):
            if kind in ("shop", "caller"):
                stale = [k for k in keys if k not in state_keys]
            else:
                stale = _stale_bindings(keys, await index.mget(keys), live_ids)
            if stale:
                removed += await index.delete(stale)
    return removed


def _stale_bindings(keys: Sequence[str], values: Sequence[object], live_ids: set[str]
                    ) -> list[str]:
    stale = []
    for key, value in zip(keys, values, strict=True):
        if not isinstance(value, bytes | str):
            continue  # expired between SCAN and MGET
        try:
            binding_id = IndexEntry.loads(value).binding_id
        except (ValueError, KeyError, TypeError):
            stale.append(key)  # not ours to keep: unreadable
            continue
        if binding_id not in live_ids:
            stale.append(key)
    return stale

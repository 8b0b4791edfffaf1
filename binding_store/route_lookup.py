"""The call path's store: ``RouteLookup`` and ``AttemptRecorder`` (see ``routing.ports``).

Redis first: on a hit for an active binding with known shop and caller states the answer
comes from two MGETs and no SQL. On a miss (or with Redis down: logged once, retried after a
short back-off) SQL answers, including bindings that ended within the look-back window so a
reject can say "expired". Buyer numbers are decrypted in memory only.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from sqlalchemy import BindParameter, Executable, and_, bindparam, or_, select
from sqlalchemy.orm import join, outerjoin

from binding_store import models as m
from binding_store.attempt_writer import attempt_row, write_attempts
from binding_store.crypto import BuyerCipher
from binding_store.db import Database, guard
from binding_store.redis_index import IndexEntry, RedisIndex
from routing.errors import StoreUnavailable
from routing.model import (
    BindingState,
    CallAttempt,
    CallContext,
    CallerStatus,
    Direction,
    RouteBinding,
    ServiceState,
)

log = logging.getLogger(__name__)
_MAX_ROWS = 20


def _route_query() -> Executable:
    """X's pool row with the bindings that may route a call from the caller to X, their shop
    states and caller statuses: ONE round trip. No row = X is not in the pool; one row with
    a NULL binding = in the pool, nothing matches. Built once (its compiled form is cached)."""
    b, shop, caller, pool = m.Binding, m.Shop, m.CallerNumber, m.PoolNumber
    cutoff: BindParameter[datetime] = bindparam("cutoff")
    matching = and_(
        b.virtual_x == pool.number,
        or_(b.caller_a == bindparam("caller"), b.buyer_bidx == bindparam("bidx")),
        or_(b.state == BindingState.ACTIVE.value, b.expires_at >= cutoff,
            b.released_at >= cutoff))
    return (
        select(pool.number, b.id, b.shop_id, b.order_id, b.caller_a, b.virtual_x,
               b.buyer_cipher, b.expires_at, b.state, shop.service_state, caller.status)
        # pool LEFT JOIN (bindings JOIN shops): a binding counts only with its shop row
        .select_from(outerjoin(pool, join(b, shop, shop.id == b.shop_id), matching))
        .outerjoin(caller, and_(caller.shop_id == b.shop_id, caller.number == b.caller_a))
        .where(pool.number == bindparam("x"))
        .order_by(b.created_at.desc(), b.id)
        .limit(_MAX_ROWS))


class StoreRouteLookup:
    """Implements ``routing.ports.RouteLookup`` and ``routing.ports.AttemptRecorder``."""

    def __init__(self, database: Database, cipher: BuyerCipher, *,
                 index: RedisIndex | None = None, lookback: timedelta = timedelta(days=7),
                 redis_backoff_seconds: float = 5.0) -> None:
        self._db = database
        self._cipher = cipher
        self._index = index
        self._lookback = lookback
        self._backoff = redis_backoff_seconds
        self._index_down_until: float | None = None  # monotonic deadline while Redis is down
        self._query = _route_query()
        self.index_hits = 0
        self.sql_reads = 0

    async def find_for_call(self, caller_e164: str, x_e164: str, now: datetime) -> CallContext:
        bidx = self._cipher.blind_index(caller_e164)
        if self._index is not None and self._index_usable():
            try:
                found = await self._from_index(self._index, caller_e164, bidx, x_e164, now)
            except StoreUnavailable as exc:
                self._index_failed(exc)
            else:
                self._index_ok()
                if found is not None:
                    self.index_hits += 1
                    return found
        self.sql_reads += 1
        context = await self._from_sql(caller_e164, bidx, x_e164, now)
        await self._seed(context)
        return context

    # -- Redis ------------------------------------------------------------------------------
    def _index_usable(self) -> bool:
        return self._index_down_until is None or time.monotonic() >= self._index_down_until

    def _index_failed(self, exc: StoreUnavailable) -> None:
        if self._index_down_until is None:
            log.warning("Redis index unavailable, routing from SQL: %s", exc)
        self._index_down_until = time.monotonic() + self._backoff

    def _index_ok(self) -> None:
        if self._index_down_until is not None:
            log.info("Redis index reachable again")
            self._index_down_until = None

    async def _from_index(self, index: RedisIndex, caller: str, bidx: str, x: str,
                          now: datetime) -> CallContext | None:
        pair = await index.lookup(caller, bidx, x)
        found: list[tuple[IndexEntry, Direction, str | None, str | None]] = []
        ax, bx = pair.ax, pair.bx
        if ax is not None and ax.caller_a == caller and ax.virtual_x == x and now < ax.expires_at:
            found.append((ax, Direction.MERCHANT, pair.ax_shop, pair.ax_caller))
        if (bx is not None and bx.buyer_bidx == bidx and bx.virtual_x == x
                and now < bx.expires_at and (ax is None or bx.binding_id != ax.binding_id)):
            found.append((bx, Direction.CALLBACK, pair.bx_shop, pair.bx_caller))
        if not found or any(shop is None or status is None for _, _, shop, status in found):
            return None  # a miss, or states unknown to the index: SQL answers (and seeds them)
        bindings = tuple(
            RouteBinding(
                binding_id=e.binding_id, shop_id=e.shop_id, order_id=e.order_id,
                caller_a=e.caller_a, virtual_x=e.virtual_x,
                buyer_b=self._cipher.decrypt(e.buyer_cipher), expires_at=e.expires_at,
                state=BindingState.ACTIVE, matched_as=direction,
                shop_service=_service(shop), caller_status=_status(status))
            for e, direction, shop, status in found)
        return CallContext(x_in_pool=True, bindings=bindings)

    async def _seed(self, context: CallContext) -> None:
        """After a SQL read, put the states it saw into the index so the next call hits."""
        if self._index is None or not self._index_usable() or not context.bindings:
            return
        shops = {(b.shop_id, b.shop_service.value) for b in context.bindings}
        callers = {(b.shop_id, b.caller_a, b.caller_status.value) for b in context.bindings}
        try:
            await self._index.seed_states(sorted(shops), sorted(callers))
        except StoreUnavailable as exc:
            self._index_failed(exc)

    # -- SQL --------------------------------------------------------------------------------
    async def _from_sql(self, caller: str, bidx: str, x: str, now: datetime) -> CallContext:
        params = {"x": x, "caller": caller, "bidx": bidx, "cutoff": now - self._lookback}
        # Core, not an ORM session: no identity map or unit of work for a read-only probe.
        async with guard(self._db.timeout * 5), self._db.engine.connect() as conn:
            rows = (await conn.execute(self._query, params)).all()
        if not rows:
            return CallContext(x_in_pool=False)
        bindings = tuple(
            RouteBinding(
                binding_id=row.id, shop_id=row.shop_id, order_id=row.order_id,
                caller_a=row.caller_a, virtual_x=row.virtual_x,
                buyer_b=self._cipher.decrypt(row.buyer_cipher), expires_at=row.expires_at,
                state=BindingState(row.state),
                matched_as=Direction.MERCHANT if row.caller_a == caller else Direction.CALLBACK,
                shop_service=_service(row.service_state), caller_status=_status(row.status))
            for row in rows if row.id is not None)
        return CallContext(x_in_pool=True, bindings=bindings)

    # -- call log ---------------------------------------------------------------------------
    async def record(self, attempt: CallAttempt) -> None:
        """One attempt, written now (the serving path batches with ``AttemptWriter``)."""
        await write_attempts(self._db, [attempt_row(attempt)])


def _service(value: str | None) -> ServiceState:
    if value is None:
        return ServiceState.DISABLED
    try:
        return ServiceState(value)
    except ValueError:
        return ServiceState.DISABLED


def _status(value: str | None) -> CallerStatus:
    """A caller number that is no longer on the shop's list counts as disabled."""
    if value is None:
        return CallerStatus.DISABLED
    try:
        return CallerStatus(value)
    except ValueError:
        return CallerStatus.DISABLED

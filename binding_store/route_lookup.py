"""The call path's store: ``RouteLookup`` and ``AttemptRecorder`` (see ``routing.ports``).

Redis first, in one round trip, and from an index that is current Redis answers every call:
an active binding with known shop and caller states bridges; an ended one (its marker) is
refused as expired; no key means no binding, and the pool's set tells "not a privacy number"
from "not authorized". An index behind the watermark this process knows, or without one (see
``binding_store.watermark``), is not trusted: SQL answers and the healer is told. So does SQL
when Redis is down (logged once, retried after a short back-off), for a binding whose end is
being committed and for states the index does not know; what it found is then seeded into a
current index. Buyer numbers are decrypted in memory only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType

from sqlalchemy import BindParameter, Executable, and_, bindparam, or_, select
from sqlalchemy.orm import aliased, join, outerjoin

from binding_store import models as m
from binding_store.attempt_writer import attempt_row, write_attempts
from binding_store.crypto import BuyerCipher
from binding_store.db import Database, guard
from binding_store.redis_index import IndexedPair, IndexEntry, RedisIndex, ShopState
from binding_store.watermark import read as read_watermark
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
    states, caller statuses and the shop's main caller number: ONE round trip. No row = X is
    not in the pool; one row with a NULL binding = in the pool, nothing matches. Built once
    (its compiled form is cached)."""
    b, shop, caller, pool = m.Binding, m.Shop, m.CallerNumber, m.PoolNumber
    main = aliased(m.CallerNumber)
    cutoff: BindParameter[datetime] = bindparam("cutoff")
    matching = and_(
        b.virtual_x == pool.number,
        b.extension == "",  # extension bindings route by (X, extension): extension_lookup
        or_(b.caller_a == bindparam("caller"), b.buyer_bidx == bindparam("bidx")),
        or_(b.state == BindingState.ACTIVE.value, b.expires_at >= cutoff,
            b.released_at >= cutoff))
    main_caller = (select(main.number)
                   .where(main.shop_id == b.shop_id, main.is_main.is_(True))
                   .order_by(main.id).limit(1).correlate(b).scalar_subquery())
    return (
        select(pool.number, b.id, b.shop_id, b.order_id, b.caller_a, b.virtual_x,
               b.buyer_cipher, b.buyer_bidx, b.expires_at, b.state, shop.service_state,
               caller.status, main_caller.label("main_caller"))
        # pool LEFT JOIN (bindings JOIN shops): a binding counts only with its shop row
        .select_from(outerjoin(pool, join(b, shop, shop.id == b.shop_id), matching))
        .outerjoin(caller, and_(caller.shop_id == b.shop_id, caller.number == b.caller_a))
        .where(pool.number == bindparam("x"))
        .order_by(b.created_at.desc(), b.id)
        .limit(_MAX_ROWS))


@dataclass
class LookupStats:
    """Where answers came from (per look-up instance)."""

    index_hits: int = 0
    sql_reads: int = 0
    index_behind: int = 0  # look-ups that found the index older than SQL
    index_lost: int = 0  # look-ups that found no watermark in the index


class StoreRouteLookup:
    """Implements ``routing.ports.RouteLookup`` and ``routing.ports.AttemptRecorder``."""

    def __init__(self, database: Database, cipher: BuyerCipher, *,
                 index: RedisIndex | None = None, lookback: timedelta = timedelta(days=7),
                 redis_backoff_seconds: float = 5.0,
                 on_stale_index: Callable[[], None] | None = None) -> None:
        self._db = database
        self._cipher = cipher
        self._index = index
        self._lookback = lookback
        self._backoff = redis_backoff_seconds
        self._index_down_until: float | None = None  # monotonic deadline while Redis is down
        # After a Redis fault the Redis that answers next may be another one (a replica that
        # Sentinel promoted, possibly without the last changes): SQL's watermark is read again
        # before its index is trusted, so even a change this process never heard of (made on
        # another node just before the failover) is known to be missing from it.
        self._relearn = False
        self._learnt_at = 0  # the index's master switches when SQL's watermark was last read
        self._on_stale = on_stale_index or (lambda: None)
        self._query = _route_query()
        self.stats = LookupStats()

    @property
    def index_hits(self) -> int:
        return self.stats.index_hits

    @property
    def sql_reads(self) -> int:
        return self.stats.sql_reads

    async def find_for_call(self, caller_e164: str, x_e164: str, now: datetime) -> CallContext:
        bidx = self._cipher.blind_index(caller_e164)
        current_at: int | None = None  # the index's trusted watermark, when it is current
        index = self._index if self._index_usable() else None
        switches = index.switches if index is not None else 0
        known = await self._known_watermark(index, switches) if index is not None else None
        if index is not None and known is not None:
            try:
                # The call's deadline bounds the look-up: no timer of its own.
                pair = await index.lookup(caller_e164, bidx, x_e164, bounded=False)
            except StoreUnavailable as exc:
                self._index_failed(exc)
            else:
                self._index_ok()
                if index.switches != switches:
                    pass  # a new master answered: SQL now; the next call relearns first
                elif self._current(pair, known):
                    found = self._from_index(pair, caller_e164, bidx, x_e164, now)
                    if found is not None:
                        self.stats.index_hits += 1
                        return found
                    current_at = known
        self.stats.sql_reads += 1
        context, entries = await self._from_sql(caller_e164, bidx, x_e164, now)
        if current_at is not None:
            await self._seed(current_at, context, entries, now)
        return context

    # -- Redis ------------------------------------------------------------------------------
    async def _known_watermark(self, index: RedisIndex, switches: int) -> int | None:
        """The highest committed watermark this process knows (learnt from SQL once if
        nobody has told it yet, and again after a Redis fault or a change of master;
        ``None`` if SQL cannot say: then the index is not used)."""
        if index.known.value is None or self._relearn or switches != self._learnt_at:
            try:
                index.known.learn(await read_watermark(self._db))
            except StoreUnavailable as exc:
                log.warning("cannot read the index watermark from SQL: %s", exc)
                return None if self._relearn else index.known.value
            self._relearn = False
            self._learnt_at = switches
        return index.known.value

    def _current(self, pair: IndexedPair, known: int) -> bool:
        if pair.watermark is None:
            self.stats.index_lost += 1
        elif pair.watermark < known:
            self.stats.index_behind += 1
        else:
            return True
        self._on_stale()
        return False

    def _index_usable(self) -> bool:
        return self._index is not None and (
            self._index_down_until is None or time.monotonic() >= self._index_down_until)

    def _index_failed(self, exc: StoreUnavailable) -> None:
        if self._index_down_until is None:
            log.warning("Redis index unavailable, routing from SQL: %s", exc)
        self._index_down_until = time.monotonic() + self._backoff
        self._relearn = True

    def _index_ok(self) -> None:
        if self._index_down_until is not None:
            log.info("Redis index reachable again")
            self._index_down_until = None

    def _from_index(self, pair: IndexedPair, caller: str, bidx: str, x: str,
                    now: datetime) -> CallContext | None:
        """The answer of a current index; ``None`` where it cannot tell (SQL answers)."""
        found: list[tuple[IndexEntry, Direction, ShopState | None, str | None]] = []
        ax, bx = pair.ax, pair.bx
        if ax is not None and ax.caller_a == caller and ax.virtual_x == x:
            found.append((ax, Direction.MERCHANT, pair.ax_shop, pair.ax_caller))
        if (bx is not None and bx.buyer_bidx == bidx and bx.virtual_x == x
                and (ax is None or bx.binding_id != ax.binding_id)):
            found.append((bx, Direction.CALLBACK, pair.bx_shop, pair.bx_caller))
        # Loops rather than any() over generators: this runs on every call.
        for e, _, _, _ in found:
            if e.held:
                return None  # its end is being committed: SQL knows whether it happened
        live = [f for f in found if not f[0].ended_at(now)]
        if live:
            for _, _, shop, status in live:
                if shop is None or status is None:
                    return None  # states unknown to the index: SQL answers (and seeds them)
            return CallContext(x_in_pool=True, bindings=tuple([
                self._live(e, direction, shop, status)
                for e, direction, shop, status in live]))
        if found:  # only markers of bindings that ended: the reject says so
            ended = []
            for e, direction, shop, status in found:
                if not e.ended and direction is Direction.CALLBACK:
                    # A buyer calling back after expiry may still reach the shop (a grace
                    # window, a service line): the decision needs the shop's true states.
                    if shop is None or status is None:
                        return None
                    ended.append(RouteBinding(
                        binding_id=e.binding_id, shop_id=e.shop_id, order_id=e.order_id,
                        caller_a=e.caller_a, virtual_x=e.virtual_x, buyer_b="",
                        expires_at=e.expires_at, state=BindingState.EXPIRED,
                        matched_as=direction, shop_service=_service(shop.service),
                        caller_status=_status(status), main_caller=shop.main_caller))
                else:
                    ended.append(_ended(e, direction, now))
            return CallContext(x_in_pool=True, bindings=tuple(ended))
        return CallContext(x_in_pool=pair.in_pool)

    def _live(self, e: IndexEntry, direction: Direction, shop: ShopState | None,
              status: str | None) -> RouteBinding:
        return RouteBinding(
            binding_id=e.binding_id, shop_id=e.shop_id, order_id=e.order_id,
            caller_a=e.caller_a, virtual_x=e.virtual_x,
            buyer_b=self._cipher.decrypt(e.buyer_cipher), expires_at=e.expires_at,
            state=BindingState.ACTIVE, matched_as=direction,
            shop_service=_service(shop.service if shop else None),
            caller_status=_status(status), main_caller=shop.main_caller if shop else "")

    async def _seed(self, version: int, context: CallContext, entries: list[IndexEntry],
                    now: datetime) -> None:
        """After a SQL read on a current index: put what it saw (live bindings, their shop
        and caller states, true at least at ``version``) into the index so the next call
        hits."""
        if self._index is None or not context.bindings:
            return
        shops = {b.shop_id: ShopState(b.shop_service.value, b.main_caller)
                 for b in context.bindings}
        callers = {(b.shop_id, b.caller_a, b.caller_status.value) for b in context.bindings}
        try:
            await self._index.seed(version, entries, now=now, shops=sorted(shops.items()),
                                   callers=sorted(callers))
        except StoreUnavailable as exc:
            self._index_failed(exc)

    # -- SQL --------------------------------------------------------------------------------
    async def _from_sql(self, caller: str, bidx: str, x: str, now: datetime
                        ) -> tuple[CallContext, list[IndexEntry]]:
        params = {"x": x, "caller": caller, "bidx": bidx, "cutoff": now - self._lookback}
        # Core, not an ORM session: no identity map or unit of work for a read-only probe.
        async with guard(self._db.timeout * 5), self._db.engine.connect() as conn:
            rows = (await conn.execute(self._query, params)).all()
        if not rows:
            return CallContext(x_in_pool=False), []
        found = [row for row in rows if row.id is not None]
        bindings = tuple(
            RouteBinding(
                binding_id=row.id, shop_id=row.shop_id, order_id=row.order_id,
                caller_a=row.caller_a, virtual_x=row.virtual_x,
                buyer_b=self._cipher.decrypt(row.buyer_cipher), expires_at=row.expires_at,
                state=BindingState(row.state),
                matched_as=Direction.MERCHANT if row.caller_a == caller else Direction.CALLBACK,
                shop_service=_service(row.service_state), caller_status=_status(row.status),
                main_caller=row.main_caller or "")
            for row in found)
        entries = [IndexEntry(row.id, row.shop_id, row.order_id, row.caller_a, row.virtual_x,
                              row.buyer_bidx, bytes(row.buyer_cipher), row.expires_at)
                   for row in found
                   if row.state == BindingState.ACTIVE.value and now < row.expires_at]
        return CallContext(x_in_pool=True, bindings=bindings), entries

    # -- call log ---------------------------------------------------------------------------
    async def record(self, attempt: CallAttempt) -> None:
        """One attempt, written now (the serving path batches with ``AttemptWriter``)."""
        await write_attempts(self._db, [attempt_row(attempt)])


def _ended(e: IndexEntry, direction: Direction, now: datetime) -> RouteBinding:
    """A marker as the decision sees it: not active, so only its ids reach the reject (the
    buyer's number is not even decrypted)."""
    state = BindingState.RELEASED if e.ended else BindingState.EXPIRED
    return RouteBinding(
        binding_id=e.binding_id, shop_id=e.shop_id, order_id=e.order_id, caller_a=e.caller_a,
        virtual_x=e.virtual_x, buyer_b="", expires_at=min(e.expires_at, now), state=state,
        matched_as=direction, shop_service=ServiceState.DISABLED,
        caller_status=CallerStatus.DISABLED, main_caller="")


# By value, looked up without the enum's constructor (which costs a call's worth of
# microseconds on the call path and raises for anything unknown); None is not a key.
_SERVICES: Mapping[str | None, ServiceState] = MappingProxyType(
    {s.value: s for s in ServiceState})
_STATUSES: Mapping[str | None, CallerStatus] = MappingProxyType(
    {s.value: s for s in CallerStatus})


def _service(value: str | None) -> ServiceState:
    """A state the index does not know (or none) counts as disabled."""
    return _SERVICES.get(value, ServiceState.DISABLED)


def _status(value: str | None) -> CallerStatus:
    """A caller number that is no longer on the shop's list counts as disabled."""
    return _STATUSES.get(value, CallerStatus.DISABLED)

"""The call path's store for extension numbers: which pool numbers are extension numbers (a
small directory, re-read every few seconds), and the caller's bindings on X (on one
extension, or all of them) in one round trip, straight from SQL (extension bindings are not
in the Redis index: see ``binding_store.index_rebuild``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import aliased, join

from binding_store import models as m
from binding_store.crypto import BuyerCipher
from binding_store.db import Database, guard
from binding_store.extension_store import ExtensionPool
from binding_store.route_lookup import _service, _status
from routing.model import BindingState, CallContext, Direction, RouteBinding

_MAX_ROWS = 20


class ExtensionDirectory:
    """Every extension-mode X (E.164) with its extension length, as of at most ``refresh``
    seconds ago. A number put into extension mode waits at most that long to be treated as
    one; until then its calls take the AXB path, which never matches an extension binding
    (they are refused, not misrouted)."""

    def __init__(self, database: Database, *, refresh_seconds: float = 10.0) -> None:
        self._pool = ExtensionPool(database)
        self._refresh = refresh_seconds
        self._lengths: dict[str, int] = {}
        self._read_at: float | None = None
        self._lock = asyncio.Lock()

    async def lengths(self) -> Mapping[str, int]:
        if self._read_at is None or time.monotonic() - self._read_at >= self._refresh:
            async with self._lock:
                if self._read_at is None or time.monotonic() - self._read_at >= self._refresh:
                    self._lengths = await self._pool.modes()
                    self._read_at = time.monotonic()
        return self._lengths


class ExtensionLookup:
    """Implements ``routing.ports.ExtensionCallLookup``."""

    def __init__(self, database: Database, cipher: BuyerCipher, *,
                 lookback: timedelta = timedelta(days=7)) -> None:
        self._db = database
        self._cipher = cipher
        self._lookback = lookback

    async def find_extension_call(self, caller_e164: str, x_e164: str, extension: str | None,
                                  now: datetime) -> CallContext:
        """The caller's number never goes to the database (it may be a buyer's, and drivers
        log parameters at DEBUG): with an extension, the (X, extension)'s recent bindings are
        read and matched against the caller here; without one, only the caller's bindings as
        a buyer (by blind index), so a merchant is always asked for the extension."""
        b, shop, caller = m.Binding, m.Shop, m.CallerNumber
        main = aliased(m.CallerNumber)
        bidx = self._cipher.blind_index(caller_e164)
        cutoff = now - self._lookback
        main_caller = (select(main.number)
                       .where(main.shop_id == b.shop_id, main.is_main.is_(True))
                       .order_by(main.id).limit(1).correlate(b).scalar_subquery())
        query = (
            select(b.id, b.shop_id, b.order_id, b.caller_a, b.virtual_x, b.extension, b.buyer_bidx,
                   b.buyer_cipher, b.expires_at, b.state, shop.service_state, caller.status,
                   main_caller.label("main_caller"))
            .select_from(join(b, shop, shop.id == b.shop_id))
            .outerjoin(caller, and_(caller.shop_id == b.shop_id, caller.number == b.caller_a))
            .where(b.virtual_x == x_e164, b.extension != "",
                   or_(b.state == BindingState.ACTIVE.value, b.expires_at >= cutoff,
                       b.released_at >= cutoff))
            .order_by(b.created_at.desc(), b.id)
            .limit(_MAX_ROWS))
        if extension is not None:
            query = query.where(b.extension == extension)
        else:
            query = query.where(b.buyer_bidx == bidx)
        async with guard(self._db.timeout * 5), self._db.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        bindings = tuple(
            RouteBinding(
                binding_id=row.id, shop_id=row.shop_id, order_id=row.order_id,
                caller_a=row.caller_a, virtual_x=row.virtual_x,
                buyer_b=self._cipher.decrypt(row.buyer_cipher), expires_at=row.expires_at,
                state=BindingState(row.state),
                matched_as=(Direction.MERCHANT if row.caller_a == caller_e164
                            else Direction.CALLBACK),
                shop_service=_service(row.service_state), caller_status=_status(row.status),
                main_caller=row.main_caller or "", extension=row.extension)
            for row in rows if row.caller_a == caller_e164 or row.buyer_bidx == bidx)
        return CallContext(x_in_pool=True, bindings=bindings)

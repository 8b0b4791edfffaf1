"""Build the routing handler for a benchmark server or per-call script from ``Settings``.

The same composition ``privnum serve`` / ``privnum agi`` performs: Database, buyer cipher,
optional Redis index, ``StoreRouteLookup`` as look-up and attempt recorder, ``RouteHandler``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from agi import channel_vars as cv
from agi.handlers import RouteHandler, RouteOptions
from agi.session import AgiSession
from binding_store.redis_index import RedisIndex
from binding_store.route_lookup import StoreRouteLookup
from scripts import wiring
from scripts.settings import Settings

Closer = Callable[[], Awaitable[None]]

# The variables a bridged call gets, with values of realistic length: the protocol floor
# sends exactly this many in its one MSet.
FLOOR_VARIABLES = {
    cv.ACTION: cv.ACTION_BRIDGE, cv.DIAL_NUMBER: "13900001234", cv.CALLERID: "17000001234",
    cv.MAX_SECONDS: "3600", cv.BINDING: "0123456789abcdef0123456789abcdef",
    cv.SHOP: "shop00001", cv.ORDER: "ord000001234", cv.X: "+8617000001234",
    cv.DIRECTION: "merchant", cv.REASON: "bridged", cv.PROMPT: "",
}


class FloorHandler:
    """The protocol floor: the same one ``EXEC MSet`` with the same variable count, no
    look-up, no decision, no recording."""

    async def __call__(self, session: AgiSession) -> None:
        await session.set_variables(FLOOR_VARIABLES)


def route_handler(settings: Settings) -> tuple[RouteHandler, StoreRouteLookup, Closer]:
    db = wiring.database(settings)
    cipher = wiring.buyer_cipher(settings)
    index = None
    if settings.redis.url:
        index = RedisIndex.from_url(settings.redis.url, prefix=settings.redis.prefix,
                                    timeout=settings.redis.timeout_seconds)
    lookup = StoreRouteLookup(
        db, cipher, index=index,
        lookback=timedelta(days=settings.bindings.expired_lookback_days))
    agi = settings.agi
    handler = RouteHandler(
        lookup, lookup, wiring.utc_now,
        RouteOptions(max_call_seconds=agi.max_call_seconds, dial_format=agi.dial_format,
                     region=settings.bindings.default_region,
                     store_timeout=agi.store_timeout_seconds,
                     system_name=agi.system_name))

    async def close() -> None:
        if index is not None:
            await index.close()
        await db.dispose()

    return handler, lookup, close

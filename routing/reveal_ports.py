"""The ports a reveal (``routing.usecases.reveal``) reads and counts through: everything it
decides on, read together; the binding service with the cheap look-up a repeated click needs;
and the velocity and daily-quota counters, which stay exact under concurrency.

``binding_store`` implements them (the counters on SQL or Redis); time is passed in (tz-aware
UTC).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from routing.binding_views import BindingView
from routing.orders import OrderView
from routing.ports import BindingService
from routing.shop_views import CallerView, ShopView

# --- what a reveal reads -------------------------------------------------------------------------


class RevealBindings(BindingService, Protocol):
    """The binding service plus the cheap look-up a repeated click needs."""

    async def active_for_order(self, shop_id: str, order_id: str, now: datetime
                               ) -> BindingView | None:
        """The order's active, unexpired binding, if any (one indexed query)."""
        ...


@dataclass(frozen=True)
class RevealFacts:
    """What a reveal reads before it decides, read together: the shop, the registered order
    (``None``: not registered), the shop's caller numbers (main first, then by number) and
    the order's active, unexpired binding."""

    shop: ShopView
    order: OrderView | None
    callers: tuple[CallerView, ...]
    active: BindingView | None


class RevealFactsPort(Protocol):
    async def load(self, shop_id: str, order_id: str, now: datetime) -> RevealFacts:
        """One read of everything a reveal needs (on PostgreSQL one session, two statements
        instead of five sessions); ``NotFound`` if the shop does not exist."""
        ...


# --- what a reveal counts ------------------------------------------------------------------------


@dataclass(frozen=True)
class QuotaTake:
    """``taken``: the reveal may be plaintext; ``first``: this call took the unit (the order
    had none yet that day), so a failure afterwards gives it back."""

    taken: bool
    used: int
    first: bool = False


@dataclass(frozen=True)
class QuotaAsk:
    """The quota unit a reveal takes if the velocity limit lets it through."""

    shop_id: str
    day: str
    limit: int
    resets_at: datetime
    order_id: str


class RevealCounters(Protocol):
    """Counters that stay correct under concurrency (SQL upsert or Redis INCR/Lua).

    ``now`` is the caller's clock: a counter's lifetime is measured from it, so a store whose
    own clock disagrees (Redis on another host) still keeps each window's count exact."""

    async def hit_velocity(self, account_id: str, window: int, window_end: datetime,
                           now: datetime) -> int:
        """Count one reveal for the account in fixed window ``window``; the new count."""
        ...

    async def hit(self, account_id: str, window: int, window_end: datetime, now: datetime, *,
                  velocity_limit: int, quota: QuotaAsk | None) -> tuple[int, QuotaTake | None]:
        """``hit_velocity``, then, if the new count is within ``velocity_limit``, ``take_quota``
        of ``quota`` (``None``: no unit wanted, or the reveal is over the limit); on Redis
        one round trip."""
        ...

    async def take_quota(self, shop_id: str, day: str, limit: int, resets_at: datetime,
                         now: datetime, *, order_id: str) -> QuotaTake:
        """Take one plaintext unit of ``shop_id``'s quota for ``day`` for ``order_id`` if
        fewer than ``limit`` are used, atomically; an order that already has its unit that
        day is taken again at no cost (``first`` false)."""
        ...

    async def give_back_quota(self, shop_id: str, day: str, *, order_id: str) -> None:
        """Return the unit ``order_id`` took for a reveal that then failed (no partial
        effects)."""
        ...

    async def quota_used(self, shop_id: str, day: str) -> int: ...

"""The webhook ports: subscriptions, their deliveries (listed, replayed, the backlog
counted) and the check that a subscription's host resolves. ``binding_store`` implements the
stores, ``scripts/dns.py`` the resolver; time is passed in (tz-aware UTC).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from routing.webhooks import (
    BacklogStats,
    DeliveryState,
    DeliveryView,
    EventFilter,
    NewSubscription,
    Subscription,
)


class WebhookSubscriptions(Protocol):
    async def add(self, *, url: str, events: EventFilter, now: datetime, actor: str,
                  shop_id: str | None = None, secret: str | None = None, batch_size: int = 1,
                  description: str = "") -> NewSubscription: ...

    async def list(self, *, include_removed: bool = False) -> list[Subscription]: ...

    async def get(self, subscription_id: str) -> Subscription:
        """``NotFound`` when there is none."""
        ...

    async def remove(self, subscription_id: str, *, now: datetime, actor: str
                     ) -> Subscription: ...


class WebhookDeliveries(Protocol):
    async def deliveries(self, *, subscription_id: str | None = None,
                         state: DeliveryState | None = None, limit: int = 100
                         ) -> list[DeliveryView]: ...

    async def replay(self, subscription_id: str, *, now: datetime, actor: str,
                     states: Sequence[DeliveryState] = ..., event_id: str | None = None,
                     since: datetime | None = None) -> int: ...

    async def stats(self, now: datetime) -> BacklogStats: ...


class HostResolver(Protocol):
    async def resolves(self, host: str, port: int) -> bool:
        """Whether ``host`` resolves to at least one address (bounded in time)."""
        ...

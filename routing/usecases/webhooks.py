"""Webhook subscriptions and their deliveries: add (URL checked: http(s) and a host that
resolves), list, remove, delivery history, replay; and the backlog ``/metrics`` shows."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime

from routing.api_ports import Principal, ShopPort
from routing.errors import InvalidInput
from routing.shop_views import check_id
from routing.usecases.access import manage_webhooks
from routing.webhook_ports import HostResolver, WebhookDeliveries, WebhookSubscriptions
from routing.webhooks import (
    BacklogStats,
    DeliveryState,
    DeliveryView,
    EventFilter,
    NewSubscription,
    Subscription,
    check_url,
)


class Webhooks:
    def __init__(self, *, subscriptions: WebhookSubscriptions, deliveries: WebhookDeliveries,
                 resolver: HostResolver, shops: ShopPort) -> None:
        self._subscriptions = subscriptions
        self._deliveries = deliveries
        self._resolver = resolver
        self._shops = shops

    async def add(self, who: Principal, *, url: str, now: datetime,
                  events: str | Sequence[str] = "*", shop_id: str | None = None,
                  secret: str | None = None, batch_size: int = 1, description: str = ""
                  ) -> NewSubscription:
        manage_webhooks(who)
        url = url.strip()
        host, port = check_url(url)
        chosen = EventFilter.parse(events)
        if shop_id is not None:
            await self._shops.get(check_id("shop", shop_id))  # an unknown shop: NotFound
        if not await self._resolver.resolves(host, port):
            raise InvalidInput(f"webhook URL host {host} does not resolve to any address")
        return await self._subscriptions.add(
            url=url, events=chosen, now=now, actor=who.actor, shop_id=shop_id, secret=secret,
            batch_size=batch_size, description=description)

    async def list(self, who: Principal, *, include_removed: bool = False
                   ) -> list[Subscription]:
        manage_webhooks(who)
        return await self._subscriptions.list(include_removed=include_removed)

    async def get(self, who: Principal, subscription_id: str) -> Subscription:
        manage_webhooks(who)
        return await self._subscriptions.get(subscription_id)

    async def remove(self, who: Principal, subscription_id: str, now: datetime
                     ) -> Subscription:
        manage_webhooks(who)
        return await self._subscriptions.remove(subscription_id, now=now, actor=who.actor)

    async def deliveries(self, who: Principal, *, subscription_id: str | None = None,
                         state: DeliveryState | None = None, limit: int = 100
                         ) -> builtins.list[DeliveryView]:
        manage_webhooks(who)
        if subscription_id is not None:
            await self._subscriptions.get(subscription_id)
        return await self._deliveries.deliveries(subscription_id=subscription_id, state=state,
                                                 limit=limit)

    async def replay(self, who: Principal, subscription_id: str, now: datetime, *,
                     states: Sequence[DeliveryState] = (DeliveryState.DEAD,),
                     event_id: str | None = None, since: datetime | None = None) -> int:
        """Deliver again (same event ids), from the first rung of the ladder."""
        manage_webhooks(who)
        subscription = await self._subscriptions.get(subscription_id)
        if subscription.removed_at is not None:
            raise InvalidInput(f"webhook subscription {subscription_id} was removed")
        if not states:
            raise InvalidInput("replay needs at least one delivery state")
        return await self._deliveries.replay(subscription_id, now=now, actor=who.actor,
                                             states=states, event_id=event_id, since=since)

    async def backlog(self, now: datetime) -> BacklogStats:
        """Not a principal's question: the operations view (``/metrics``)."""
        return await self._deliveries.stats(now)

"""Webhook subscriptions: add (the secret is shown once), list, remove; audited."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import select

from binding_store import audit
from binding_store.db import Database
from binding_store.webhook_models import WebhookSubscription
from routing.audit import AuditKind
from routing.errors import InvalidInput, NotFound
from routing.shop_views import check_name
from routing.webhooks import MAX_BATCH, EventFilter, NewSubscription, Subscription

_ID_BYTES = 8
_SECRET_BYTES = 32
_MIN_SECRET = 16


def view(row: WebhookSubscription) -> Subscription:
    return Subscription(id=row.id, url=row.url, events=EventFilter.parse(row.events),
                        shop_id=row.shop_id, batch_size=row.batch_size,
                        description=row.description, created_at=row.created_at,
                        removed_at=row.removed_at, paused_until=row.paused_until)


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(_SECRET_BYTES)


class SubscriptionStore:
    """Implements ``routing.webhook_ports.WebhookSubscriptions``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, *, url: str, events: EventFilter, now: datetime, actor: str,
                  shop_id: str | None = None, secret: str | None = None, batch_size: int = 1,
                  description: str = "") -> NewSubscription:
        if not 1 <= batch_size <= MAX_BATCH:
            raise InvalidInput(f"batch size must be 1 to {MAX_BATCH}")
        if secret is not None and not _MIN_SECRET <= len(secret) <= 128:
            raise InvalidInput(f"a webhook secret has {_MIN_SECRET} to 128 characters")
        description = check_name(description)
        secret = secret or new_secret()
        row = WebhookSubscription(
            id="wh_" + secrets.token_hex(_ID_BYTES), url=url, secret=secret, events=str(events),
            shop_id=shop_id, batch_size=batch_size, description=description, created_at=now,
            removed_at=None, paused_until=None)
        async with self._db.session() as s:
            s.add(row)
            audit.record(s, now=now, actor=actor, kind=AuditKind.WEBHOOK_ADDED, shop_id=shop_id,
                         subject=row.id, detail={"url": url, "events": str(events),
                                                 "batch_size": batch_size})
            await s.commit()
        return NewSubscription(view(row), secret)

    async def list(self, *, include_removed: bool = False) -> list[Subscription]:
        query = select(WebhookSubscription).order_by(WebhookSubscription.created_at,
                                                     WebhookSubscription.id)
        if not include_removed:
            query = query.where(WebhookSubscription.removed_at.is_(None))
        async with self._db.session() as s:
            return [view(r) for r in (await s.scalars(query)).all()]

    async def get(self, subscription_id: str) -> Subscription:
        async with self._db.session() as s:
            row = await s.get(WebhookSubscription, subscription_id)
        if row is None:
            raise NotFound(f"webhook subscription {subscription_id} not found")
        return view(row)

    async def remove(self, subscription_id: str, *, now: datetime, actor: str) -> Subscription:
        """Stop sending to it (idempotent); its history stays readable."""
        async with self._db.session() as s:
            row = await s.get(WebhookSubscription, subscription_id)
            if row is None:
                raise NotFound(f"webhook subscription {subscription_id} not found")
            if row.removed_at is None:
                row.removed_at = now
                audit.record(s, now=now, actor=actor, kind=AuditKind.WEBHOOK_REMOVED,
                             shop_id=row.shop_id, subject=row.id, detail={"url": row.url})
                await s.commit()
            return view(row)

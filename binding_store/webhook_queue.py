"""The delivery side of the outbox: fan events out to subscriptions, lease deliveries to a
worker, record each attempt's outcome, and the read side (backlog, history, replay, purge).

Safe with several workers on PostgreSQL: fan-out and claims lock rows with
``FOR UPDATE SKIP LOCKED`` and a claimed delivery carries a lease (``leased_until``) for the
time of its request, so two workers never send the same delivery at once and a worker that
died is taken over when its lease ends. SQLite serializes writers (one node).

Per-stream order: a delivery is claimed only when no earlier delivery of the same stream
(one order's bindings, one call) to the same subscription is still pending, leased or not;
a dead letter no longer holds its stream up.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from binding_store import audit
from binding_store.db import Database
from binding_store.webhook_models import WebhookDelivery, WebhookEvent, WebhookSubscription
from binding_store.webhooks import view
from routing.audit import AuditKind
from routing.webhooks import (
    BacklogStats,
    DeliveryState,
    DeliveryView,
    RetryLadder,
    Subscription,
)

PENDING = DeliveryState.PENDING.value
_MAX_ERROR = 200


@dataclass(frozen=True)
class Claimed:
    """Deliveries leased for one request to one subscription (heads of distinct streams)."""

    subscription: Subscription
    secret: str
    delivery_ids: tuple[int, ...]
    events: tuple[dict[str, Any], ...]  # the envelopes, in event order
    attempt: int  # the highest attempt number among them (1 = first)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def envelope(row: WebhookEvent) -> dict[str, Any]:
    """An event as the receiver gets it."""
    return {"id": row.event_id, "type": row.type, "sequence": row.id, "stream": row.stream,
            "shop_id": row.shop_id or None, "occurred_at": _iso(row.occurred_at),
            "recorded_at": _iso(row.created_at), "data": json.loads(row.payload)}


def _insert(session: AsyncSession) -> Any:
    bind = session.get_bind()
    return (postgresql.insert if bind.dialect.name == "postgresql" else sqlite.insert)(
        WebhookDelivery)


def _locking(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


class DeliveryQueue:
    def __init__(self, db: Database, ladder: RetryLadder | None = None) -> None:
        self._db = db
        self.ladder = ladder or RetryLadder()

    # ---- fan-out -------------------------------------------------------------------------

    async def dispatch(self, now: datetime, limit: int = 500) -> int:
        """Hand up to ``limit`` new events to the subscriptions that take them; returns how
        many events were handed out (0: none waiting)."""
        async with self._db.session() as s:
            query = (select(WebhookEvent.id, WebhookEvent.type, WebhookEvent.stream,
                            WebhookEvent.shop_id)
                     .where(WebhookEvent.dispatched_at.is_(None))
                     .order_by(WebhookEvent.id).limit(limit))
            if _locking(s):
                query = query.with_for_update(skip_locked=True)
            events = (await s.execute(query)).all()
            if not events:
                return 0
            subs = [view(r) for r in (await s.scalars(select(WebhookSubscription).where(
                WebhookSubscription.removed_at.is_(None)))).all()]
            rows = [{"subscription_id": sub.id, "event_seq": e.id, "stream": e.stream,
                     "state": PENDING, "attempts": 0, "next_attempt_at": now,
                     "leased_until": None, "last_status": None, "last_error": "",
                     "created_at": now, "delivered_at": None}
                    for e in events for sub in subs if sub.takes(e.type, e.shop_id)]
            if rows:
                await s.execute(_insert(s).on_conflict_do_nothing(), rows)
            await s.execute(update(WebhookEvent)
                            .where(WebhookEvent.id.in_([e.id for e in events]))
                            .values(dispatched_at=now)
                            .execution_options(synchronize_session=False))
            await s.commit()
        return len(events)

    # ---- claims and outcomes -------------------------------------------------------------

    async def claim(self, now: datetime, *, lease: timedelta, requests: int) -> list[Claimed]:
        """Lease deliveries for up to ``requests`` requests (each to one subscription, at most
        its batch size, one delivery per stream), oldest events first."""
        if requests < 1:
            return []
        earlier = aliased(WebhookDelivery)
        blocked = exists().where(
            earlier.subscription_id == WebhookDelivery.subscription_id,
            earlier.stream == WebhookDelivery.stream, earlier.state == PENDING,
            earlier.event_seq < WebhookDelivery.event_seq)
        async with self._db.session() as s:
            query = (
                select(WebhookDelivery.id, WebhookDelivery.subscription_id,
                       WebhookDelivery.event_seq, WebhookDelivery.attempts)
                .join(WebhookSubscription,
                      WebhookSubscription.id == WebhookDelivery.subscription_id)
                .where(WebhookDelivery.state == PENDING, WebhookDelivery.next_attempt_at <= now,
                       or_(WebhookDelivery.leased_until.is_(None),
                           WebhookDelivery.leased_until <= now),
                       WebhookSubscription.removed_at.is_(None),
                       or_(WebhookSubscription.paused_until.is_(None),
                           WebhookSubscription.paused_until <= now),
                       ~blocked)
                .order_by(WebhookDelivery.event_seq)
                .limit(requests * 50))
            if _locking(s):
                query = query.with_for_update(skip_locked=True, of=WebhookDelivery)
            candidates = (await s.execute(query)).all()
            if not candidates:
                return []
            subs = {r.id: r for r in (await s.scalars(select(WebhookSubscription).where(
                WebhookSubscription.id.in_({c.subscription_id for c in candidates})))).all()}
            groups: list[tuple[WebhookSubscription, list[Any]]] = []
            open_group: dict[str, list[Any]] = {}
            for c in candidates:
                sub = subs[c.subscription_id]
                group = open_group.get(sub.id)
                if group is None or len(group) >= sub.batch_size:
                    if len(groups) >= requests:
                        continue
                    group = []
                    open_group[sub.id] = group
                    groups.append((sub, group))
                group.append(c)
            leased = [c.id for _, group in groups for c in group]
            await s.execute(update(WebhookDelivery).where(WebhookDelivery.id.in_(leased))
                            .values(leased_until=now + lease)
                            .execution_options(synchronize_session=False))
            events = {e.id: e for e in (await s.scalars(select(WebhookEvent).where(
                WebhookEvent.id.in_([c.event_seq for _, g in groups for c in g])))).all()}
            await s.commit()
        return [Claimed(subscription=view(sub), secret=sub.secret,
                        delivery_ids=tuple(c.id for c in group),
                        events=tuple(envelope(events[c.event_seq]) for c in group),
                        attempt=max(c.attempts for c in group) + 1)
                for sub, group in groups]

    async def delivered(self, ids: Sequence[int], now: datetime, status: int) -> None:
        async with self._db.session() as s:
            await s.execute(
                update(WebhookDelivery).where(WebhookDelivery.id.in_(ids),
                                              WebhookDelivery.state == PENDING)
                .values(state=DeliveryState.DELIVERED.value, delivered_at=now,
                        attempts=WebhookDelivery.attempts + 1, leased_until=None,
                        last_status=status, last_error="")
                .execution_options(synchronize_session=False))
            await s.commit()

    async def failed(self, ids: Sequence[int], now: datetime, *, subscription_id: str,
                     status: int | None, error: str) -> int:
        """One failed attempt for each of ``ids``: the next rung of the ladder, or a dead
        letter past the last; the subscription pauses for the first rung. Returns how many
        became dead letters."""
        dead = 0
        async with self._db.session() as s:
            rows = (await s.execute(select(WebhookDelivery.id, WebhookDelivery.attempts).where(
                WebhookDelivery.id.in_(ids), WebhookDelivery.state == PENDING))).all()
            for row in rows:
                attempts = row.attempts + 1
                retry = self.ladder.next_attempt(attempts, now)
                values: dict[str, Any] = {
                    "attempts": attempts, "leased_until": None, "last_status": status,
                    "last_error": error[:_MAX_ERROR]}
                if retry is None:
                    values.update(state=DeliveryState.DEAD.value, next_attempt_at=None)
                    dead += 1
                else:
                    values["next_attempt_at"] = retry
                await s.execute(update(WebhookDelivery).where(WebhookDelivery.id == row.id)
                                .values(**values)
                                .execution_options(synchronize_session=False))
            await s.execute(update(WebhookSubscription)
                            .where(WebhookSubscription.id == subscription_id)
                            .values(paused_until=now + self.ladder.steps[0])
                            .execution_options(synchronize_session=False))
            await s.commit()
        return dead

    async def resume(self, subscription_id: str) -> None:
        """A request went through: the subscription is no longer paused."""
        async with self._db.session() as s:
            await s.execute(update(WebhookSubscription)
                            .where(WebhookSubscription.id == subscription_id,
                                   WebhookSubscription.paused_until.is_not(None))
                            .values(paused_until=None)
                            .execution_options(synchronize_session=False))
            await s.commit()

    async def release(self, ids: Sequence[int]) -> None:
        """Give leased deliveries back untried (shutdown before their request was sent)."""
        async with self._db.session() as s:
            await s.execute(update(WebhookDelivery).where(WebhookDelivery.id.in_(ids))
                            .values(leased_until=None)
                            .execution_options(synchronize_session=False))
            await s.commit()

    # ---- read side, replay, purge --------------------------------------------------------

    async def stats(self, now: datetime) -> BacklogStats:
        async with self._db.session() as s:
            undispatched = await s.scalar(select(func.count()).select_from(WebhookEvent).where(
                WebhookEvent.dispatched_at.is_(None)))
            oldest_event = await s.scalar(select(func.min(WebhookEvent.created_at)).where(
                WebhookEvent.dispatched_at.is_(None)))
            pending = await s.scalar(select(func.count()).select_from(WebhookDelivery).where(
                WebhookDelivery.state == PENDING))
            oldest_delivery = await s.scalar(
                select(func.min(WebhookEvent.created_at)).select_from(WebhookDelivery)
                .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_seq)
                .where(WebhookDelivery.state == PENDING))
            dead = await s.scalar(select(func.count()).select_from(WebhookDelivery).where(
                WebhookDelivery.state == DeliveryState.DEAD.value))
        oldest = min((t for t in (oldest_event, oldest_delivery) if t is not None),
                     default=None)
        age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
        return BacklogStats(undispatched=int(undispatched or 0), pending=int(pending or 0),
                            oldest_pending_seconds=age, dead=int(dead or 0))

    async def deliveries(self, *, subscription_id: str | None = None,
                         state: DeliveryState | None = None, limit: int = 100
                         ) -> list[DeliveryView]:
        """Newest first."""
        query = (select(WebhookDelivery, WebhookEvent.event_id, WebhookEvent.type)
                 .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_seq)
                 .order_by(WebhookDelivery.id.desc()).limit(limit))
        if subscription_id is not None:
            query = query.where(WebhookDelivery.subscription_id == subscription_id)
        if state is not None:
            query = query.where(WebhookDelivery.state == state.value)
        async with self._db.session() as s:
            rows = (await s.execute(query)).all()
        return [DeliveryView(
            id=d.id, subscription_id=d.subscription_id, event_id=event_id, event_type=etype,
            stream=d.stream, state=DeliveryState(d.state), attempts=d.attempts,
            next_attempt_at=d.next_attempt_at, last_status=d.last_status,
            last_error=d.last_error, created_at=d.created_at, delivered_at=d.delivered_at)
            for d, event_id, etype in rows]

    async def replay(self, subscription_id: str, *, now: datetime, actor: str,
                     states: Sequence[DeliveryState] = (DeliveryState.DEAD,),
                     event_id: str | None = None, since: datetime | None = None) -> int:
        """Send deliveries again from the first rung (same event ids): the subscription's
        dead letters by default, or those in ``states``, of one event, or since a time."""
        where = [WebhookDelivery.subscription_id == subscription_id,
                 WebhookDelivery.state.in_([st.value for st in states])]
        if event_id is not None:
            where.append(WebhookDelivery.event_seq.in_(
                select(WebhookEvent.id).where(WebhookEvent.event_id == event_id)))
        if since is not None:
            where.append(WebhookDelivery.created_at >= since)
        async with self._db.session() as s:
            result = await s.execute(
                update(WebhookDelivery).where(and_(*where))
                .values(state=PENDING, attempts=0, next_attempt_at=now, leased_until=None,
                        delivered_at=None, last_error="")
                .execution_options(synchronize_session=False))
            count = int(getattr(result, "rowcount", 0) or 0)
            await s.execute(update(WebhookSubscription)
                            .where(WebhookSubscription.id == subscription_id)
                            .values(paused_until=None)
                            .execution_options(synchronize_session=False))
            audit.record(s, now=now, actor=actor, kind=AuditKind.WEBHOOK_REPLAYED,
                         subject=subscription_id, detail={
                             "count": count, "states": [st.value for st in states],
                             "event_id": event_id, "since": since})
            await s.commit()
        return count

    async def purge(self, before: datetime, limit: int = 5_000) -> int:
        """Delete finished deliveries (delivered or dead) created before ``before``, then the
        events no delivery refers to any more; returns the deliveries deleted."""
        async with self._db.session() as s:
            old = (select(WebhookDelivery.id)
                   .where(WebhookDelivery.state != PENDING, WebhookDelivery.created_at < before)
                   .limit(limit))
            ids = list((await s.scalars(old)).all())
            if ids:
                await s.execute(delete(WebhookDelivery).where(WebhookDelivery.id.in_(ids)))
            referenced = exists().where(WebhookDelivery.event_seq == WebhookEvent.id)
            await s.execute(delete(WebhookEvent).where(
                WebhookEvent.created_at < before, WebhookEvent.dispatched_at.is_not(None),
                ~referenced))
            await s.commit()
        return len(ids)

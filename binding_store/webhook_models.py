"""Tables of the webhooks: subscriptions, the outbox of events, one delivery per (event,
subscription).

``webhook_events`` is the outbox: a row is written in the same transaction as the change it
reports (a binding issued, switched, released or expired; a routing decision; a call record),
so an event exists exactly when its change does. The delivery worker hands each event to the
subscriptions that take it (``webhook_deliveries``, ``dispatched_at`` set in the same
transaction) and works the deliveries off: due, not leased to another worker, and first of
their stream for their subscription (per-call and per-order ordering).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from binding_store.cdr_models import RowId
from binding_store.models import Base
from binding_store.types import UTCDateTime

UNDISPATCHED = text("dispatched_at IS NULL")
PENDING = text("state = 'pending'")


class WebhookSubscription(Base):
    """A receiver: URL, HMAC secret, which events (``events``: comma-separated types or
    families, ``*``), optionally one shop only. Removed subscriptions keep their row (their
    delivery history stays readable); their pending deliveries are not sent."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(128))
    events: Mapped[str] = mapped_column(String(500), default="*")
    shop_id: Mapped[str | None] = mapped_column(String(64))
    batch_size: Mapped[int] = mapped_column(Integer, default=1)
    description: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # After a failed request the subscription's other deliveries wait until then, so a
    # receiver that is down gets one probe per back-off step, not every queued event.
    paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WebhookEvent(Base):
    """One event (the outbox). ``id`` orders events; ``event_id`` is the public id receivers
    deduplicate on; ``payload`` the event's ``data`` as JSON (buyer numbers masked)."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("event_id"),
        Index("ix_webhook_events_undispatched", "id",
              sqlite_where=UNDISPATCHED, postgresql_where=UNDISPATCHED),
        Index("ix_webhook_events_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36))
    type: Mapped[str] = mapped_column(String(32))
    stream: Mapped[str] = mapped_column(String(200))
    shop_id: Mapped[str] = mapped_column(String(64), default="")
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    payload: Mapped[str] = mapped_column(Text)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WebhookDelivery(Base):
    """One event for one subscription: ``pending`` until the receiver answers 2xx
    (``delivered``) or the retry ladder is exhausted (``dead``). ``leased_until``: a worker
    is sending it; another may take it over after that (a worker that died)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_seq"),
        Index("ix_webhook_deliveries_due", "next_attempt_at",
              sqlite_where=PENDING, postgresql_where=PENDING),
        Index("ix_webhook_deliveries_stream", "subscription_id", "stream", "event_seq",
              sqlite_where=PENDING, postgresql_where=PENDING),
        Index("ix_webhook_deliveries_state", "state", "created_at"),
    )

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    subscription_id: Mapped[str] = mapped_column(String(24))
    event_seq: Mapped[int] = mapped_column(BigInteger)  # webhook_events.id
    stream: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

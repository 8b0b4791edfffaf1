"""The table of idempotency keys (``binding_store.idempotency``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from binding_store.models import Base
from binding_store.types import UTCDateTime


class IdempotencyKey(Base):
    """One key of one credential (``scope``: the token id). Neither the key nor the request
    nor the response is kept in the clear: a request can carry a buyer number and a plaintext
    reveal returns one. ``key_digest`` and ``request_digest`` are keyed digests (HMAC under the
    blind-index key), ``body`` is sealed with the buyer-number key. ``state``: ``pending``
    while the first request runs (until ``lease_until``), ``done`` once its response is kept.
    Rows past ``expires_at`` are purged."""

    __tablename__ = "idempotency_keys"

    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_digest: Mapped[str] = mapped_column(String(64))
    claim_id: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(8))
    status: Mapped[int | None] = mapped_column(Integer)
    content_type: Mapped[str | None] = mapped_column(String(100))
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_until: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)

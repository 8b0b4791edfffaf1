"""Tables of the HTTP API: bearer tokens (hashed) and the reveal counters (quota, velocity)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from binding_store.models import Base
from binding_store.types import UTCDateTime


class ApiToken(Base):
    """One bearer token. Only the SHA-256 of the full token is kept; ``id`` is its public part.

    ``kind`` is ``platform`` (``admin`` before the platform credential had its name),
    ``account`` (a shop account; ``shop_id`` and ``account_id`` set) or ``auditor`` (its
    shops in ``api_token_shops``). No foreign key to ``accounts``: a shop's main account gets
    its token before it enables the service (which creates the account row).
    """

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8))
    shop_id: Mapped[str | None] = mapped_column(String(64), index=True)
    account_id: Mapped[str | None] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RevealCounter(Base):
    """A counter row: (``scope``, ``subject``, ``bucket``) → ``used``.

    ``scope`` is ``quota`` (subject = shop, bucket = local day) or ``velocity`` (subject =
    account, bucket = fixed window number). Rows past ``expires_at`` may be deleted.
    """

    __tablename__ = "reveal_counters"

    scope: Mapped[str] = mapped_column(String(16), primary_key=True)
    subject: Mapped[str] = mapped_column(String(64), primary_key=True)
    bucket: Mapped[str] = mapped_column(String(32), primary_key=True)
    used: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class ApiTokenShop(Base):
    """A shop an auditor token is granted (reads its call log and exports)."""

    __tablename__ = "api_token_shops"

    token_id: Mapped[str] = mapped_column(String(24), primary_key=True)
    shop_id: Mapped[str] = mapped_column(String(64), primary_key=True)


class Order(Base):
    """An order the platform registered: the buyer number only as ciphertext (the key ring's
    current key) and masked; the reveal reads it from here."""

    __tablename__ = "orders"

    shop_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    buyer_cipher: Mapped[bytes] = mapped_column(LargeBinary)
    buyer_masked: Mapped[str] = mapped_column(String(32))
    buyer_id: Mapped[str] = mapped_column(String(64))
    ordered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

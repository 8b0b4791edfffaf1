"""A shop's own call rules (``routing.call_rules.ShopCallRules``): one row per shop that sets
any; a NULL column takes the platform default."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from binding_store.models import Base
from binding_store.types import UTCDateTime


class ShopCallRulesRow(Base):
    __tablename__ = "shop_call_rules"

    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id"), primary_key=True)
    direction: Mapped[str | None] = mapped_column(String(16))
    grace_seconds: Mapped[int | None] = mapped_column(Integer)
    fallback_number: Mapped[str | None] = mapped_column(String(20))  # E.164, a service line
    # "HH:MM-HH:MM"; "" = no window for this shop (any time), NULL = the platform default
    merchant_window: Mapped[str | None] = mapped_column(String(11))
    callback_window: Mapped[str | None] = mapped_column(String(11))
    require_caller_report: Mapped[bool | None] = mapped_column(Boolean)
    caps: Mapped[str | None] = mapped_column(String(100))  # routing.call_caps.format_caps
    warning_seconds: Mapped[int | None] = mapped_column(Integer)
    record: Mapped[bool | None] = mapped_column(Boolean)
    record_retention_days: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CallerReport(Base):
    """Whether a shop's caller number was reported to the carrier with its real user; a
    number without a row is unreported."""

    __tablename__ = "caller_reports"

    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id"), primary_key=True)
    number: Mapped[str] = mapped_column(String(20), primary_key=True)  # E.164, staff
    status: Mapped[str] = mapped_column(String(16))  # reported | unreported
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CallCapEvent(Base):
    """One call counted against a party's cap (the SQL counter); ``at_us`` is the database
    server's clock in microseconds since the epoch. Rows older than a day are purged as the
    party is counted again."""

    __tablename__ = "call_cap_events"
    __table_args__ = (Index("ix_call_cap_events_key_at", "subject_key", "at_us"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"),
                                    primary_key=True, autoincrement=True)
    subject_key: Mapped[str] = mapped_column(String(80))
    at_us: Mapped[int] = mapped_column(BigInteger)


class CallCapLock(Base):
    """One row per counted party: locked while its calls are counted, so two calls never both
    take the last unit."""

    __tablename__ = "call_cap_locks"

    subject_key: Mapped[str] = mapped_column(String(80), primary_key=True)

"""The call log: one row per call attempt (``cdrs``) and the head of its hash chain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from binding_store.models import Base
from binding_store.types import UTCDateTime

# BIGINT on PostgreSQL, INTEGER (rowid alias, autoincrement) on SQLite.
RowId = BigInteger().with_variant(Integer(), "sqlite")


class Cdr(Base):
    """A call record. Buyer numbers appear only masked (``buyer_masked``, ``caller_masked``);
    ``caller_a`` is the shop's own caller number and only set when the caller was A.

    ``chain_seq`` is the row's position in the tamper-evident chain, ``prev_hash``/``row_hash``
    the chain itself (see ``routing.call_log_views.row_digest``).
    """

    __tablename__ = "cdrs"
    __table_args__ = (
        UniqueConstraint("system_name", "uniqueid", name="uq_cdrs_system_uniqueid"),
        UniqueConstraint("chain_seq", name="uq_cdrs_chain_seq"),
        Index("ix_cdrs_shop_start", "shop_id", "start_utc", "id"),
        Index("ix_cdrs_shop_order", "shop_id", "order_id"),
        Index("ix_cdrs_start", "start_utc"),
        Index("ix_cdrs_linkedid", "linkedid"),
    )

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    chain_seq: Mapped[int] = mapped_column(BigInteger)
    system_name: Mapped[str] = mapped_column(String(64), default="")
    uniqueid: Mapped[str] = mapped_column(String(64))
    linkedid: Mapped[str] = mapped_column(String(64), default="")
    shop_id: Mapped[str] = mapped_column(String(64), default="")
    order_id: Mapped[str] = mapped_column(String(64), default="")
    binding_id: Mapped[str] = mapped_column(String(32), default="")
    buyer_id: Mapped[str] = mapped_column(String(64), default="")
    caller_a: Mapped[str] = mapped_column(String(20), default="")
    caller_masked: Mapped[str] = mapped_column(String(20), default="")
    virtual_x: Mapped[str] = mapped_column(String(20), default="")
    buyer_masked: Mapped[str] = mapped_column(String(20), default="")
    start_utc: Mapped[datetime] = mapped_column(UTCDateTime())
    answer_utc: Mapped[datetime | None] = mapped_column(UTCDateTime())
    end_utc: Mapped[datetime] = mapped_column(UTCDateTime())
    duration: Mapped[int] = mapped_column(Integer, default=0)
    billsec: Mapped[int] = mapped_column(Integer, default=0)
    disposition: Mapped[str] = mapped_column(String(16), default="")
    hangup_cause: Mapped[int | None] = mapped_column(Integer)
    direction: Mapped[str | None] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(32), default="")
    source: Mapped[str] = mapped_column(String(8), default="ami")
    prev_hash: Mapped[str] = mapped_column(String(64))
    row_hash: Mapped[str] = mapped_column(String(64))
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CdrChain(Base):
    """Single row (id 1): the chain's head and its anchor (the hash before the oldest kept
    row, moved forward by purge). Every append locks this row first, so appends from the
    listener and from ``privnum cdr reconcile`` in another process are serialized."""

    __tablename__ = "cdr_chain"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    head_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    head_hash: Mapped[str] = mapped_column(String(64))
    anchor_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    anchor_hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

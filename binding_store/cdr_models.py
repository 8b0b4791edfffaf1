"""The call log: one row per call attempt (``cdrs``) and the head of its hash chain."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import (
    BigInteger,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from binding_store.models import Base
from binding_store.partitioned import declare_partitioned, only_on, range_partitioned
from binding_store.types import UTCDateTime

# BIGINT on PostgreSQL, INTEGER (rowid alias, autoincrement) on SQLite.
RowId = BigInteger().with_variant(Integer(), "sqlite")

# What the shop's call-log query reads besides its key (shop_id, start_utc, id). On PostgreSQL
# the query's index carries them (INCLUDE), so a page of calls is read from a few adjacent
# index pages instead of one heap page per row scattered over the partition.
LISTED_COLUMNS = (
    "system_name", "uniqueid", "linkedid", "order_id", "binding_id", "buyer_id", "caller_a",
    "caller_masked", "virtual_x", "buyer_masked", "answer_utc", "end_utc", "duration",
    "billsec", "disposition", "hangup_cause", "direction", "outcome", "reason", "source",
    "extension", "mark")


class Cdr(Base):
    """A call record. Buyer numbers appear only masked (``buyer_masked``, ``caller_masked``);
    ``caller_a`` is the shop's own caller number and only set when the caller was A.

    ``chain_seq`` is the row's position in the tamper-evident chain, ``prev_hash``/``row_hash``
    the chain itself (see ``routing.call_log_views.row_digest``).

    On PostgreSQL partitioned by ``start_utc`` (see ``binding_store.partitioned``): primary key
    ``(id, start_utc)``, idempotency key ``(system_name, uniqueid, start_utc)``, and
    ``chain_seq`` indexed, not unique (``verify`` reports a repeated position as inserted).
    """

    __tablename__ = "cdrs"
    __table_args__ = (
        only_on("sqlite", PrimaryKeyConstraint("id", name="pk_cdrs")),
        only_on("sqlite", UniqueConstraint("system_name", "uniqueid",
                                           name="uq_cdrs_system_uniqueid")),
        only_on("sqlite", UniqueConstraint("chain_seq", name="uq_cdrs_chain_seq")),
        only_on("postgresql", UniqueConstraint("system_name", "uniqueid", "start_utc",
                                               name="uq_cdrs_system_uniqueid_start")),
        only_on("postgresql", Index("ix_cdrs_chain_seq", "chain_seq")),
        Index("ix_cdrs_shop_start", "shop_id", "start_utc", "id",
              postgresql_include=list(LISTED_COLUMNS)),
        Index("ix_cdrs_shop_order", "shop_id", "order_id"),
        Index("ix_cdrs_start", "start_utc"),
        Index("ix_cdrs_linkedid", "linkedid"),
        range_partitioned("start_utc"),
    )

    id: Mapped[int] = mapped_column(RowId, autoincrement=True)
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
    # Extension mode: the extension entered; NULL on every other call (and on every row
    # written before the column existed: the row hash covers it only when set).
    extension: Mapped[str | None] = mapped_column(String(4))
    # How a call rule let the call through ("grace", "fallback": the decision's mark); NULL
    # on every other call and on rows older than the column (hashed only when set).
    mark: Mapped[str | None] = mapped_column(String(16))


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


declare_partitioned(cast(Table, Cdr.__table__), "start_utc")

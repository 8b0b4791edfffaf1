"""The (X, extension) slots of extension-mode pool numbers (SQLAlchemy 2.0).

A slot exists for every extension of an extension-mode X. ``held_by`` names the active
binding holding it (NULL: free); ``last_released_at`` orders free slots like pool numbers
(never released first, then least recently released): a slot never released carries
:data:`NEVER` (1970-01-01), so one plain index gives the order on every database. The
binding table's partial unique index on (X, extension) is what keeps two active bindings off
one slot; ``held_by`` only lets the allocation walk free slots in order without probing
every busy one.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from binding_store.models import Base
from binding_store.types import UTCDateTime

FREE = text("held_by IS NULL")
NEVER = datetime(1970, 1, 1, tzinfo=UTC)


class PoolExtension(Base):
    __tablename__ = "pool_extensions"
    __table_args__ = (
        Index("ix_pool_extensions_free", "last_released_at", "number",
              "extension", sqlite_where=FREE, postgresql_where=FREE),
        Index("ix_pool_extensions_held_by", "held_by"),
    )

    number: Mapped[str] = mapped_column(
        ForeignKey("pool_numbers.number", ondelete="CASCADE"), primary_key=True)
    extension: Mapped[str] = mapped_column(String(4), primary_key=True)
    held_by: Mapped[str | None] = mapped_column(String(32))
    last_released_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=NEVER)

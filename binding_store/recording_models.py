"""Recorded calls (``routing.recording``): one row per recording a call record claimed, from
the call's end (``pending``) to its encrypted file's purge. The audio itself is a file under
``recordings.store_dir``, never a column."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from binding_store.models import Base
from binding_store.types import UTCDateTime


class RecordingRow(Base):
    __tablename__ = "recordings"
    __table_args__ = (
        Index("ix_recordings_call", "system_name", "uniqueid"),
        Index("ix_recordings_state_purge", "state", "purge_after"),
    )

    id: Mapped[str] = mapped_column(String(28), primary_key=True)  # rec_ + 24 hex digits
    shop_id: Mapped[str] = mapped_column(String(64))
    binding_id: Mapped[str] = mapped_column(String(32), default="")
    system_name: Mapped[str] = mapped_column(String(64), default="")
    uniqueid: Mapped[str] = mapped_column(String(64), default="")
    linkedid: Mapped[str] = mapped_column(String(64), default="")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    billsec: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16))  # routing.recording.RecordingState
    key_id: Mapped[str] = mapped_column(String(40), default="")
    size: Mapped[int] = mapped_column(BigInteger, default=0)  # plaintext bytes
    retention_days: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    stored_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    purge_after: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

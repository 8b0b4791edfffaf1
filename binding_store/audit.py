"""Audit events, written one way: :func:`record`, in the same transaction as the change they
describe (:meth:`AuditLog.append` is ``record`` in a transaction of its own, for events that
change nothing else, such as a reveal).

``detail`` is stored as JSON. A value under a key that names a buyer (``buyer``, ``buyer_b``,
...) is masked if it holds seven or more digits, so a careless caller cannot put a plaintext
buyer number at rest through this table.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from binding_store.db import Database
from binding_store.group_commit import GroupWriter
from binding_store.models import AuditEvent
from routing.audit import AuditKind, AuditRecord
from routing.numbers import mask

_NUMBER_DIGITS = 7  # a string with this many digits may be a phone number
_MAX_KIND = 32
_MAX_ID = 64
_MAX_ACTOR = 160  # who acted and for whom: platform:<token>><account>


def _scrub(value: Any, buyer: bool) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _scrub(v, buyer or "buyer" in str(k).lower()) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v, buyer) for v in value]
    if buyer and isinstance(value, str) and "****" not in value \
            and sum(ch.isdigit() for ch in value) >= _NUMBER_DIGITS:
        return mask(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def encode_detail(detail: Mapping[str, Any] | None) -> str:
    return json.dumps(_scrub(dict(detail or {}), False), ensure_ascii=False, sort_keys=True,
                      default=str)


def record(
    session: AsyncSession,
    *,
    now: datetime,
    actor: str,
    kind: AuditKind,
    shop_id: str | None = None,
    subject: str = "",
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Add an event to ``session``; it lands with the caller's commit (or not at all)."""
    session.add(AuditEvent(
        at=now,
        actor=actor[:_MAX_ACTOR],
        shop_id=shop_id,
        kind=kind[:_MAX_KIND],
        subject=subject[:_MAX_ID],
        detail=encode_detail(detail),
    ))


# Stand-alone events on PostgreSQL: many appends, one statement (group commit).
_APPEND = ("INSERT INTO audit_events (at, actor, shop_id, kind, subject, detail) "
           "SELECT r.at, r.actor, r.shop_id, r.kind, r.subject, r.detail "
           "FROM jsonb_to_recordset(%s) AS r(at timestamptz, actor text, shop_id text, "
           "kind text, subject text, detail text)")


def _writer(db: Database) -> GroupWriter:
    writer = GroupWriter(db.url, _APPEND, timeout=db.timeout * 5, answers=False)
    db.on_dispose(writer.close)
    return writer


class AuditLog:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._writer: GroupWriter | None = None
        if db.dialect == "postgresql" and not db.read_only:
            self._writer = db.shared("audit", lambda: _writer(db))

    async def append(
        self,
        *,
        now: datetime,
        actor: str,
        kind: AuditKind,
        shop_id: str | None = None,
        subject: str = "",
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """A stand-alone event in its own transaction (on PostgreSQL, one shared with the
        events appended at the same moment: each lands or the batch fails as a whole)."""
        if self._writer is not None:
            await self._writer.submit({
                "at": now.isoformat(), "actor": actor[:_MAX_ID], "shop_id": shop_id,
                "kind": kind[:_MAX_KIND], "subject": subject[:_MAX_ID],
                "detail": encode_detail(detail)})
            return
        async with self._db.session() as session:
            record(session, now=now, actor=actor, kind=kind, shop_id=shop_id, subject=subject,
                   detail=detail)
            await session.commit()

    async def events(
        self,
        *,
        shop_id: str | None = None,
        kind: str | None = None,
        limit: int = 100,
    ) -> list[AuditRecord]:
        """Newest first."""
        query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
        if shop_id is not None:
            query = query.where(AuditEvent.shop_id == shop_id)
        if kind is not None:
            query = query.where(AuditEvent.kind == kind)
        async with self._db.session() as session:
            rows = (await session.scalars(query)).all()
        return [
            AuditRecord(id=r.id, at=r.at, actor=r.actor, shop_id=r.shop_id, kind=r.kind,
                        subject=r.subject, detail=json.loads(r.detail or "{}"))
            for r in rows
        ]

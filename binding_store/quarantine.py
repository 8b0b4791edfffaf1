"""Quarantine of pool numbers: the state change, its audit event and its webhook event in one
transaction. Allocation takes only ``available`` numbers, so a quarantined X is out of it from
the commit on; the call path does not read the pool state, so X's active bindings keep routing
until they end."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from binding_store import audit
from binding_store.db import Database
from binding_store.models import Binding, PoolNumber
from binding_store.outbox import Outbox
from routing.audit import AuditKind
from routing.errors import Conflict, InvalidNumber, NotFound
from routing.model import BindingState, PoolState
from routing.number_classes import DEFAULT_NUMBER_CLASSES, NumberClasses
from routing.numbers import mask
from routing.quarantine import QuarantineView, quarantine_event


class PoolQuarantine:
    """Implements ``routing.usecases.quarantine.QuarantinePort``."""

    def __init__(self, db: Database, outbox: Outbox | None = None,
                 classes: NumberClasses = DEFAULT_NUMBER_CLASSES) -> None:
        self._db = db
        self._outbox = outbox or Outbox(enabled=False)
        self._classes = classes

    async def quarantine(self, number: str, reason: str, *, actor: str, now: datetime
                         ) -> QuarantineView:
        return await self._change(number, PoolState.QUARANTINED, reason, actor=actor, now=now)

    async def release(self, number: str, *, actor: str, now: datetime) -> QuarantineView:
        return await self._change(number, PoolState.AVAILABLE, "", actor=actor, now=now)

    async def _change(self, number: str, to: PoolState, reason: str, *, actor: str,
                      now: datetime) -> QuarantineView:
        e164 = self._classes.dialled(number)
        if e164 is None:
            raise InvalidNumber(f"not a phone number: {mask(number)!r}")
        async with self._db.session() as session:
            row = await session.get(PoolNumber, e164, with_for_update=True)
            if row is None:
                raise NotFound(f"{e164} is not in the virtual-number pool")
            if to is PoolState.AVAILABLE and row.state != PoolState.QUARANTINED.value:
                raise Conflict(f"{e164} is not quarantined (it is {row.state})")
            active = int(await session.scalar(
                select(func.count()).select_from(Binding).where(
                    Binding.virtual_x == e164, Binding.state == BindingState.ACTIVE.value,
                    Binding.expires_at > now)) or 0)
            changed = row.state != to.value
            view = QuarantineView(e164, to, reason, active, changed)
            if changed:
                kind = (AuditKind.POOL_QUARANTINED if to is PoolState.QUARANTINED
                        else AuditKind.POOL_QUARANTINE_RELEASED)
                audit.record(session, now=now, actor=actor, kind=kind, subject=e164,
                             detail={"from": row.state, "to": to.value, "reason": reason,
                                     "active_bindings": active})
                row.state = to.value
                await self._outbox.write(session, [quarantine_event(view, now, actor)], now)
                await session.commit()
            return view

"""Call-log test data spread over weeks: the recorded SIP call of the Asterisk session (bound to
``B-9003`` of ``shop-1``) repeated at chosen start times, routing decisions and audit events at
chosen instants. Written through the stores, so the hash chain is the real one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, insert

from binding_store.audit import AuditLog
from binding_store.call_log import CallLogStore
from binding_store.db import Database
from binding_store.models import CallAttempt
from routing.cdr import CdrEvent, billable
from tests.fixtures.ami.scenario import MERCHANT_A, SHOP, UID_SIP, cdr_events


def calls_at(starts: Sequence[datetime], tag: str) -> list[CdrEvent]:
    """One answered one-minute call per start time, uniqueids ``{tag}-0``, ``{tag}-1``..."""
    template = next(c for c in billable(cdr_events()) if c.uniqueid == UID_SIP)
    return [replace(template, uniqueid=f"{tag}-{n}", linkedid=f"{tag}-{n}", start=start,
                    answer=start + timedelta(seconds=2), end=start + timedelta(seconds=60))
            for n, start in enumerate(starts)]


def every(first: datetime, step: timedelta, count: int) -> list[datetime]:
    return [first + n * step for n in range(count)]


async def write_calls(db: Database, starts: Sequence[datetime], tag: str) -> int:
    return await CallLogStore(db).write_batch(calls_at(starts, tag))


async def write_attempts_and_audit(db: Database, instants: Sequence[datetime]) -> None:
    # Core, naming its columns: the rows are also written into schemas older than the models
    # (the partitioning migration's test), which lack later columns.
    async with db.session() as s:
        await s.execute(insert(cast(Table, CallAttempt.__table__)), [
            {"system_name": "pnlab", "uniqueid": f"att-{n}", "linkedid": f"att-{n}", "at": at,
             "action": "bridge", "reason": "bridged", "direction": "merchant",
             "binding_id": "B-9003", "shop_id": SHOP, "order_id": "O-3",
             "caller_masked": "138****0001", "caller_a": MERCHANT_A, "virtual_x": "9003"}
            for n, at in enumerate(instants)])
        await s.commit()
    audit = AuditLog(db)
    for n, at in enumerate(instants):
        await audit.append(now=at, actor="test", kind="caller.status", shop_id=SHOP,
                           subject=f"event-{n}", detail={"n": n})

from __future__ import annotations

import json

from sqlalchemy import select

from binding_store import audit
from binding_store.audit import AuditLog, encode_detail
from binding_store.db import Database
from binding_store.models import AuditEvent
from tests.binding_store.shop_helpers import NOW

BUYER = "+8613912345678"


def test_buyer_values_are_masked_wherever_they_sit() -> None:
    detail = json.loads(encode_detail({
        "buyer": BUYER,
        "buyer_b": "13912345678",
        "old": {"buyer_number": "0086 139 1234 5678"},
        "buyers": [BUYER, "139****5678"],
        "caller_a": "+8613800138000",  # staff numbers are not masked
        "buyer_id": "u-17",  # an id, not a number
        "at": NOW,
    }))
    assert detail == {
        "buyer": "139****5678",
        "buyer_b": "139****5678",
        "old": {"buyer_number": "139****5678"},
        "buyers": ["139****5678", "139****5678"],
        "caller_a": "+8613800138000",
        "buyer_id": "u-17",
        "at": NOW.isoformat(),
    }
    assert "12345678" not in encode_detail({"buyer": BUYER})


async def test_record_lands_with_the_callers_commit_only(database: Database) -> None:
    async with database.session() as s:
        audit.record(s, now=NOW, actor="a", kind="x.rolled_back", shop_id="s1")
        await s.rollback()
    async with database.session() as s:
        audit.record(s, now=NOW, actor="a", kind="x.kept", shop_id="s1", subject="o1",
                     detail={"buyer": BUYER})
        await s.commit()
    async with database.session() as s:
        rows = (await s.scalars(select(AuditEvent))).all()
    assert [(r.kind, r.subject, r.at) for r in rows] == [("x.kept", "o1", NOW)]
    assert BUYER not in rows[0].detail and "12345678" not in rows[0].detail


async def test_events_newest_first_with_filters(database: Database) -> None:
    log = AuditLog(database)
    for i in range(3):
        await log.append(now=NOW, actor="ops", kind=f"k{i % 2}", shop_id=f"s{i}",
                         detail={"i": i})
    assert [e.detail["i"] for e in await log.events()] == [2, 1, 0]
    assert [e.detail["i"] for e in await log.events(kind="k0")] == [2, 0]
    assert [e.shop_id for e in await log.events(shop_id="s1")] == ["s1"]
    assert len(await log.events(limit=1)) == 1
    assert (await log.events())[0].at == NOW

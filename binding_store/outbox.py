"""The webhook outbox: events written into the transaction of the change they report.

A store that changes a binding, records a routing decision or appends a call record hands the
events (``routing.events``) to :meth:`Outbox.write` on its own session before it commits: the
events land with the change or not at all, so a crash or restart loses none and invents none.
Delivery is the worker's business (``binding_store.webhook_queue``), never the writer's: the
insert is the only cost on the call path and the API.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession

from binding_store.json_text import dumps
from binding_store.recordset_insert import column_time, recordset_insert
from binding_store.webhook_models import WebhookEvent
from routing.events import Event

_MAX_SHOP = 64
_MAX_STREAM = 200


def event_id() -> str:
    return "evt_" + uuid.uuid4().hex


def encode(data: Any) -> str:
    return dumps(data, default=str)


def fields_of(event: Event) -> dict[str, Any]:
    """The fields of ``event``'s row that the statement writing it cannot make, its payload
    as JSON values rather than encoded (its data must hold JSON values only)."""
    data = event.data
    return {"event_id": event_id(), "type": event.type.value,
            "stream": event.stream[:_MAX_STREAM],
            "payload": data if type(data) is dict else dict(data)}


def _row(event: Event, occurred_at: Any, created_at: Any) -> dict[str, Any]:
    """``event``'s row, the payload not yet encoded, the times as the caller gives them."""
    return {**fields_of(event), "shop_id": (event.shop_id or "")[:_MAX_SHOP],
            "occurred_at": occurred_at, "created_at": created_at, "dispatched_at": None}


def rows(events: Sequence[Event], now: datetime) -> list[dict[str, Any]]:
    out = []
    for e in events:
        row = _row(e, e.occurred_at, now)
        row["payload"] = encode(row["payload"])
        out.append(row)
    return out


def document(events: Sequence[Event], now: datetime) -> dict[str, str]:
    """:func:`rows` as the parameter of the PostgreSQL insert, in one encoding: each
    payload nested as a JSON value (stored as exactly the text :func:`encode` gives it, see
    ``_INSERT_PG``) instead of encoded on its own and then escaped again as a string, and the
    timestamps as text already (no call back into Python per value)."""
    created = column_time(now)
    return {"rows": encode([
        _row(e, None if e.occurred_at is None else column_time(e.occurred_at), created)
        for e in events])}


_EVENTS = cast(Table, WebhookEvent.__table__)
# One JSON document per batch on PostgreSQL (binding_store.recordset_insert): the executemany
# cost the call path's process a statement per event. The payload (a text column) is read
# from the document as ``json``, whose text is its input's, verbatim.
_INSERT_PG = recordset_insert(_EVENTS, tuple(c.name for c in _EVENTS.columns if c.name != "id"),
                              record_types={"payload": "json"})


class Outbox:
    """``enabled`` false (``webhooks.enabled = false``): nothing is written."""

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled

    async def write(self, session: AsyncSession, events: Sequence[Event], now: datetime
                    ) -> None:
        """Add ``events`` to ``session``'s transaction (committed with it, or not at all)."""
        if not self.enabled or not events:
            return
        if session.bind is not None and session.bind.dialect.name == "postgresql":
            await session.execute(_INSERT_PG, document(events, now))
            return
        # Core, not the ORM's bulk insert: half the cost per row (measured).
        await session.execute(insert(_EVENTS), rows(events, now))

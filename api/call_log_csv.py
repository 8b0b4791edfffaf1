"""A shop's call records as the CSV the API hands out (buyers masked, oldest first)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator

from routing.call_log_views import CallLogEntry

EXPORT_COLUMNS = ("started_at", "answered_at", "ended_at", "duration_seconds", "billsec",
                  "direction", "outcome", "reason", "reason_text", "caller_number",
                  "caller_masked", "virtual_number", "buyer_masked", "order_id", "binding_id",
                  "order_link", "chat_link")


async def call_log_csv(entries: AsyncIterator[CallLogEntry]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    async for entry in entries:
        r = entry.record
        writer.writerow([
            r.start_utc.isoformat(), r.answer_utc.isoformat() if r.answer_utc else "",
            r.end_utc.isoformat(), r.duration, r.billsec, r.direction or "", r.outcome,
            r.reason, entry.reason_text, r.caller_a, r.caller_masked, r.virtual_x,
            r.buyer_masked, r.order_id, r.binding_id, entry.order_link, entry.chat_link])
    return out.getvalue()

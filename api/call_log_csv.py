"""A shop's call records as the CSV the API hands out (buyers masked, oldest first), streamed:
the first rows leave before the last are read, and memory does not grow with the file.

Times are UTC with ``Z`` (the machine format of the whole API), or, with ``tz=shop``, the
shop's own time zone with its offset (``2026-11-28T14:00:00+08:00``) for a person's
spreadsheet.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, tzinfo

from routing.call_log_views import CallLogEntry

EXPORT_COLUMNS = ("started_at", "answered_at", "ended_at", "duration_seconds", "billsec",
                  "direction", "outcome", "reason", "reason_text", "caller_number",
                  "caller_masked", "virtual_number", "buyer_masked", "order_id", "binding_id",
                  "order_link", "chat_link", "extension", "mark")
CHUNK_BYTES = 32_768
"""Rows are sent in pieces of about this size."""


def iso(moment: datetime | None, zone: tzinfo = UTC) -> str:
    if moment is None:
        return ""
    text = moment.astimezone(zone).isoformat()
    return text.removesuffix("+00:00") + "Z" if text.endswith("+00:00") else text


def _row(entry: CallLogEntry, zone: tzinfo) -> list[object]:
    r = entry.record
    return [iso(r.start_utc, zone), iso(r.answer_utc, zone), iso(r.end_utc, zone), r.duration,
            r.billsec, r.direction or "", r.outcome, r.reason, entry.reason_text, r.caller_a,
            r.caller_masked, r.virtual_x, r.buyer_masked, r.order_id, r.binding_id,
            entry.order_link, entry.chat_link, r.extension or "", r.mark or ""]


async def call_log_csv(entries: AsyncIterator[CallLogEntry], zone: tzinfo = UTC,
                       first: CallLogEntry | None = None) -> AsyncIterator[bytes]:
    """The CSV in chunks; ``first`` is an entry already taken from ``entries`` (the route
    takes one before it answers, so that a refused request is an error, not a broken
    download)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    if first is not None:
        writer.writerow(_row(first, zone))
    try:
        async for entry in entries:
            writer.writerow(_row(entry, zone))
            if out.tell() >= CHUNK_BYTES:
                yield out.getvalue().encode()
                out.seek(0)
                out.truncate()
    finally:  # a download broken off closes the database cursor at once
        close = getattr(entries, "aclose", None)
        if close is not None:
            await close()
    yield out.getvalue().encode()

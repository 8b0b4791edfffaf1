"""Writing an export of the call log: the file (CSV or JSON lines) and its manifest, shared by
``privnum cdr export`` and the web console's exports."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from routing.call_log_views import ExportRow


def utc_now() -> datetime:
    return datetime.now(UTC)


EXPORT_COLUMNS = (
    "chain_seq", "system_name", "uniqueid", "linkedid", "shop_id", "order_id", "binding_id",
    "buyer_id", "direction", "caller_a", "caller_masked", "virtual_x", "buyer_masked",
    "start_utc", "answer_utc", "end_utc", "duration", "billsec", "disposition",
    "hangup_cause", "outcome", "reason", "reason_text", "source", "row_hash",
    "extension", "mark")
"""Export columns; a column added later goes last, so readers of older files line up."""
EXPORT_FORMATS = ("csv", "jsonl")


def _iso(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else ""


def export_dict(row: ExportRow) -> dict[str, Any]:
    r = row.record
    return {
        "chain_seq": row.chain_seq, "system_name": r.system_name, "uniqueid": r.uniqueid,
        "linkedid": r.linkedid, "shop_id": r.shop_id, "order_id": r.order_id,
        "binding_id": r.binding_id, "buyer_id": r.buyer_id, "direction": r.direction or "",
        "caller_a": r.caller_a, "caller_masked": r.caller_masked, "virtual_x": r.virtual_x,
        "buyer_masked": r.buyer_masked, "start_utc": _iso(r.start_utc),
        "answer_utc": _iso(r.answer_utc), "end_utc": _iso(r.end_utc), "duration": r.duration,
        "billsec": r.billsec, "disposition": r.disposition,
        "hangup_cause": "" if r.hangup_cause is None else r.hangup_cause,
        "outcome": r.outcome, "reason": r.reason, "reason_text": r.reason_text,
        "source": r.source, "row_hash": row.row_hash, "extension": r.extension or "",
        "mark": r.mark or ""}


class ExportWriter:
    """Encodes rows as CSV or JSON lines into a binary file, hashing as it goes."""

    def __init__(self, handle: Any, fmt: str) -> None:
        self.handle = handle
        self.fmt = fmt
        self.sha = hashlib.sha256()
        self.rows = 0
        self._buf = io.StringIO()
        self._csv = csv.writer(self._buf, lineterminator="\n")
        if fmt == "csv":
            self._csv.writerow(EXPORT_COLUMNS)
            self._flush()

    def _flush(self) -> None:
        data = self._buf.getvalue().encode()
        self._buf.seek(0)
        self._buf.truncate()
        self.sha.update(data)
        self.handle.write(data)

    def write(self, values: dict[str, Any]) -> None:
        if self.fmt == "csv":
            self._csv.writerow([values[c] for c in EXPORT_COLUMNS])
        else:
            self._buf.write(json.dumps(values, ensure_ascii=False, separators=(",", ":")))
            self._buf.write("\n")
        self.rows += 1
        if self._buf.tell() > 65_536:
            self._flush()

    def close(self) -> None:
        self._flush()


ProgressHook = Callable[[int], None]
PROGRESS_EVERY = 5_000  # rows between progress updates
PROGRESS_LINE_EVERY = 100_000  # rows between plain progress lines when stderr is no terminal


async def write_export(source: AsyncIterator[ExportRow], out: Path, fmt: str, start: datetime,
                       end: datetime, shop: str | None = None,
                       progress: ProgressHook | None = None) -> dict[str, Any]:
    """Stream ``source`` (the records of ``[start, end)``) to ``out`` (via ``out.part``,
    renamed when complete) and write ``out.manifest.json``; returns the manifest. Memory does
    not grow with the row count: rows come through a server-side cursor and are written in
    64 KiB blocks."""
    tmp = out.with_name(out.name + ".part")
    try:
        with tmp.open("wb") as handle:
            writer = ExportWriter(handle, fmt)
            # aclosing: a write error mid-stream closes the cursor before the database is
            # disposed.
            async with aclosing(source) as rows:  # type: ignore[type-var]
                async for row in rows:
                    writer.write(export_dict(row))
                    if progress is not None and writer.rows % PROGRESS_EVERY == 0:
                        progress(writer.rows)
            writer.close()
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    if progress is not None and writer.rows % PROGRESS_EVERY:
        progress(writer.rows)  # the final count, unless just reported
    manifest = {
        "file": out.name, "format": fmt, "rows": writer.rows,
        "sha256": writer.sha.hexdigest(), "from_utc": _iso(start), "to_utc": _iso(end),
        "shop_id": shop, "time_zone": "UTC", "numbers": "buyer numbers masked",
        "columns": list(EXPORT_COLUMNS), "generated_at_utc": _iso(utc_now())}
    manifest_path(out).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def manifest_path(out: Path) -> Path:
    return out.with_name(out.name + ".manifest.json")

"""Reconcile: import from Asterisk's safety-net CDR file what the AMI listener missed.

Idempotent (the sink skips records already stored), bounded in memory (``batch`` rows at a
time, read in a worker thread) and in work (rows older than ``lookback`` are skipped).
Afterwards, call attempts whose CDR is still missing after ``orphan_grace_seconds`` are closed
as records of their own (see ``routing.call_log_views``).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import TextIO

from agi.ami_cdr import iter_csv_cdrs
from routing.cdr import CdrEvent
from routing.cdr_ports import CdrSink
from routing.number_classes import DEFAULT_NUMBER_CLASSES, NumberClasses


@dataclass
class ReconcileResult:
    read: int = 0
    stored: int = 0
    orphans_closed: int = 0
    errors: list[str] = field(default_factory=list)
    missing_file: bool = False


def _take(rows: Iterator[CdrEvent], pending: list[CdrEvent], size: int) -> list[CdrEvent]:
    """Up to ``size`` rows, extended so forks of one channel stay in one batch."""
    batch = pending[:]
    pending.clear()
    batch.extend(itertools.islice(rows, size - len(batch)))
    for row in rows:
        if batch and row.key == batch[-1].key:
            batch.append(row)
            continue
        pending.append(row)
        break
    return batch


def _open(path: Path) -> TextIO | None:
    try:
        return path.open(encoding="utf-8", errors="replace", newline="")
    except FileNotFoundError:
        return None


async def reconcile_file(path: Path, sink: CdrSink, *, zone: tzinfo, system_name: str,
                         now: datetime, lookback: timedelta = timedelta(days=2),
                         orphan_grace_seconds: float = 7200.0, batch: int = 500,
                         classes: NumberClasses = DEFAULT_NUMBER_CLASSES) -> ReconcileResult:
    result = ReconcileResult()
    stream = await asyncio.to_thread(_open, path)
    if stream is not None:
        since = now - lookback
        with stream:
            rows = (e for e in iter_csv_cdrs(stream, zone, system_name, result.errors, classes)
                    if e.end >= since)
            pending: list[CdrEvent] = []
            while True:
                chunk = await asyncio.to_thread(_take, rows, pending, batch)
                if not chunk:
                    break
                result.read += len(chunk)
                result.stored += await sink.write_batch(chunk, "csv")
    else:
        result.missing_file = True
    result.orphans_closed = await sink.close_orphans(now, orphan_grace_seconds)
    return result

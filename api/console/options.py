"""What the console is built with (``scripts/front_doors.py`` makes one from the settings)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from routing.call_log_views import ExportRow


class ExportWriter(Protocol):
    """Streams ``source`` into ``out`` (and ``out``.manifest.json), calling ``progress`` with
    the rows written so far; returns the manifest (``scripts.cdr_export.write_export``)."""

    def __call__(self, source: AsyncIterator[ExportRow], out: Path, fmt: str, start: datetime,
                 end: datetime, shop: str | None = None,
                 progress: Callable[[int], None] | None = None,
                 ) -> Awaitable[dict[str, Any]]: ...


@dataclass(frozen=True)
class ConsoleOptions:
    session_key: bytes  # a Fernet key: the session cookie is encrypted and authenticated
    session_seconds: int
    export_dir: Path
    export_writer: ExportWriter
    platform_timezone: str = "UTC"  # the operations pages' days
    chart_days: int = 14
    page_size: int = 50

"""The virtual-number pool: CSV import (streaming, batched, per-row report), listing with
counts, state changes, and the "is this a privacy number?" check used to refuse a privacy
number as a shipping phone.

Import semantics: numbers are committed batch by batch, so an interrupted import keeps what it
wrote; running the same file again reports those rows as duplicates and adds the rest.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, distinct, func, select
from sqlalchemy.dialects import sqlite

from binding_store import audit
from binding_store.db import Database
from binding_store.models import Binding, PoolNumber
from binding_store.recordset_insert import as_document, recordset_insert
from binding_store.redis_index import RedisIndex
from routing.audit import AuditKind
from routing.errors import InvalidInput, InvalidNumber, NotFound, StoreUnavailable
from routing.model import BindingState, PoolState
from routing.number_classes import DEFAULT_NUMBER_CLASSES, NumberClasses
from routing.numbers import mask
from routing.shop_views import (
    MAX_REGION,
    POOL_IMPORT_BATCH,
    ImportReport,
    ImportRowError,
    PoolCounts,
    PoolNumberView,
)

log = logging.getLogger(__name__)

_POOL = cast(Table, PoolNumber.__table__)
_IMPORTED = ("number", "region", "state", "last_released_at", "created_at")
# PostgreSQL: a batch is one JSON document (binding_store.recordset_insert). The executemany
# made statements of thousands of placeholders, which the driver parsed again for every batch:
# more than the import's parsing of the numbers themselves (100 000 numbers: 17.8 s).
_INSERT_PG = recordset_insert(_POOL, _IMPORTED, on_conflict="ON CONFLICT DO NOTHING",
                              returning=("number",))
_INSERT_SQLITE = sqlite.insert(_POOL).on_conflict_do_nothing().returning(_POOL.c.number)

_ECHO = 40

# progress(rows_read, bytes_read): called after each committed batch and at the end.
Progress = Callable[[int, int], None]


def pool_view(row: PoolNumber) -> PoolNumberView:
    return PoolNumberView(number=row.number, region=row.region, state=PoolState(row.state),
                          last_released_at=row.last_released_at, created_at=row.created_at)


@dataclass
class _Tally:
    rows: int = 0
    bytes: int = 0
    inserted: int = 0


def _cells(line: str, line_no: int) -> list[str]:
    try:
        return [c.strip() for c in next(csv.reader([line], strict=True), [])]
    except csv.Error as exc:
        raise _RowError(ImportRowError(line_no, line.strip()[:_ECHO],
                                       f"malformed CSV ({exc})")) from None


class _RowError(Exception):
    def __init__(self, error: ImportRowError) -> None:
        super().__init__(error.message)
        self.error = error


def _header(line: str, line_no: int) -> tuple[int, int | None]:
    cells = [c.lower() for c in _cells(line, line_no)]
    if "number" not in cells:
        raise InvalidInput(
            f"line {line_no}: expected the header 'number,region', got {line.strip()[:_ECHO]!r}"
        )
    return cells.index("number"), (cells.index("region") if "region" in cells else None)


class PoolRepository:
    """``classes`` decide which numbers an import accepts (see ``routing.number_classes``)."""

    def __init__(self, db: Database, classes: NumberClasses = DEFAULT_NUMBER_CLASSES,
                 index: RedisIndex | None = None) -> None:
        self._db = db
        self._classes = classes
        self._index = index

    async def import_csv(
        self,
        lines: Iterable[str],
        *,
        now: datetime,
        actor: str = "cli",
        batch_size: int = POOL_IMPORT_BATCH,
        progress: Progress | None = None,
        default_region: str = "",
    ) -> ImportReport:
        """Import ``number,region`` rows (header required) from an iterable of text lines."""
        if batch_size < 1:
            raise InvalidInput("batch size must be at least 1")
        tally = _Tally()
        errors: list[ImportRowError] = []
        dups: list[ImportRowError] = []
        seen: dict[str, int] = {}
        pending: dict[str, tuple[int, str]] = {}
        columns: tuple[int, int | None] | None = None
        for line_no, line in enumerate(_lines(lines, tally), start=1):
            if not line.strip():
                continue
            if columns is None:
                columns = _header(line, line_no)
                continue
            tally.rows += 1
            try:
                number, region = _row(line, line_no, columns, default_region, self._classes)
            except _RowError as exc:
                errors.append(exc.error)
                continue
            if number in seen:
                dups.append(ImportRowError(line_no, number, f"repeats line {seen[number]}"))
                continue
            seen[number] = line_no
            pending[number] = (line_no, region)
            if len(pending) >= batch_size:
                await self._flush(pending, dups, tally, now)
                if progress:
                    progress(tally.rows, tally.bytes)
        if columns is None:
            raise InvalidInput("the file is empty: expected the header 'number,region'")
        await self._flush(pending, dups, tally, now)
        if progress:
            progress(tally.rows, tally.bytes)
        report = ImportReport(rows=tally.rows, inserted=tally.inserted, duplicates=tuple(dups),
                              errors=tuple(errors))
        await audit.AuditLog(self._db).append(
            now=now, actor=actor, kind=AuditKind.POOL_IMPORTED,
            detail={"rows": report.rows, "inserted": report.inserted,
                    "duplicates": len(report.duplicates), "errors": len(report.errors)})
        return report

    async def _flush(self, pending: dict[str, tuple[int, str]], dups: list[ImportRowError],
                     tally: _Tally, now: datetime) -> None:
        if not pending:
            return
        async with self._db.session() as session:
            existing = set((await session.scalars(
                select(PoolNumber.number).where(PoolNumber.number.in_(list(pending)))
            )).all())
            for number in sorted(existing, key=lambda n: pending[n][0]):
                dups.append(ImportRowError(pending[number][0], number, "already in the pool"))
            values = [
                {"number": n, "region": region, "state": PoolState.AVAILABLE.value,
                 "last_released_at": None, "created_at": now}
                for n, (_, region) in pending.items() if n not in existing
            ]
            if values:
                if self._db.dialect == "postgresql":
                    inserted = (await session.execute(_INSERT_PG, as_document(values))
                                ).scalars().all()
                else:
                    # executemany: one cached statement, sent in batches by the driver layer.
                    inserted = (await session.execute(_INSERT_SQLITE, values)).scalars().all()
                tally.inserted += len(inserted)
                for number in set(pending) - existing - set(inserted):  # lost a race
                    dups.append(ImportRowError(pending[number][0], number, "already in the pool"))
            await session.commit()
        pending.clear()
        if values:
            await self._publish([str(v["number"]) for v in values])

    async def _publish(self, numbers: list[str]) -> None:
        """After the commit: the new numbers join the index's pool set. Best effort: a number
        missing there has no binding yet, so its calls are refused either way (as "not
        authorized" rather than "not a privacy number") until the next rebuild."""
        if self._index is None:
            return
        try:
            await self._index.add_pool(numbers)
        except StoreUnavailable as exc:
            log.warning("%d pool number(s) not added to the Redis index (%s); rebuild it with "
                        "'privnum index rebuild'", len(numbers), exc)

    async def list_numbers(
        self,
        *,
        state: PoolState | None = None,
        region: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[PoolNumberView]:
        query = select(PoolNumber).order_by(PoolNumber.number).limit(limit).offset(offset)
        if state is not None:
            query = query.where(PoolNumber.state == state.value)
        if region is not None:
            query = query.where(PoolNumber.region == region)
        async with self._db.session() as session:
            return [pool_view(r) for r in (await session.scalars(query)).all()]

    async def counts(self, *, region: str | None = None) -> PoolCounts:
        query = select(PoolNumber.region, PoolNumber.state, func.count()).group_by(
            PoolNumber.region, PoolNumber.state)
        if region is not None:
            query = query.where(PoolNumber.region == region)
        async with self._db.session() as session:
            rows = (await session.execute(query)).all()
        return PoolCounts(cells={(r, PoolState(s)): int(n) for r, s, n in rows})

    async def set_state(self, number: str, state: PoolState, *, actor: str, now: datetime
                        ) -> PoolNumberView:
        """Quarantine, retire or bring back a number. Existing bindings on it run to expiry;
        only new allocations take the state into account."""
        e164 = self._classes.dialled(number)
        if e164 is None:
            raise InvalidNumber(f"not a phone number: {mask(number)!r}")
        async with self._db.session() as session:
            row = await session.get(PoolNumber, e164)
            if row is None:
                raise NotFound(f"{e164} is not in the virtual-number pool")
            if row.state != state.value:
                audit.record(session, now=now, actor=actor, kind=AuditKind.POOL_STATE, subject=e164,
                             detail={"from": row.state, "to": state.value})
                row.state = state.value
                await session.commit()
            return pool_view(row)

    async def utilisation(self, now: datetime) -> tuple[int, int]:
        """(numbers in an active, unexpired binding, numbers available in the pool)."""
        in_service = select(func.count()).select_from(PoolNumber).where(
            PoolNumber.state == PoolState.AVAILABLE.value)
        in_use = select(func.count(distinct(Binding.virtual_x))).where(
            Binding.state == BindingState.ACTIVE.value, Binding.expires_at > now)
        async with self._db.session() as session:
            total = int(await session.scalar(in_service) or 0)
            used = int(await session.scalar(in_use) or 0)
        return used, total

    async def is_virtual_number(self, number: str) -> bool:
        """True if ``number`` is (or was: retired numbers count too) one of our privacy numbers,
        e.g. to refuse it as a shipping phone. Unparseable input is not a virtual number."""
        e164 = self._classes.dialled(number)
        if e164 is None:
            return False
        async with self._db.session() as session:
            found = await session.scalar(select(PoolNumber.number).where(PoolNumber.number == e164))
        return found is not None


def _lines(lines: Iterable[str], tally: _Tally) -> Iterator[str]:
    for line in lines:
        tally.bytes += len(line.encode("utf-8", errors="replace"))
        yield line


def _row(line: str, line_no: int, columns: tuple[int, int | None], default_region: str,
         classes: NumberClasses) -> tuple[str, str]:
    cells = _cells(line, line_no)
    num_col, region_col = columns
    raw = cells[num_col] if num_col < len(cells) else ""
    if not raw:
        raise _RowError(ImportRowError(line_no, line.strip()[:_ECHO], "missing number"))
    try:
        number = classes.pool_number(raw).e164
    except InvalidNumber as exc:
        raise _RowError(ImportRowError(line_no, raw[:_ECHO], str(exc))) from None
    region = cells[region_col] if region_col is not None and region_col < len(cells) else ""
    region = region or default_region
    if len(region) > MAX_REGION or any(ord(ch) < 32 for ch in region):
        raise _RowError(ImportRowError(line_no, region[:_ECHO],
                                       f"region longer than {MAX_REGION} characters"))
    return number, region

"""Shops' call rules in SQL: read and changed (audited) per shop, and read on the call path
through a short per-process cache (``CallRulesSource``), so a call costs no extra round trip
for a shop looked up a moment ago. A change reaches the call path within ``cache_seconds``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import select

from binding_store import audit
from binding_store.call_rules_models import CallerReport, ShopCallRulesRow
from binding_store.db import Database, guard
from binding_store.models import Shop
from binding_store.shops import load_shop
from routing.audit import AuditKind
from routing.call_caps import format_caps, parse_caps
from routing.call_rules import (
    CallDirection,
    CallerReporting,
    CallRules,
    CallWindow,
    ShopCallRules,
)
from routing.errors import StoreUnavailable

log = logging.getLogger(__name__)
# A cached shop's rules are read again in the background once this share of their life has
# passed, so a busy shop's calls never wait for SQL; the refresh waits this long to read
# every shop that fell due meanwhile in one statement.
_REFRESH_AFTER = 0.5
_REFRESH_LINGER = 0.05


def _window(value: str | None) -> tuple[CallWindow | None, bool]:
    """(window, cleared) from a column: NULL = default, "" = no window for this shop."""
    if value is None:
        return None, False
    if value == "":
        return None, True
    return CallWindow.parse(value), False


def shop_rules_of(row: ShopCallRulesRow | None) -> ShopCallRules:
    if row is None:
        return ShopCallRules()
    merchant, no_merchant = _window(row.merchant_window)
    callback, no_callback = _window(row.callback_window)
    return ShopCallRules(
        direction=CallDirection(row.direction) if row.direction else None,
        grace_seconds=row.grace_seconds, fallback_number=row.fallback_number,
        merchant_window=merchant, callback_window=callback,
        clear_merchant_window=no_merchant, clear_callback_window=no_callback,
        require_caller_report=row.require_caller_report,
        caps=parse_caps(row.caps) if row.caps is not None else None,
        warning_seconds=row.warning_seconds, record=row.record,
        record_retention_days=row.record_retention_days)


def _column(window: CallWindow | None, cleared: bool) -> str | None:
    return "" if cleared else (str(window) if window is not None else None)


class SqlCallRules:
    """Implements ``routing.call_rules.CallRulesPort`` (the settings) and
    ``routing.call_rules.CallRulesSource`` (the call path)."""

    def __init__(self, database: Database, defaults: CallRules, *, cache_seconds: float = 5.0
                 ) -> None:
        self._db = database
        self._defaults = defaults
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, CallRules]] = {}
        self._due: set[str] = set()  # shops whose rules the background refresh reads next
        self._refresh: asyncio.Task[None] | None = None
        # Cold reads on the call path: a shop being read, and the shops the next read takes.
        self._reading: dict[str, asyncio.Future[CallRules]] = {}
        self._next_read: list[tuple[str, asyncio.Future[CallRules]]] = []
        self._reads: set[asyncio.Task[None]] = set()
        self._reports: dict[tuple[str, str], tuple[float, bool]] = {}  # -> (until, reported)

    @property
    def defaults(self) -> CallRules:
        return self._defaults

    async def get(self, shop_id: str) -> ShopCallRules:
        async with self._db.session() as session:
            await load_shop(session, shop_id)
            return shop_rules_of(await session.get(ShopCallRulesRow, shop_id))

    async def set(self, shop_id: str, rules: ShopCallRules, *, actor: str, now: datetime
                  ) -> ShopCallRules:
        """Replace the shop's own rules (``ShopCallRules()`` = the platform defaults)."""
        async with self._db.session() as session:
            await load_shop(session, shop_id)
            row = await session.get(ShopCallRulesRow, shop_id)
            before = shop_rules_of(row)
            if before == rules:
                return before
            if row is None:
                row = ShopCallRulesRow(shop_id=shop_id)
                session.add(row)
            row.direction = rules.direction.value if rules.direction else None
            row.grace_seconds = rules.grace_seconds
            row.fallback_number = rules.fallback_number
            row.merchant_window = _column(rules.merchant_window, rules.clear_merchant_window)
            row.callback_window = _column(rules.callback_window, rules.clear_callback_window)
            row.require_caller_report = rules.require_caller_report
            row.caps = format_caps(rules.caps) if rules.caps is not None else None
            row.warning_seconds = rules.warning_seconds
            row.record = rules.record
            row.record_retention_days = rules.record_retention_days
            row.updated_at = now
            audit.record(session, now=now, actor=actor, kind=AuditKind.SHOP_CALL_RULES,
                         shop_id=shop_id, subject=shop_id,
                         detail={"from": _describe(before), "to": _describe(rules)})
            await session.commit()
        self._cache.pop(shop_id, None)
        self._reading.pop(shop_id, None)  # a read begun before the change: later calls read anew
        return rules

    async def set_reporting(self, shop_id: str, number: str, status: CallerReporting, *,
                            actor: str, now: datetime) -> None:
        async with self._db.session() as session:
            await load_shop(session, shop_id)
            row = await session.get(CallerReport, (shop_id, number))
            before = row.status if row is not None else CallerReporting.UNREPORTED.value
            if row is None:
                row = CallerReport(shop_id=shop_id, number=number)
                session.add(row)
            elif row.status == status.value:
                return
            row.status = status.value
            row.updated_at = now
            audit.record(session, now=now, actor=actor, kind=AuditKind.CALLER_REPORTING,
                         shop_id=shop_id, subject=number,
                         detail={"from": before, "to": status.value})
            await session.commit()
        self._reports.pop((shop_id, number), None)

    async def unreported(self, shop_id: str, numbers: frozenset[str]) -> frozenset[str]:
        now = time.monotonic()
        known: dict[str, bool] = {}
        for number in numbers:
            cached = self._reports.get((shop_id, number))
            if cached is not None and now < cached[0]:
                known[number] = cached[1]
        missing = numbers - known.keys()
        if missing:
            found = await self._reported(shop_id, missing)
            if len(self._reports) > 100_000:
                self._reports.clear()
            until = now + self._cache_seconds
            for number in missing:
                known[number] = number in found
                self._reports[(shop_id, number)] = (until, known[number])
        return frozenset(n for n, reported in known.items() if not reported)

    async def unreported_now(self, shop_id: str, numbers: frozenset[str]) -> frozenset[str]:
        """As :meth:`unreported`, read now (no cache): for the API, not the call path."""
        return numbers - await self._reported(shop_id, numbers)

    async def _reported(self, shop_id: str, numbers: frozenset[str]) -> frozenset[str]:
        query = select(CallerReport.number).where(
            CallerReport.shop_id == shop_id, CallerReport.number.in_(numbers),
            CallerReport.status == CallerReporting.REPORTED.value)
        async with guard(self._db.timeout * 5), self._db.session() as session:
            return frozenset((await session.scalars(query)).all())

    async def rules_for(self, shop_ids: frozenset[str]) -> Mapping[str, CallRules]:
        now = time.monotonic()
        found: dict[str, CallRules] = {}
        missing = []
        due = []
        for shop_id in shop_ids:
            cached = self._cache.get(shop_id)
            if cached is not None and now < cached[0]:
                found[shop_id] = cached[1]
                if now >= cached[0] - self._cache_seconds * (1 - _REFRESH_AFTER):
                    due.append(shop_id)
            else:
                missing.append(shop_id)
        if due:
            self._refresh_ahead(due)
        # Rules past their time are never used: a call waits for SQL and fails closed
        # when it cannot be read, as without the refresh.
        if missing:
            loaded = await self._read_shared(missing)
            until = now + self._cache_seconds
            if len(self._cache) > 10_000:
                self._cache.clear()  # bounded: a cold cache only costs a read
            for shop_id, rules in loaded.items():
                self._cache[shop_id] = (until, rules)
                found[shop_id] = rules
        return found

    async def _read_shared(self, shop_ids: list[str]) -> dict[str, CallRules]:
        """The shops' rules read now, with the calls of the same moment: a shop being read
        already is waited for, and the shops that calls miss in one event-loop iteration are
        read in one statement (after a restart under load, each busy shop was read once per
        call in flight). A failed read fails every call waiting on it; each refuses its call.
        The wait is bounded by the call's own deadline, the read by ``_rows``'s guard."""
        loop = asyncio.get_running_loop()
        waiting: dict[str, asyncio.Future[CallRules]] = {}
        for shop_id in shop_ids:
            future = self._reading.get(shop_id)
            if future is None:
                future = loop.create_future()
                future.add_done_callback(_seen)
                self._reading[shop_id] = future
                if not self._next_read:
                    loop.call_soon(self._start_read)
                self._next_read.append((shop_id, future))
            waiting[shop_id] = future
        # shielded: a call cut off by its deadline leaves the read to the others
        return {shop_id: await asyncio.shield(future) for shop_id, future in waiting.items()}

    def _start_read(self) -> None:
        reads, self._next_read = self._next_read, []
        task = asyncio.get_running_loop().create_task(self._read(reads),
                                                      name="call-rules-read")
        self._reads.add(task)
        task.add_done_callback(self._reads.discard)

    async def _read(self, futures: list[tuple[str, asyncio.Future[CallRules]]]) -> None:
        # A shop may come twice (a set() between two calls' misses): each future is answered.
        try:
            loaded = await self._rows(sorted({shop_id for shop_id, _ in futures}))
        except Exception as exc:  # the waiting calls refuse theirs; nothing else to report
            for _, future in futures:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:  # cancelled (close): no call waits for ever
            for _, future in futures:
                if not future.done():
                    future.set_exception(StoreUnavailable("call rules: read cancelled"))
            raise
        finally:
            for shop_id, future in futures:
                if self._reading.get(shop_id) is future:
                    del self._reading[shop_id]
        for shop_id, future in futures:
            if future.done():
                continue
            if shop_id in loaded:
                future.set_result(loaded[shop_id])
            else:
                future.set_exception(_shop_row_missing())

    def _refresh_ahead(self, shop_ids: list[str]) -> None:
        self._due.update(shop_ids)
        if self._refresh is None or self._refresh.done():
            self._refresh = asyncio.get_running_loop().create_task(
                self._refresh_due(), name="call-rules-refresh")

    async def _refresh_due(self) -> None:
        await asyncio.sleep(_REFRESH_LINGER)
        shop_ids, self._due = sorted(self._due), set()
        began = time.monotonic()  # the rules are as old as the read's start
        try:
            loaded = await self._load(shop_ids)
        except Exception as exc:  # the entries expire as they would have; calls read SQL
            log.warning("call rules: background refresh of %d shop(s) failed: %s",
                        len(shop_ids), exc)
            return
        until = began + self._cache_seconds
        for shop_id, rules in loaded.items():
            cached = self._cache.get(shop_id)
            if cached is not None and cached[0] < until:  # not replaced by set() meanwhile
                self._cache[shop_id] = (until, rules)

    async def close(self) -> None:
        """Stop a background refresh and the call path's reads in flight."""
        for task in list(self._reads):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._refresh is not None and not self._refresh.done():
            self._refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._refresh
        self._refresh = None

    async def _load(self, shop_ids: list[str]) -> dict[str, CallRules]:
        out = await self._rows(shop_ids)
        if len(out) != len(shop_ids):
            raise _shop_row_missing()
        return out

    async def _rows(self, shop_ids: list[str]) -> dict[str, CallRules]:
        """The rules of those of ``shop_ids`` that have a shop row."""
        query = (select(Shop.id, Shop.timezone, ShopCallRulesRow)
                 .outerjoin(ShopCallRulesRow, ShopCallRulesRow.shop_id == Shop.id)
                 .where(Shop.id.in_(shop_ids)))
        async with guard(self._db.timeout * 5), self._db.session() as session:
            rows = (await session.execute(query)).all()
        return {row[0]: shop_rules_of(row[2]).apply(self._defaults, row[1]) for row in rows}


def _shop_row_missing() -> StoreUnavailable:
    # a binding's shop row always exists (foreign key); anything else is a fault
    return StoreUnavailable("call rules: shop row missing")


def _seen(future: asyncio.Future[CallRules]) -> None:
    """Mark a read's failure as seen: every call waiting on it may have given up already."""
    if not future.cancelled():
        future.exception()


def _describe(rules: ShopCallRules) -> dict[str, object]:
    return {
        "direction": rules.direction.value if rules.direction else None,
        "grace_seconds": rules.grace_seconds,
        "fallback_number": rules.fallback_number,
        "merchant_window": _column(rules.merchant_window, rules.clear_merchant_window),
        "callback_window": _column(rules.callback_window, rules.clear_callback_window),
        "require_caller_report": rules.require_caller_report,
        "caps": format_caps(rules.caps) if rules.caps is not None else None,
        "warning_seconds": rules.warning_seconds,
        "record": rules.record,
        "record_retention_days": rules.record_retention_days,
    }


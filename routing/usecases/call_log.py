"""The call log as shops and auditors read it: a shop's page (newest first, cursor-paged, at
most 30 days back), a shop's records for download, and the auditor's full export."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime

from routing.api_ports import CallLogReader, Principal, ShopPort
from routing.call_log_views import (
    CallLogEntry,
    CallLogPage,
    CallLogQuery,
    ExportRow,
    LinkTemplates,
    resolve_window,
)
from routing.errors import CallLogUnavailable
from routing.recording import RecordingReader
from routing.shop_views import check_id
from routing.usecases.access import audit_shop, read_calls


class CallLog:
    def __init__(self, *, reader: CallLogReader | None, links: LinkTemplates,
                 shops: ShopPort, recordings: RecordingReader | None = None) -> None:
        self._reader = reader
        self._recordings = recordings
        self._links = links
        self._shops = shops

    async def _readable(self, who: Principal, shop_id: str) -> str:
        """The shop, if ``who`` may read its calls (403) and it exists (404)."""
        shop_id = check_id("shop", shop_id)
        read_calls(who, shop_id)
        await self._shops.get(shop_id)
        return shop_id

    def _store(self) -> CallLogReader:
        if self._reader is None:
            raise CallLogUnavailable("the call log is not configured on this server")
        return self._reader

    async def page(self, who: Principal, query: CallLogQuery, now: datetime) -> CallLogPage:
        await self._readable(who, query.shop_id)
        page = await self._store().page(query, now, self._links)
        if self._recordings is None or not page.entries:
            return page
        found = await self._recordings.by_calls(frozenset(
            (e.record.system_name, e.record.uniqueid) for e in page.entries))
        if not found:
            return page
        return replace(page, entries=tuple(
            replace(e, recording_id=found.get((e.record.system_name, e.record.uniqueid), ""))
            for e in page.entries))

    async def entries(self, who: Principal, shop_id: str, *, since: datetime | None,
                      until: datetime | None, now: datetime) -> AsyncIterator[CallLogEntry]:
        """The shop's records in the window (same 30-day rule as the page), oldest first,
        buyers masked."""
        shop_id = await self._readable(who, shop_id)
        window = resolve_window(now, since, until)
        async for row in self._store().export(window.since, window.until, shop_id):
            yield self._links.entry(row.id, row.record)

    def audit_export(self, who: Principal, start: datetime, end: datetime,
                     shop_id: str | None = None) -> AsyncIterator[ExportRow]:
        """Every record of ``[start, end)`` (of ``shop_id``, or every shop's for the platform),
        with chain position and hash, masked numbers only: refused before anything is read
        unless ``who`` audits that shop."""
        audit_shop(who, check_id("shop", shop_id) if shop_id else None)
        return self._store().export(start, end, shop_id)

"""What the web console reads beyond the call log's page: one call's record, calls per day,
the pool's use and the call log's chain check. Who may read what is ``access``'s rule."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, tzinfo

from routing.api_ports import Principal
from routing.call_log_views import MAX_LOOKBACK, CallLogEntry, LinkTemplates
from routing.console_views import ChainCheck, ConsoleReader, DayCalls, PoolUse
from routing.errors import CallLogQueryError, CallLogUnavailable, NotFound
from routing.shop_views import check_id
from routing.usecases.access import audit_shop, covers, read_call_log, see_operations

FINDINGS_SHOWN = 20


class Console:
    def __init__(self, *, reader: ConsoleReader | None, links: LinkTemplates,
                 cooldown: timedelta) -> None:
        self._reader = reader
        self._links = links
        self._cooldown = cooldown

    def _store(self) -> ConsoleReader:
        if self._reader is None:
            raise CallLogUnavailable("the call log is not configured on this server")
        return self._reader

    async def call(self, who: Principal, shop_id: str, row_id: int, now: datetime
                   ) -> CallLogEntry:
        """One of ``shop_id``'s calls (another shop's is "not found"); like the call log's
        page, at most 30 days back."""
        shop_id = check_id("shop", shop_id)
        read_call_log(who, shop_id)
        found = await self._store().call(row_id)
        if found is None or found.record.start_utc < now - MAX_LOOKBACK:
            raise NotFound("call not found")
        if found.record.shop_id != shop_id or not covers(who, found.record.shop_id):
            raise NotFound("call not found")
        return self._links.entry(found.id, found.record)

    async def calls_per_day(self, who: Principal, *, days: int, zone: tzinfo, now: datetime
                            ) -> list[DayCalls]:
        """Every shop's calls of the last ``days`` days (today included), per day in
        ``zone``."""
        see_operations(who)
        if not 1 <= days <= MAX_LOOKBACK.days:
            raise CallLogQueryError(f"days must be between 1 and {MAX_LOOKBACK.days}")
        local = now.astimezone(zone)
        first = (local - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0,
                                                           microsecond=0)
        return await self._store().calls_per_day(first, now, zone)

    async def pool_use(self, who: Principal, now: datetime) -> list[PoolUse]:
        see_operations(who)
        return await self._store().pool_use(now, self._cooldown)

    async def verify_chain(self, who: Principal, shop_id: str | None) -> ChainCheck:
        """The call log's chain check, for an export of ``shop_id`` (``None``: every shop's,
        the platform only)."""
        audit_shop(who, shop_id)
        check = await self._store().verify_chain()
        # A deletion's rows are gone with their shop: it may be any shop's, so every auditor
        # is told; a finding in a shop the reader does not audit is only counted.
        seen = [f for f in check.findings if f.shop_id is None or covers(who, f.shop_id)]
        return replace(check, findings=tuple(seen[:FINDINGS_SHOWN]),
                       elsewhere=len(check.findings) - len(seen),
                       more=max(len(seen) - FINDINGS_SHOWN, 0))

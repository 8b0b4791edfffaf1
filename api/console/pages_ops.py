"""The platform's operations page: calls per day, the pool's use, webhook backlog and
failures, component health."""

from __future__ import annotations

import asyncio
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request, Response
from markupsafe import Markup

from api.console.charts import calls_chart, day_series, pool_chart, series_name, slots_chart
from api.console.web import PREFIX, ConsoleRoute, render, services_of, signed_in, state_of
from routing.console_views import pool_by
from routing.errors import PrivnumError
from routing.health_ports import HealthProbe, HealthStatus
from routing.usecases import access
from routing.webhooks import DeliveryState

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)
PROBE_TIMEOUT = 2.0
FAILED_SHOWN = 10


async def _probe(probe: HealthProbe) -> HealthStatus:
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            return await probe.check()
    except TimeoutError:
        return HealthStatus(name=probe.name, ok=False, detail="no answer in time")
    except PrivnumError as exc:
        return HealthStatus(name=probe.name, ok=False, detail=str(exc))


@router.get("/operations")
async def operations(request: Request) -> Response:
    who = await signed_in(request)
    access.see_operations(who)  # before any probe runs
    svc, options = services_of(request), state_of(request).options
    cases, now = svc.use_cases, svc.clock()
    zone = ZoneInfo(options.platform_timezone)
    days = await cases.console.calls_per_day(who, days=options.chart_days, zone=zone, now=now)
    pool = await cases.console.pool_use(who, now)
    backlog = await cases.webhooks.backlog(now)
    failed = await cases.webhooks.deliveries(who, state=DeliveryState.DEAD,
                                             limit=FAILED_SHOWN)
    health = await asyncio.gather(*(_probe(p) for p in svc.health))
    series = day_series(days)
    regions, modes = pool_by(pool, lambda p: p.region), pool_by(pool, lambda p: p.mode)
    return render(request, "operations.html", who, zone=str(zone),
                  calls_svg=Markup(calls_chart(days)),
                  pool_svg=Markup(pool_chart(regions, "region")),
                  mode_svg=Markup(pool_chart(modes, "mode")),
                  slots_svg=Markup(slots_chart(regions)) if any(p.slots for p in pool) else "",
                  days=days, series=[(s, series_name(s)) for s in series], regions=regions,
                  modes=modes, backlog=backlog, failed=failed, health=health)

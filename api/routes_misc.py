"""Shipping-phone check, call records (+ CSV export), health and Prometheus metrics."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse, Response, StreamingResponse

from api.auth import Caller, Cases, Services
from api.binding_schemas import VirtualCheck
from api.call_log_csv import call_log_csv
from api.call_log_schemas import CSV_EXAMPLE, CallRecordOut, CallsPage
from api.metrics import CONTENT_TYPE
from api.operations_schemas import METRICS_EXAMPLE, Health, HealthCheck, Live
from api.problems import responses
from api.schemas import ID_PATTERN
from routing.call_log_views import CallLogQuery
from routing.errors import PrivnumError
from routing.health_ports import HealthProbe, HealthStatus
from routing.usecases.access import Scope

router = APIRouter()
_PROBE_TIMEOUT = 2.0


@router.get("/v1/numbers/{number}/virtual", response_model=VirtualCheck, tags=["numbers"],
            responses=responses(503),
            summary="Shipping-phone check: is this number a privacy (virtual) number?")
async def check_virtual_number(
        number: Annotated[str, Path(min_length=1, max_length=32, examples=["+8617000000001"])],
        cases: Cases, who: Caller) -> VirtualCheck:
    e164, virtual = await cases.pool.is_virtual(number)
    return VirtualCheck(number=e164, virtual=virtual)


ShopId = Annotated[str, Path(min_length=1, max_length=64, pattern=ID_PATTERN, examples=["shop-1"])]
Since = Annotated[datetime | None, Query(description="Start (default: until - 1 day); at most "
                                                     "30 days back; with a time zone.")]
Until = Annotated[datetime | None, Query(description="End (default: now); with a time zone.")]


@router.get("/v1/shops/{shop_id}/calls", response_model=CallsPage, tags=["call records"],
            responses=responses(403, 404, 503),
            summary="The shop's privacy-number call records (default last day, max 30 days)")
async def list_calls(shop_id: ShopId, svc: Services, cases: Cases, who: Caller,
                since: Since = None, until: Until = None,
                limit: Annotated[int, Query(ge=1, le=500)] = 100,
                cursor: Annotated[str | None, Query(max_length=200)] = None) -> CallsPage:
    query = CallLogQuery(shop_id=shop_id, since=since, until=until, limit=limit, cursor=cursor)
    page = await cases.call_log.page(who, query, svc.clock())
    return CallsPage(since=page.window.since, until=page.window.until,
                     calls=[CallRecordOut.of(e) for e in page.entries],
                     next_cursor=page.next_cursor)


@router.get("/v1/shops/{shop_id}/calls/export", tags=["call records"],
            responses={**responses(403, 404, 422, 503),
                       200: {"description": "CSV, buyer numbers masked, streamed",
                             "content": {"text/csv": {"schema": {"type": "string"},
                                                      "example": CSV_EXAMPLE}}}},
            response_class=Response,
            summary="Download the shop's call records as CSV")
async def export_calls(
    shop_id: ShopId, svc: Services, cases: Cases, who: Caller, since: Since = None,
    until: Until = None,
    tz: Annotated[Literal["utc", "shop"], Query(
        description="utc: times in UTC with Z (default); shop: in the shop's time zone, "
                    "with its offset.")] = "utc",
) -> Response:
    shop = await cases.shops.get(who, shop_id, Scope.CALLS_READ)  # 403/404 before a byte
    zone = ZoneInfo(cases.shops.timezone_of(shop)) if tz == "shop" else UTC
    entries = cases.call_log.entries(who, shop_id, since=since, until=until, now=svc.clock())
    # The first entry now: a refused window is a problem response, not a cut-off download.
    first = await anext(entries, None)
    name = f"privnum-calls-{shop_id}.csv"
    return StreamingResponse(
        call_log_csv(entries, zone, first), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'})


async def _probe(probe: HealthProbe) -> HealthStatus:
    try:
        async with asyncio.timeout(_PROBE_TIMEOUT):
            return await probe.check()
    except TimeoutError:
        return HealthStatus(name=probe.name, ok=False, detail="no answer in time")
    except PrivnumError as exc:
        return HealthStatus(name=probe.name, ok=False, detail=str(exc))


@router.get("/livez", response_model=Live, tags=["operations"],
            summary="Liveness: the process answers (no checks)")
async def livez() -> Live:
    return Live()


@router.get("/healthz", response_model=Health, tags=["operations"],
            responses={503: {"description": "A required dependency is down",
                             "model": Health}},
            summary="Liveness and dependencies (database, Redis, AMI, FastAGI)")
async def healthz(svc: Services) -> JSONResponse:
    results = await asyncio.gather(*(_probe(p) for p in svc.health))
    down_required = any(not r.ok and r.required for r in results)
    degraded = any(not r.ok for r in results)
    status: Literal["ok", "degraded", "down"] = (
        "down" if down_required else ("degraded" if degraded else "ok"))
    body = Health(status=status, checks=[
        HealthCheck(name=r.name, ok=r.ok, detail=r.detail, required=r.required)
        for r in results])
    return JSONResponse(body.model_dump(mode="json"), status_code=503 if down_required else 200)


@router.get("/metrics", tags=["operations"], response_class=Response,
            responses={200: {"description": "Prometheus text exposition",
                             "content": {"text/plain": {"schema": {"type": "string"},
                                                        "example": METRICS_EXAMPLE}}}},
            summary="Prometheus metrics")
async def metrics(svc: Services) -> Response:
    try:
        in_use, total = await svc.use_cases.pool.utilisation(None, svc.clock())
        svc.metrics.pool(in_use, total)
        backlog = await svc.use_cases.webhooks.backlog(svc.clock())
        svc.metrics.webhook_backlog_now(backlog.undispatched, backlog.pending,
                                        backlog.oldest_pending_seconds, backlog.dead)
    except PrivnumError:
        pass  # the last known values stay; /healthz tells why
    return Response(svc.metrics.render(), media_type=CONTENT_TYPE)

"""Shipping-phone check, call records (+ CSV export), health and Prometheus metrics."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse, Response

from api.auth import Caller, Services, in_shop
from api.metrics import CONTENT_TYPE
from api.problems import responses
from api.schemas import ID_PATTERN, CallRecordOut, CallsPage, Health, HealthCheck, VirtualCheck
from api.services import ApiServices
from routing.api_ports import CallLogPort, HealthProbe, HealthStatus
from routing.errors import InvalidNumber, PrivnumError
from routing.numbers import mask
from routing.shop_views import check_id

router = APIRouter()
_PROBE_TIMEOUT = 2.0


class CallLogUnavailable(PrivnumError):
    code = "call_log_unavailable"


@router.get("/v1/numbers/{number}/virtual", response_model=VirtualCheck, tags=["numbers"],
            responses=responses(503),
            summary="Shipping-phone check: is this number a privacy (virtual) number?")
async def is_virtual(number: Annotated[str, Path(min_length=1, max_length=32)], svc: Services,
                     who: Caller) -> VirtualCheck:
    # Privacy numbers include segments subscriber numbers never use (China's 700 numbers).
    e164 = svc.number_classes.dialled(number)
    if e164 is None:
        raise InvalidNumber(f"not a phone number: {mask(number)!r}")
    return VirtualCheck(number=e164, virtual=await svc.pool.is_virtual_number(e164))


def _call_log(svc: ApiServices) -> CallLogPort:
    if svc.call_log is None:
        raise CallLogUnavailable("the call log is not configured on this server")
    return svc.call_log


ShopId = Annotated[str, Path(min_length=1, max_length=64, pattern=ID_PATTERN)]
Since = Annotated[datetime | None, Query(description="Start (default: until - 1 day); at most "
                                                     "30 days back; with a time zone.")]
Until = Annotated[datetime | None, Query(description="End (default: now); with a time zone.")]


@router.get("/v1/shops/{shop_id}/calls", response_model=CallsPage, tags=["call records"],
            responses=responses(403, 404, 503),
            summary="The shop's privacy-number call records (default last day, max 30 days)")
async def calls(shop_id: ShopId, svc: Services, who: Caller, since: Since = None,
                until: Until = None,
                limit: Annotated[int, Query(ge=1, le=500)] = 100,
                cursor: Annotated[str | None, Query(max_length=200)] = None) -> CallsPage:
    shop_id = check_id("shop", shop_id)
    in_shop(who, shop_id)
    page = await _call_log(svc).calls(shop_id, now=svc.clock(), since=since, until=until,
                                      limit=limit, cursor=cursor)
    return CallsPage(since=page.window.since, until=page.window.until,
                     calls=[CallRecordOut.of(e) for e in page.entries],
                     next_cursor=page.next_cursor)


@router.get("/v1/shops/{shop_id}/calls/export", tags=["call records"],
            responses={**responses(403, 404, 503),
                       200: {"description": "CSV, buyer numbers masked",
                             "content": {"text/csv": {"schema": {"type": "string"}}}}},
            response_class=Response,
            summary="Download the shop's call records as CSV")
async def export_calls(shop_id: ShopId, svc: Services, who: Caller, since: Since = None,
                       until: Until = None) -> Response:
    shop_id = check_id("shop", shop_id)
    in_shop(who, shop_id)
    text = await _call_log(svc).export_csv(shop_id, now=svc.clock(), since=since, until=until)
    name = f"privnum-calls-{shop_id}.csv"
    return Response(text, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


async def _probe(probe: HealthProbe) -> HealthStatus:
    try:
        async with asyncio.timeout(_PROBE_TIMEOUT):
            return await probe.check()
    except TimeoutError:
        return HealthStatus(name=probe.name, ok=False, detail="no answer in time")
    except PrivnumError as exc:
        return HealthStatus(name=probe.name, ok=False, detail=str(exc))


@router.get("/livez", tags=["operations"], summary="Liveness: the process answers (no checks)")
async def livez() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/healthz", response_model=Health, tags=["operations"],
            responses={503: {"description": "A required dependency is down",
                             "model": Health}},
            summary="Liveness and dependencies (database, Redis, AMI)")
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
                             "content": {"text/plain": {"schema": {"type": "string"}}}}},
            summary="Prometheus metrics")
async def metrics(svc: Services) -> Response:
    try:
        in_use, total = await svc.pool.utilisation(svc.clock())
        svc.metrics.pool(in_use, total)
    except PrivnumError:
        pass  # the last known values stay; /healthz tells why
    return Response(svc.metrics.render(), media_type=CONTENT_TYPE)

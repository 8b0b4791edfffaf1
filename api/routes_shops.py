"""Service enablement and caller numbers (主叫号码) of a shop."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.auth import Caller, Cases, Services
from api.problems import responses
from api.schemas import ID_PATTERN
from api.shop_schemas import (
    AddCallerRequest,
    BatchRequest,
    BatchResult,
    BatchRowOut,
    CallerList,
    CallerOut,
    EnableRequest,
    ServiceStatus,
)
from routing.numbers import normalize, normalize_mobile
from routing.shop_views import BatchRow

router = APIRouter(prefix="/v1/shops/{shop_id}", tags=["shops"])
ShopId = Annotated[str, Path(min_length=1, max_length=64, pattern=ID_PATTERN,
                                       description="The shop id.", examples=["shop-1"])]
NumberPath = Annotated[str, Path(min_length=1, max_length=32, description="A caller number.",
                                  examples=["+8613800000002"])]


@router.get("/service", response_model=ServiceStatus, responses=responses(403, 404),
            summary="Service status of a shop")
async def service_status(shop_id: ShopId, cases: Cases, who: Caller) -> ServiceStatus:
    shop = await cases.shops.get(who, shop_id)
    return ServiceStatus.of(shop, cases.shops.timezone_of(shop))


@router.post("/service/enable", response_model=ServiceStatus,
             responses=responses(403, 404, 409, 503),
             summary="Enable the privacy-number service (idempotent)")
async def enable_service(shop_id: ShopId, body: EnableRequest, svc: Services, cases: Cases,
                 who: Caller) -> ServiceStatus:
    result = await cases.shops.enable(who, shop_id, now=svc.clock(),
                                      main_account_id=body.main_account_id,
                                      main_phone=body.main_phone,
                                      agreement_version=body.agreement_version,
                                      timezone=body.timezone)
    return ServiceStatus.of(result.shop, cases.shops.timezone_of(result.shop),
                            changed=result.changed, ignored=result.ignored)


@router.post("/service/disable", response_model=ServiceStatus,
             responses=responses(403, 404, 409, 503),
             summary="Disable the service (idempotent)")
async def disable_service(shop_id: ShopId, svc: Services, cases: Cases, who: Caller
                          ) -> ServiceStatus:
    shop = await cases.shops.disable(who, shop_id, svc.clock())
    return ServiceStatus.of(shop, cases.shops.timezone_of(shop))


@router.get("/callers", response_model=CallerList, responses=responses(403, 404, 503),
            summary="Caller numbers of a shop (main first)")
async def list_callers(shop_id: ShopId, cases: Cases, who: Caller) -> CallerList:
    return CallerList(callers=[CallerOut.of(c) for c in await cases.callers.list(who, shop_id)])


@router.post("/callers", response_model=CallerOut, status_code=201,
             responses=responses(403, 404, 409, 503),
             summary="Add a sub-account's phone as a caller number (main account only)")
async def add_caller(shop_id: ShopId, body: AddCallerRequest, svc: Services, cases: Cases,
                     who: Caller) -> CallerOut:
    number = normalize_mobile(body.number, cases.region)  # 422 before any write
    view = await cases.callers.add(who, shop_id, number, now=svc.clock(),
                                   account_id=body.account_id)
    return CallerOut.of(view)


@router.delete("/callers/{number}", response_model=CallerOut,
               responses=responses(403, 404, 409, 503),
               summary="Remove a caller number (the main number cannot be removed)")
async def remove_caller(shop_id: ShopId, number: NumberPath, svc: Services, cases: Cases,
                        who: Caller) -> CallerOut:
    e164 = normalize(number, cases.region)
    return CallerOut.of(await cases.callers.remove(who, shop_id, e164, svc.clock()))


@router.post("/callers/batch", response_model=BatchResult,
             responses=responses(403, 404, 409, 503),
             summary="Batch-enable reviewed sub-account mobiles; a result per row")
async def batch_callers(shop_id: ShopId, body: BatchRequest, svc: Services, cases: Cases,
                        who: Caller) -> BatchResult:
    rows = [BatchRow(line=i, number=r.number, account_id=r.account_id)
            for i, r in enumerate(body.rows, start=1)]
    report = await cases.callers.batch_add(who, shop_id, rows, svc.clock())
    return BatchResult(added=report.added, refused=report.refused, rows=[
        BatchRowOut(line=r.line, outcome=r.outcome.value, message=r.outcome.text,
                    number=r.number, account_id=r.account_id)
        for r in report.rows
    ])

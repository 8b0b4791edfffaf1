"""Service enablement and caller numbers (主叫号码) of a shop."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.auth import Caller, Services, in_shop, main_only
from api.problems import responses
from api.schemas import (
    ID_PATTERN,
    AddCallerRequest,
    BatchRequest,
    BatchResult,
    BatchRowOut,
    CallerList,
    CallerOut,
    EnableRequest,
    ServiceStatus,
)
from routing.api_ports import Principal
from routing.errors import InvalidInput, PermissionDenied, ServiceNotEnabled
from routing.model import AccountRole
from routing.numbers import normalize, normalize_mobile
from routing.shop_views import BatchRow, check_id

router = APIRouter(prefix="/v1/shops/{shop_id}", tags=["shops"])
ShopId = Annotated[str, Path(min_length=1, max_length=64, pattern=ID_PATTERN,
                                       description="The shop id.")]
NumberPath = Annotated[str, Path(min_length=1, max_length=32, description="A caller number.")]


async def _actor_for(svc: Services, who: Principal, shop_id: str) -> str:
    """Who a caller-number change is recorded as: the main account (the platform admin acts
    on its behalf, as only the main account configures caller numbers)."""
    if not who.is_admin:
        assert who.account_id is not None
        return who.account_id
    shop = await svc.shops.get(shop_id)
    if shop.main_account_id is None:
        raise ServiceNotEnabled(f"shop {shop_id} has not enabled the privacy-number service")
    return shop.main_account_id


@router.get("/service", response_model=ServiceStatus, responses=responses(403, 404),
            summary="Service status of a shop")
async def service_status(shop_id: ShopId, svc: Services, who: Caller) -> ServiceStatus:
    shop_id = check_id("shop", shop_id)
    in_shop(who, shop_id)
    return ServiceStatus.of(await svc.shops.get(shop_id))


@router.post("/service/enable", response_model=ServiceStatus,
             responses=responses(403, 404, 409, 503),
             summary="Enable the privacy-number service (idempotent)")
async def enable(shop_id: ShopId, body: EnableRequest, svc: Services, who: Caller
                 ) -> ServiceStatus:
    shop_id = check_id("shop", shop_id)
    in_shop(who, shop_id)
    if who.is_admin:
        if body.main_account_id is None:
            raise InvalidInput("the platform admin must give main_account_id")
        main_id = body.main_account_id
    else:
        if who.role is AccountRole.SUB:
            raise PermissionDenied("only the shop's main account may enable the service")
        if body.main_account_id not in (None, who.account_id):
            raise PermissionDenied("main_account_id must be the token's own account")
        assert who.account_id is not None
        main_id = who.account_id
    result = await svc.shops.enable(shop_id, now=svc.clock(), main_account_id=main_id,
                                    main_phone=body.main_phone,
                                    agreement_version=body.agreement_version)
    return ServiceStatus.of(result.shop, changed=result.changed)


@router.post("/service/disable", response_model=ServiceStatus,
             responses=responses(403, 404, 409, 503),
             summary="Disable the service (idempotent)")
async def disable(shop_id: ShopId, svc: Services, who: Caller) -> ServiceStatus:
    shop_id = check_id("shop", shop_id)
    main_only(who, shop_id, "disable the service")
    return ServiceStatus.of(await svc.shops.disable(shop_id, actor=who.actor, now=svc.clock()))


@router.get("/callers", response_model=CallerList, responses=responses(403, 404, 503),
            summary="Caller numbers of a shop (main first)")
async def list_callers(shop_id: ShopId, svc: Services, who: Caller) -> CallerList:
    shop_id = check_id("shop", shop_id)
    in_shop(who, shop_id)
    await svc.shops.get(shop_id)  # 404 for an unknown shop
    return CallerList(callers=[CallerOut.of(c) for c in await svc.callers.list_callers(shop_id)])


@router.post("/callers", response_model=CallerOut, status_code=201,
             responses=responses(403, 404, 409, 503),
             summary="Add a sub-account's phone as a caller number (main account only)")
async def add_caller(shop_id: ShopId, body: AddCallerRequest, svc: Services, who: Caller
                     ) -> CallerOut:
    shop_id = check_id("shop", shop_id)
    main_only(who, shop_id, "change caller numbers")
    account_id = check_id("account", body.account_id) if body.account_id else None
    number = normalize_mobile(body.number, svc.default_region)  # 422 before any write
    actor = await _actor_for(svc, who, shop_id)
    view = await svc.callers.add(shop_id, number, actor=actor, now=svc.clock(),
                                 account_id=account_id)
    return CallerOut.of(view)


@router.delete("/callers/{number}", response_model=CallerOut,
               responses=responses(403, 404, 409, 503),
               summary="Remove a caller number (the main number cannot be removed)")
async def remove_caller(shop_id: ShopId, number: NumberPath, svc: Services, who: Caller
                        ) -> CallerOut:
    shop_id = check_id("shop", shop_id)
    main_only(who, shop_id, "change caller numbers")
    e164 = normalize(number, svc.default_region)
    actor = await _actor_for(svc, who, shop_id)
    return CallerOut.of(await svc.callers.remove(shop_id, e164, actor=actor, now=svc.clock()))


@router.post("/callers/batch", response_model=BatchResult,
             responses=responses(403, 404, 409, 503),
             summary="Batch-enable reviewed sub-account mobiles; a result per row")
async def batch_callers(shop_id: ShopId, body: BatchRequest, svc: Services, who: Caller
                        ) -> BatchResult:
    shop_id = check_id("shop", shop_id)
    main_only(who, shop_id, "change caller numbers")
    actor = await _actor_for(svc, who, shop_id)
    rows = [BatchRow(line=i, number=r.number, account_id=r.account_id)
            for i, r in enumerate(body.rows, start=1)]
    report = await svc.callers.batch_add(shop_id, rows, actor=actor, now=svc.clock())
    return BatchResult(added=report.added, refused=report.refused, rows=[
        BatchRowOut(line=r.line, outcome=r.outcome.value, message=r.outcome.text,
                    number=r.number, account_id=r.account_id)
        for r in report.rows
    ])

"""The little eye (reveal), confirm-dial caller switch, release and click-to-call."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from api.auth import Caller, Cases, Services, services_of
from api.binding_schemas import (
    BindingOut,
    ClickToCallResponse,
    RevealRequest,
    RevealResponse,
    SwitchCallerRequest,
    SwitchCallerResponse,
)
from api.platform_schemas import OrderOut, PutOrderRequest
from api.problems import responses
from api.schemas import ID_PATTERN
from api.services import ApiServices
from routing.api_ports import Principal
from routing.errors import InvalidInput
from routing.numbers import normalize_mobile
from routing.usecases import reveal as reveal_case

router = APIRouter(tags=["reveal and bindings"])
OrderId = Annotated[str, Path(min_length=1, max_length=64, pattern=ID_PATTERN,
                                        description="The platform order id.",
                                        examples=["o-1001"])]
BindingId = Annotated[str, Path(min_length=1, max_length=64, description="A binding id.",
                                 examples=["b_8f2c1d"])]


@router.put("/v1/orders/{order_id}", response_model=OrderOut,
            responses={**responses(403, 404, 503),
                       201: {"model": OrderOut, "description": "Registered (new order)"}},
            summary="Register or update an order (platform credential only); the buyer "
                    "number is encrypted at once and never returned")
async def put_order(order_id: OrderId, body: PutOrderRequest, svc: Services, cases: Cases,
                    who: Caller) -> JSONResponse:
    written = await cases.orders.register(
        who, shop_id=body.shop_id, order_id=order_id, buyer_number=body.buyer_number,
        buyer_id=body.buyer_id, ordered_at=body.ordered_at, status=body.status.value,
        now=svc.clock())
    out = OrderOut.of(written.order, created=written.created)
    return JSONResponse(out.model_dump(mode="json"), status_code=201 if written.created else 200)


@router.get("/v1/orders/{order_id}", response_model=OrderOut,
            responses=responses(403, 404, 503),
            summary="A registered order (never its buyer number)")
async def get_order(order_id: OrderId, cases: Cases, who: Caller,
                    shop_id: Annotated[str | None, Query(
                        min_length=1, max_length=64, pattern=ID_PATTERN,
                        description="The order's shop (default: the token's shop).")] = None
                    ) -> OrderOut:
    shop = shop_id or who.shop_id
    if shop is None:
        raise InvalidInput("give shop_id: this token belongs to no single shop")
    return OrderOut.of(await cases.orders.get(who, shop, order_id))


@router.post("/v1/orders/{order_id}/reveal", response_model=RevealResponse,
             responses=responses(403, 404, 409, 429, 503),
             summary="The little eye: plaintext or privacy number, decided by the risk policy")
async def reveal(order_id: OrderId, http: Request, who: Caller,
                 body: Annotated[RevealRequest | None, Body()] = None) -> Response:
    # not ``Services``/``Cases``: two dependencies fewer to resolve
    return await reveal_response(services_of(http), who, order_id, body)


async def reveal_response(svc: ApiServices, who: Principal, order_id: str,
                          body: RevealRequest | None) -> Response:
    """The reveal's answer (also sent by ``api.reveal_route``, its lean path)."""
    body = body or RevealRequest()
    request = reveal_case.RevealRequest(order_id=order_id, buyer_number=body.buyer_number,
                                        buyer_id=body.buyer_id,
                                        order_created_at=body.order_created_at)
    out = RevealResponse.of(await svc.use_cases.reveal.reveal(who, request, svc.clock()))
    # The bytes FastAPI sends for the response model, without validating our own model again
    return Response(out.model_dump_json(by_alias=True).encode(), media_type="application/json")


@router.get("/v1/bindings/{binding_id}", response_model=BindingOut,
            responses=responses(403, 404, 503), summary="One binding")
async def get_binding(binding_id: BindingId, svc: Services, cases: Cases, who: Caller
                      ) -> BindingOut:
    return BindingOut.of(await cases.bindings.get(who, binding_id, svc.clock()))


@router.post("/v1/bindings/{binding_id}/caller", response_model=SwitchCallerResponse,
             responses=responses(403, 404, 409, 503),
             summary="Confirm dial: switch the caller number A (to another approved number)")
async def switch_caller(binding_id: BindingId, body: SwitchCallerRequest, svc: Services,
                        cases: Cases, who: Caller) -> SwitchCallerResponse:
    new_caller = normalize_mobile(body.caller_number, cases.region)
    switch = await cases.bindings.switch_caller(who, binding_id, new_caller, svc.clock())
    return SwitchCallerResponse.of(switch)


@router.post("/v1/bindings/{binding_id}/release", response_model=BindingOut,
             responses=responses(403, 404, 409, 503),
             summary="Release a binding early (idempotent)")
async def release_binding(binding_id: BindingId, svc: Services, cases: Cases, who: Caller
                  ) -> BindingOut:
    return BindingOut.of(await cases.bindings.release(who, binding_id, svc.clock()))


@router.post("/v1/bindings/{binding_id}/call", response_model=ClickToCallResponse,
             status_code=202, responses=responses(403, 404, 409, 503),
             summary="Click-to-call: ring A, then route A → X → B through the dialplan")
async def click_to_call(binding_id: BindingId, svc: Services, cases: Cases, who: Caller
                        ) -> JSONResponse:
    call = await cases.bindings.click_to_call(who, binding_id, svc.clock())
    return JSONResponse(ClickToCallResponse.of(call).model_dump(mode="json"), status_code=202)

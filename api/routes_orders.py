"""The little eye (reveal), confirm-dial caller switch, release and click-to-call."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from api import reveal as reveal_flow
from api.auth import Caller, Services, owned
from api.problems import responses
from api.schemas import (
    ID_PATTERN,
    BindingOut,
    ClickToCallResponse,
    RevealRequest,
    RevealResponse,
    SwitchCallerRequest,
    SwitchCallerResponse,
)
from api.services import ApiServices
from routing.api_ports import Principal
from routing.binding_views import BindingView
from routing.errors import BindingNotActive, ClickToCallUnavailable, NotFound
from routing.model import CallerStatus
from routing.numbers import normalize_mobile

router = APIRouter(tags=["reveal and bindings"])
OrderId = Annotated[str, Path(min_length=1, max_length=64, pattern=ID_PATTERN,
                                        description="The platform order id.")]
BindingId = Annotated[str, Path(min_length=1, max_length=64, description="A binding id.")]


@router.post("/v1/orders/{order_id}/reveal", response_model=RevealResponse,
             responses=responses(403, 404, 409, 429, 503),
             summary="The little eye: plaintext or privacy number, decided by the risk policy")
async def reveal(order_id: OrderId, body: RevealRequest, svc: Services, who: Caller
                 ) -> RevealResponse:
    return await reveal_flow.reveal(svc, who, order_id, body, svc.clock())


async def _binding(svc: ApiServices, who: Principal, binding_id: str) -> BindingView:
    if not binding_id.isalnum():
        raise NotFound("binding not found")
    view = await svc.bindings.get(binding_id, svc.clock())
    owned(who, view.shop_id, "binding")
    return view


def _require_active(view: BindingView, svc: ApiServices) -> None:
    if not view.is_active(svc.clock()):
        raise BindingNotActive(
            f"binding {view.binding_id} is {view.state.value}: reveal the order again")


@router.get("/v1/bindings/{binding_id}", response_model=BindingOut,
            responses=responses(403, 404, 503), summary="One binding")
async def get_binding(binding_id: BindingId, svc: Services, who: Caller) -> BindingOut:
    return BindingOut.of(await _binding(svc, who, binding_id))


@router.post("/v1/bindings/{binding_id}/caller", response_model=SwitchCallerResponse,
             responses=responses(403, 404, 409, 503),
             summary="Confirm dial: switch the caller number A (to another approved number)")
async def switch_caller(binding_id: BindingId, body: SwitchCallerRequest, svc: Services,
                        who: Caller) -> SwitchCallerResponse:
    new_caller = normalize_mobile(body.caller_number, svc.default_region)
    view = await _binding(svc, who, binding_id)
    _require_active(view, svc)
    switched = await svc.bindings.switch_caller(view.binding_id, new_caller, actor=who.actor,
                                                now=svc.clock())
    callers = await svc.callers.list_callers(view.shop_id)
    others = [c.number for c in callers if c.status is CallerStatus.APPROVED
              and c.number != switched.binding.caller_a]
    return SwitchCallerResponse(binding=BindingOut.of(switched.binding),
                                previous_binding_id=switched.previous.binding_id,
                                virtual_number_changed=switched.x_changed, other_callers=others)


@router.post("/v1/bindings/{binding_id}/release", response_model=BindingOut,
             responses=responses(403, 404, 409, 503),
             summary="Release a binding early (idempotent)")
async def release(binding_id: BindingId, svc: Services, who: Caller) -> BindingOut:
    view = await _binding(svc, who, binding_id)
    return BindingOut.of(await svc.bindings.release(view.binding_id, actor=who.actor,
                                                    now=svc.clock()))


@router.post("/v1/bindings/{binding_id}/call", response_model=ClickToCallResponse,
             status_code=202, responses=responses(403, 404, 409, 503),
             summary="Click-to-call: ring A, then route A → X → B through the dialplan")
async def click_to_call(binding_id: BindingId, svc: Services, who: Caller) -> JSONResponse:
    view = await _binding(svc, who, binding_id)
    _require_active(view, svc)
    if svc.originator is None:
        raise ClickToCallUnavailable("click-to-call needs the AMI connection (ami.enabled)")
    reference = await svc.originator.click_to_call(
        caller_a=view.caller_a, virtual_x=view.virtual_x, binding_id=view.binding_id,
        timeout_seconds=svc.click_to_call_ring_seconds)
    body = ClickToCallResponse(status="ringing", reference=reference,
                               caller_number=view.caller_a, virtual_number=view.virtual_x)
    return JSONResponse(body.model_dump(mode="json"), status_code=202)

"""Webhook subscriptions (the platform credential only): add, list, get, remove, delivery
history, replay. See docs/api.md#webhooks for the events and the signature."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from api.auth import Caller, Cases, Services
from api.problems import responses
from api.webhook_schemas import (
    AddWebhookRequest,
    DeliveryList,
    DeliveryOut,
    NewWebhookOut,
    ReplayRequest,
    ReplayResult,
    State,
    WebhookList,
    WebhookOut,
)
from routing.webhooks import DeliveryState

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
WebhookId = Annotated[str, Path(min_length=1, max_length=24, pattern=r"^[A-Za-z0-9_]+$",
                                description="A subscription id (wh_...).",
                                examples=["wh_3k9x2m"])]


@router.post("", response_model=NewWebhookOut, status_code=201,
             responses=responses(403, 404, 503),
             summary="Subscribe a receiver to events (the secret is shown once)")
async def add_webhook(body: AddWebhookRequest, svc: Services, cases: Cases, who: Caller
                      ) -> JSONResponse:
    new = await cases.webhooks.add(
        who, url=body.url, now=svc.clock(), events=body.events, shop_id=body.shop_id,
        secret=body.secret, batch_size=body.batch_size, description=body.description)
    out = NewWebhookOut(**WebhookOut.of(new.subscription).model_dump(), secret=new.secret)
    return JSONResponse(out.model_dump(mode="json"), status_code=201)


@router.get("", response_model=WebhookList, responses=responses(403, 503),
            summary="Webhook subscriptions")
async def list_webhooks(cases: Cases, who: Caller,
                        removed: Annotated[bool, Query(description="Include removed ones.")]
                        = False) -> WebhookList:
    subs = await cases.webhooks.list(who, include_removed=removed)
    return WebhookList(webhooks=[WebhookOut.of(s) for s in subs])


@router.get("/{webhook_id}", response_model=WebhookOut, responses=responses(403, 404, 503),
            summary="One webhook subscription")
async def get_webhook(webhook_id: WebhookId, cases: Cases, who: Caller) -> WebhookOut:
    return WebhookOut.of(await cases.webhooks.get(who, webhook_id))


@router.delete("/{webhook_id}", response_model=WebhookOut,
               responses=responses(403, 404, 503),
               summary="Remove a subscription (idempotent; nothing more is sent to it)")
async def remove_webhook(webhook_id: WebhookId, svc: Services, cases: Cases, who: Caller
                         ) -> WebhookOut:
    return WebhookOut.of(await cases.webhooks.remove(who, webhook_id, svc.clock()))


@router.get("/{webhook_id}/deliveries", response_model=DeliveryList,
            responses=responses(403, 404, 503),
            summary="A subscription's deliveries, newest first")
async def list_deliveries(webhook_id: WebhookId, cases: Cases, who: Caller,
                     state: State | None = None,
                     limit: Annotated[int, Query(ge=1, le=500)] = 100) -> DeliveryList:
    found = await cases.webhooks.deliveries(
        who, subscription_id=webhook_id, limit=limit,
        state=DeliveryState(state) if state is not None else None)
    return DeliveryList(deliveries=[DeliveryOut.of(d) for d in found])


@router.post("/{webhook_id}/replay", response_model=ReplayResult,
             responses=responses(403, 404, 503),
             summary="Send deliveries again (default: the dead letters), same event ids")
async def replay_deliveries(webhook_id: WebhookId, body: ReplayRequest, svc: Services, cases: Cases,
                 who: Caller) -> ReplayResult:
    count = await cases.webhooks.replay(
        who, webhook_id, svc.clock(), states=[DeliveryState(s) for s in body.states],
        event_id=body.event_id, since=body.since)
    return ReplayResult(replayed=count)

"""Request and response bodies of the webhook subscription endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.schemas import ID_PATTERN, examples
from routing.events import EventType
from routing.webhooks import MAX_BATCH, MAX_URL, DeliveryView, Subscription

EVENT_TYPES = ", ".join(t.value for t in EventType)
State = Literal["pending", "delivered", "dead"]

# Examples (the OpenAPI document shows them; a test wants one on every operation).
_WEBHOOK = {"id": "wh_3k9x2m", "url": "https://platform.example.com/privnum/events",
            "events": ["call.*", "binding.created"], "shop_id": None, "batch_size": 1,
            "description": "call events to the order service",
            "created_at": "2026-11-28T06:00:00Z", "removed_at": None, "paused_until": None}
_DELIVERY = {"id": 7, "event_id": "0b9f6c1e-2d4a-4f8e-9c3b-5a7d1e2f3a4b",
             "event_type": "call.ended", "stream": "call:pbx-1700000000.1", "state": "dead",
             "attempts": 7, "next_attempt_at": None, "last_status": 500,
             "last_error": "HTTP 500", "created_at": "2026-11-28T06:00:00Z",
             "delivered_at": None}



class StrictBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AddWebhookRequest(StrictBody):
    model_config = examples({"url": "https://platform.example.com/privnum/events",
                                "events": ["call.*", "binding.created"], "batch_size": 1,
                                "description": "call events to the order service"})

    url: str = Field(min_length=8, max_length=MAX_URL, pattern=r"^[hH][tT][tT][pP][sS]?://",
                     description="http(s) URL of the receiver; its host must resolve.")
    events: list[str] = Field(
        default_factory=lambda: ["*"], min_length=1, max_length=20,
        description=f"Event types ({EVENT_TYPES}), families such as `call.*`, or `*`.")
    shop_id: str | None = Field(default=None, min_length=1, max_length=64, pattern=ID_PATTERN,
                                description="Only this shop's events (default: every shop's).")
    secret: str | None = Field(default=None, min_length=16, max_length=128,
                               description="HMAC secret (default: generated, shown once).")
    batch_size: int = Field(default=1, ge=1, le=MAX_BATCH,
                            description="Events per request (1-50).")
    description: str = Field(default="", max_length=200)


class WebhookOut(BaseModel):
    model_config = examples(_WEBHOOK)

    id: str
    url: str
    events: list[str]
    shop_id: str | None
    batch_size: int
    description: str
    created_at: datetime
    removed_at: datetime | None
    paused_until: datetime | None = Field(
        description="After a failed request, the subscription waits until then.")

    @classmethod
    def of(cls, sub: Subscription) -> WebhookOut:
        return cls(id=sub.id, url=sub.url, events=list(sub.events.patterns),
                   shop_id=sub.shop_id, batch_size=sub.batch_size,
                   description=sub.description, created_at=sub.created_at,
                   removed_at=sub.removed_at, paused_until=sub.paused_until)


class NewWebhookOut(WebhookOut):
    model_config = examples({**_WEBHOOK, "secret": "whsec_7Qm2xV9pL4rT8nB1cZ6yK3"})

    secret: str = Field(description="The HMAC secret: shown only now.")


class WebhookList(BaseModel):
    model_config = examples({"webhooks": [_WEBHOOK]})

    webhooks: list[WebhookOut]


class DeliveryOut(BaseModel):
    model_config = examples(_DELIVERY)

    id: int
    event_id: str
    event_type: str
    stream: str
    state: State
    attempts: int
    next_attempt_at: datetime | None
    last_status: int | None
    last_error: str
    created_at: datetime
    delivered_at: datetime | None

    @classmethod
    def of(cls, d: DeliveryView) -> DeliveryOut:
        return cls(id=d.id, event_id=d.event_id, event_type=d.event_type, stream=d.stream,
                   state=d.state.value, attempts=d.attempts, next_attempt_at=d.next_attempt_at,
                   last_status=d.last_status, last_error=d.last_error,
                   created_at=d.created_at, delivered_at=d.delivered_at)


class DeliveryList(BaseModel):
    model_config = examples({"deliveries": [_DELIVERY]})

    deliveries: list[DeliveryOut]


def _dead() -> list[State]:
    return ["dead"]


class ReplayRequest(StrictBody):
    model_config = examples({"states": ["dead"], "since": "2026-11-27T00:00:00Z"})

    states: list[State] = Field(default_factory=_dead, min_length=1, max_length=3,
                                description="Which deliveries to send again.")
    event_id: str | None = Field(default=None, min_length=1, max_length=36,
                                 description="Only this event.")
    since: AwareDatetime | None = Field(default=None,
                                        description="Only deliveries created since then.")


class ReplayResult(BaseModel):
    model_config = examples({"replayed": 3})

    replayed: int

"""Orders as the platform registers them: the shop, the buyer (number and id), when the order
was placed and its status. A reveal names only the order id; the buyer number and the order
time come from here, never from a shop's request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from routing.errors import InvalidInput

ORDER_TIME_SKEW = timedelta(minutes=5)
"""How far ahead of our clock a registered order time may be (the platform's clock is not
ours); anything later is refused as "in the future"."""


class OrderStatus(StrEnum):
    PLACED = "placed"
    PAID = "paid"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


def check_order_time(ordered_at: datetime, now: datetime) -> datetime:
    """A tz-aware order time no later than ``now`` (plus :data:`ORDER_TIME_SKEW`)."""
    if ordered_at.tzinfo is None:
        raise InvalidInput("ordered_at needs a time zone (e.g. 2026-11-28T14:00:00+08:00)")
    if ordered_at > now + ORDER_TIME_SKEW:
        raise InvalidInput("ordered_at is in the future: an order time must not be later than "
                           "now")
    return ordered_at


def check_status(value: str) -> OrderStatus:
    try:
        return OrderStatus(value.strip().lower())
    except ValueError:
        raise InvalidInput(f"invalid order status {value[:32]!r}: use one of "
                           f"{', '.join(s.value for s in OrderStatus)}") from None


@dataclass(frozen=True)
class OrderView:
    """A registered order. ``buyer_number`` is the decrypted E.164 number, for the reveal only:
    front doors never show it (``buyer_masked`` is what they may)."""

    shop_id: str
    order_id: str
    buyer_id: str
    buyer_masked: str
    ordered_at: datetime
    status: OrderStatus
    created_at: datetime
    updated_at: datetime
    buyer_number: str = field(repr=False, default="")


@dataclass(frozen=True)
class OrderWrite:
    """The result of registering an order: the order and whether it was new."""

    order: OrderView
    created: bool

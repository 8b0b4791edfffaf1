"""The route decision: pure, synchronous, time passed in."""

from __future__ import annotations

from datetime import datetime

from routing.model import (
    Action,
    CallContext,
    CallerStatus,
    CallRequest,
    Direction,
    RouteBinding,
    RouteDecision,
    ServiceState,
)
from routing.reasons import Reason


def decide(request: CallRequest, context: CallContext, now: datetime, max_seconds: int
           ) -> RouteDecision:
    """Bridge only when an active (A, X) or (B, X) binding exists and everything checks out.

    Merchant matches win over callback matches: a number that is both an approved caller and
    a buyer of the same X (a shop buying from itself) reaches the buyer, as the merchant meant.
    """
    if request.caller is None:
        return RouteDecision.reject(Reason.NO_CALLER_ID, request.dialed or "")
    if request.dialed is None or not context.x_in_pool:
        return RouteDecision.reject(Reason.NOT_PRIVACY_NUMBER, request.dialed or "")
    ours = [b for b in context.bindings if b.virtual_x == request.dialed]
    active = sorted(
        (b for b in ours if b.is_active(now)),
        key=lambda b: (b.matched_as is not Direction.MERCHANT, -b.expires_at.timestamp()),
    )
    if active:
        return _bridge_or_refuse(active[0], max_seconds)
    if ours:
        return RouteDecision.reject(Reason.BINDING_EXPIRED, request.dialed, ours[0])
    return RouteDecision.reject(Reason.CALLER_NOT_AUTHORIZED, request.dialed)


def _bridge_or_refuse(binding: RouteBinding, max_seconds: int) -> RouteDecision:
    if binding.shop_service is not ServiceState.ENABLED:
        return RouteDecision.reject(Reason.SERVICE_DISABLED, binding.virtual_x, binding)
    if binding.caller_status is not CallerStatus.APPROVED:
        # Also on callback: a revoked caller number may now belong to someone else.
        return RouteDecision.reject(Reason.CALLER_DISABLED, binding.virtual_x, binding)
    dial = binding.buyer_b if binding.matched_as is Direction.MERCHANT else binding.caller_a
    return RouteDecision(
        action=Action.BRIDGE,
        reason=Reason.BRIDGED,
        direction=binding.matched_as,
        dial_number=dial,
        present_number=binding.virtual_x,
        max_seconds=max_seconds,
        binding_id=binding.binding_id,
        shop_id=binding.shop_id,
        order_id=binding.order_id,
        virtual_x=binding.virtual_x,
    )

"""The route decision: pure, synchronous, time passed in."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from routing.call_rules import NO_RULES, CallMark, CallRules, after_expiry, refusal, warning
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


def decide(request: CallRequest, context: CallContext, now: datetime, max_seconds: int,
           rules: Mapping[str, CallRules] | None = None) -> RouteDecision:
    """Bridge only when an active (A, X) or (B, X) binding exists and everything checks out.

    Merchant matches win over callback matches: a number that is both an approved caller and
    a buyer of the same X (a shop buying from itself) reaches the buyer, as the merchant meant.
    A disabled shop refuses every call; a caller number that is no longer approved places no
    call, and a callback on its binding goes to the shop's main caller number instead
    (:func:`callback_target`). ``rules`` are the call rules of the bindings' shops
    (``routing.call_rules``; a shop without an entry has none).
    """
    if request.caller is None:
        return RouteDecision.reject(Reason.NO_CALLER_ID, request.dialed or "")
    if request.dialed is None or not context.x_in_pool:
        return RouteDecision.reject(Reason.NOT_PRIVACY_NUMBER, request.dialed or "")
    ours = [b for b in context.bindings if b.virtual_x == request.dialed]
    active = [b for b in ours if b.is_active(now)]
    if len(active) > 1:  # ranked only when there is a choice (the usual call has one)
        active.sort(key=lambda b: (b.matched_as is not Direction.MERCHANT,
                                   -b.expires_at.timestamp()))
    if active:
        return _bridge_or_refuse(active[0], max_seconds, _rules_of(rules, active[0]), now)
    if ours:
        return _after_expiry(ours[0], max_seconds, _rules_of(rules, ours[0]), now)
    return RouteDecision.reject(Reason.CALLER_NOT_AUTHORIZED, request.dialed)


def callback_target(binding: RouteBinding) -> str | None:
    """Whom a buyer's callback reaches: the binding's caller number A while it is an approved
    caller of the shop; once A is disabled or removed (the number may now belong to someone
    else), the shop's main caller number, so the buyer still reaches the shop within the
    binding's validity; ``None`` (refuse) if the main number is unknown."""
    if binding.caller_status is CallerStatus.APPROVED:
        return binding.caller_a
    return binding.main_caller or None


def _rules_of(rules: Mapping[str, CallRules] | None, binding: RouteBinding) -> CallRules:
    return NO_RULES if rules is None else rules.get(binding.shop_id, NO_RULES)


def _after_expiry(binding: RouteBinding, max_seconds: int, rules: CallRules, now: datetime
                  ) -> RouteDecision:
    mark = after_expiry(rules, binding, now)
    if mark is None or binding.shop_service is not ServiceState.ENABLED:
        return RouteDecision.reject(Reason.BINDING_EXPIRED, binding.virtual_x, binding)
    refused = refusal(rules, Direction.CALLBACK, now)
    if refused is not None:
        return RouteDecision.reject(refused, binding.virtual_x, binding)
    target = (callback_target(binding) if mark is CallMark.GRACE
              else rules.fallback_number or None)
    if target is None:
        return RouteDecision.reject(Reason.BINDING_EXPIRED, binding.virtual_x, binding)
    return _bridge(binding, target, max_seconds, mark, rules)


def _bridge_or_refuse(binding: RouteBinding, max_seconds: int, rules: CallRules,
                      now: datetime) -> RouteDecision:
    if binding.shop_service is not ServiceState.ENABLED:
        return RouteDecision.reject(Reason.SERVICE_DISABLED, binding.virtual_x, binding)
    refused = refusal(rules, binding.matched_as, now, binding.caller_a)
    if refused is not None:
        return RouteDecision.reject(refused, binding.virtual_x, binding)
    if binding.matched_as is Direction.MERCHANT:
        if binding.caller_status is not CallerStatus.APPROVED:
            return RouteDecision.reject(Reason.CALLER_DISABLED, binding.virtual_x, binding)
        dial = binding.buyer_b
    else:
        target = callback_target(binding)
        if target is None:
            return RouteDecision.reject(Reason.CALLER_DISABLED, binding.virtual_x, binding)
        dial = target
    return _bridge(binding, dial, max_seconds, CallMark.NONE, rules)


def _bridge(binding: RouteBinding, dial: str, max_seconds: int, mark: CallMark,
            rules: CallRules) -> RouteDecision:
    warn, repeat = warning(rules, max_seconds)
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
        mark=mark.value,
        warning_seconds=warn,
        warning_repeat=repeat,
        record=rules.record,
    )

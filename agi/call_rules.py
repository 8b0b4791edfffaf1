"""The call rules a call is decided under: its shops' rules, with the reporting status of the
caller numbers on the call where a shop requires reporting (read only then)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from routing.call_caps import CallCounter, to_count
from routing.call_rules import NO_RULES, CallRules, CallRulesSource
from routing.model import Action, CallContext, Direction, RouteDecision


async def rules_for_call(source: CallRulesSource, context: CallContext
                         ) -> Mapping[str, CallRules]:
    rules = dict(await source.rules_for(frozenset(b.shop_id for b in context.bindings)))
    for shop_id, shop_rules in rules.items():
        if not shop_rules.require_caller_report:
            continue
        callers = frozenset(b.caller_a for b in context.bindings
                            if b.shop_id == shop_id and b.matched_as is Direction.MERCHANT)
        if callers:
            rules[shop_id] = replace(shop_rules, unreported_callers=await source.unreported(
                shop_id, callers))
    return rules


async def within_caps(counter: CallCounter, decision: RouteDecision, context: CallContext,
                      rules: Mapping[str, CallRules] | None) -> RouteDecision:
    """A bridge counted against its parties' caps (a reject as it is): refused with the first
    broken cap's reason; nothing is counted for a refused call. A counter fault propagates
    (the handler refuses the call with ``routing_error``)."""
    if decision.action is not Action.BRIDGE or rules is None:
        return decision
    caps = rules.get(decision.shop_id, NO_RULES).caps
    binding = next((b for b in context.bindings if b.binding_id == decision.binding_id), None)
    if binding is None or not caps.any:
        return decision
    counted = to_count(caps, caller_a=binding.caller_a, buyer_key=binding.buyer_b,
                       virtual_x=binding.virtual_x)
    broken = await counter.admit(counted)
    if broken is None:
        return decision
    return RouteDecision.reject(broken.reason, binding.virtual_x, binding)

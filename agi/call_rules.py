"""The call rules a call is decided under: its shops' rules, with the reporting status of the
caller numbers on the call where a shop requires reporting (read only then)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from routing.call_rules import CallRules, CallRulesSource
from routing.model import CallContext, Direction


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

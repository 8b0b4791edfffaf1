"""The call rules on the call path (pure units with in-memory stand-ins): the rules are read
for the call's shops, reporting only where required, caps are counted for bridges only, and
any fault reading rules or counting refuses the call with ``routing_error``."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest

from agi.call_rules import rules_for_call, within_caps
from agi.handlers import RouteHandler, RouteOptions
from agi.session import AgiSession
from routing.call_caps import CallCaps, Cap, CapSubject, Counted
from routing.call_rules import CallRules
from routing.errors import StoreUnavailable
from routing.model import (
    Action,
    BindingState,
    CallContext,
    CallerStatus,
    CallRequest,
    Direction,
    RouteBinding,
    RouteDecision,
    ServiceState,
)
from routing.reasons import Reason

NOW = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)
A, B, X = "+8613800000001", "+8613900000001", "+8617000000001"
CAPS = CallRules(caps=CallCaps(caller=Cap(day=1), buyer=Cap(hour=1)))


def bound(matched_as: Direction = Direction.MERCHANT) -> RouteBinding:
    return RouteBinding(
        binding_id="bnd1", shop_id="shop1", order_id="ord1", caller_a=A, virtual_x=X,
        buyer_b=B, expires_at=NOW + timedelta(hours=1), state=BindingState.ACTIVE,
        matched_as=matched_as, shop_service=ServiceState.ENABLED,
        caller_status=CallerStatus.APPROVED)


class Rules:
    def __init__(self, rules: CallRules, unreported: frozenset[str] = frozenset(),
                 fault: Exception | None = None) -> None:
        self.rules, self.unreported_numbers, self.fault = rules, unreported, fault
        self.asked: list[frozenset[str]] = []

    async def rules_for(self, shop_ids: frozenset[str]) -> Mapping[str, CallRules]:
        if self.fault:
            raise self.fault
        return {s: self.rules for s in shop_ids}

    async def unreported(self, shop_id: str, numbers: frozenset[str]) -> frozenset[str]:
        self.asked.append(numbers)
        return numbers & self.unreported_numbers


class Counter:
    def __init__(self, answer: CapSubject | None = None, fault: Exception | None = None
                 ) -> None:
        self.answer, self.fault = answer, fault
        self.calls: list[Sequence[Counted]] = []

    async def admit(self, counted: Sequence[Counted]) -> CapSubject | None:
        self.calls.append(counted)
        if self.fault:
            raise self.fault
        return self.answer


class Lookup:
    async def find_for_call(self, caller: str, x: str, now: datetime) -> CallContext:
        return CallContext(True, (bound(Direction.MERCHANT if caller == A
                                        else Direction.CALLBACK),))


def handler(rules: Rules, counter: Counter | None = None) -> RouteHandler:
    return RouteHandler(Lookup(), None, lambda: NOW, RouteOptions(), rules=rules,
                        counter=counter)


class _Session:
    """The one thing ``_decide`` asks of a call's session: a bounded step."""

    def limit(self, seconds: float) -> AbstractAsyncContextManager[None]:
        return asyncio.timeout(seconds)


SESSION = cast(AgiSession, _Session())


def call(caller: str = A) -> CallRequest:
    return CallRequest(caller=caller, dialed=X, uniqueid="u1", linkedid="l1")


async def test_reporting_is_read_only_where_required() -> None:
    ctx = CallContext(True, (bound(),))
    plain = Rules(CallRules())
    assert (await rules_for_call(plain, ctx))["shop1"].unreported_callers == frozenset()
    assert plain.asked == []
    strict = Rules(CallRules(require_caller_report=True), unreported=frozenset({A}))
    assert (await rules_for_call(strict, ctx))["shop1"].unreported_callers == {A}
    assert strict.asked == [{A}]


@pytest.mark.parametrize(("answer", "reason"), [
    (None, Reason.BRIDGED), (CapSubject.CALLER, Reason.CAP_CALLER),
    (CapSubject.BUYER, Reason.CAP_BUYER), (CapSubject.NUMBER, Reason.CAP_NUMBER)])
async def test_caps_decide_a_bridge(answer: CapSubject | None, reason: Reason) -> None:
    counter = Counter(answer)
    d = await handler(Rules(CAPS), counter)._decide(SESSION, call(), NOW)
    assert d.reason is reason
    assert [(c.subject, c.key) for c in counter.calls[0]] == [
        (CapSubject.CALLER, A), (CapSubject.BUYER, B)]  # X has no cap here
    if answer is not None:
        assert d.action is Action.REJECT and d.dial_number == "" and d.binding_id == "bnd1"


async def test_rejects_and_uncapped_shops_count_nothing() -> None:
    counter = Counter()
    refused = RouteDecision.reject(Reason.CALLER_DISABLED, X, bound())
    ctx = CallContext(True, (bound(),))
    assert await within_caps(counter, refused, ctx, {"shop1": CAPS}) is refused
    d = await handler(Rules(CallRules()), counter)._decide(SESSION, call(), NOW)
    assert d.action is Action.BRIDGE and counter.calls == []


@pytest.mark.parametrize("where", ["rules", "counter"])
async def test_a_fault_refuses_with_routing_error_never_bridges(where: str) -> None:
    fault = StoreUnavailable("down")
    rules = Rules(CAPS, fault=fault if where == "rules" else None)
    counter = Counter(fault=fault if where == "counter" else None)
    d = await handler(rules, counter)._decide(SESSION, call(), NOW)
    assert (d.action, d.reason, d.dial_number) == (Action.REJECT, Reason.ROUTING_ERROR, "")


async def test_callback_counts_the_same_parties() -> None:
    counter = Counter(CapSubject.BUYER)
    d = await handler(Rules(replace(CAPS)), counter)._decide(SESSION, call(B), NOW)
    assert d.reason is Reason.CAP_BUYER and d.direction is Direction.CALLBACK

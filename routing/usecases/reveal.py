"""The little eye: run the risk policy, take quota atomically, then reveal or bind.

Order of effects, so a failure leaves nothing half done: the velocity hit (always counts), the
quota unit (given back if the audit write then fails), the audit event; for a privacy result,
the binding (idempotent per order), then the audit event.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from routing.api_ports import AuditPort, Principal
from routing.audit import AuditKind
from routing.binding_views import BindingView
from routing.call_rules import CallRulesPort
from routing.errors import (
    CallerNotApproved,
    InvalidInput,
    NotFound,
    RevealRateLimited,
    ServiceNotEnabled,
)
from routing.metrics_ports import MetricsSink
from routing.model import CallerStatus
from routing.numbers import mask, normalize
from routing.orders import OrderView
from routing.reasons import Reason
from routing.reveal_ports import (
    QuotaAsk,
    QuotaTake,
    RevealBindings,
    RevealCounters,
    RevealFacts,
    RevealFactsPort,
)
from routing.risk import (
    QuotaPeriod,
    RevealContext,
    RevealKind,
    RiskPolicy,
    RiskRule,
    assess,
    finish,
    velocity_window,
)
from routing.shop_views import CallerView, check_id
from routing.usecases.access import shop_account


@dataclass(frozen=True)
class RevealRequest:
    """A reveal names the order. The buyer and the order time come from the order the
    platform registered; values a client still sends (older clients did) must match it."""

    order_id: str
    buyer_number: str | None = None
    buyer_id: str | None = None
    order_created_at: datetime | None = None


def check_against(request: RevealRequest, order: OrderView, region: str,
                  buyer_number: str | None = None) -> None:
    """Refuse a request whose buyer or order time differs from the registered order: a
    shop's credential never supplies them. ``buyer_number``: the request's, normalized
    already."""
    if request.buyer_number is not None and buyer_number is None:
        buyer_number = normalize(request.buyer_number, region)
    if buyer_number is not None and buyer_number != order.buyer_number:
        raise InvalidInput(f"buyer_number does not match registered order {order.order_id}; "
                           "omit it: the buyer comes from the order the platform registered")
    if request.buyer_id is not None and request.buyer_id.strip() != order.buyer_id:
        raise InvalidInput(f"buyer_id does not match registered order {order.order_id}; "
                           "omit it")
    if request.order_created_at is not None and request.order_created_at != order.ordered_at:
        raise InvalidInput(f"order_created_at does not match registered order "
                           f"{order.order_id}; omit it: the order time comes from the order "
                           "the platform registered")


@dataclass(frozen=True)
class RevealResult:
    """Plaintext (``buyer_number`` and the quota used) or privacy (``binding`` to dial through
    from ``binding.caller_a``; ``other_callers`` may be chosen instead)."""

    order_id: str
    kind: RevealKind
    rule: RiskRule
    rule_detail: str
    quota: QuotaPeriod
    quota_used: int = 0
    buyer_number: str | None = None
    binding: BindingView | None = None
    other_callers: tuple[str, ...] = ()
    # a call rule that refuses A's calls through the binding (e.g. ``caller_unreported``):
    # the binding is issued, its calls are not put through until that changes
    calls_refused: str | None = None


def choose_caller(callers: list[CallerView], account_id: str) -> str:
    """A: the requesting account's own approved number, else the shop's main number."""
    approved = [c for c in callers if c.status is CallerStatus.APPROVED]
    own = [c for c in approved if c.account_id == account_id]
    if own:
        return sorted(own, key=lambda c: (not c.is_main, c.number))[0].number
    main = [c for c in approved if c.is_main]
    if main:
        return main[0].number
    raise CallerNotApproved("the shop has no approved caller number: add one first")


def other_callers(callers: list[CallerView], caller_a: str) -> tuple[str, ...]:
    """The shop's other approved caller numbers (the ones a merchant may switch to)."""
    return tuple(c.number for c in callers
                 if c.status is CallerStatus.APPROVED and c.number != caller_a)


class Reveal:
    def __init__(self, *, facts: RevealFactsPort, bindings: RevealBindings,
                 counters: RevealCounters, audit: AuditPort, metrics: MetricsSink,
                 policy: RiskPolicy, region: str,
                 call_rules: CallRulesPort | None = None) -> None:
        self._facts = facts
        self._call_rules = call_rules
        self._bindings = bindings
        self._counters = counters
        self._audit = audit
        self._metrics = metrics
        self._policy = policy
        self._region = region

    async def reveal(self, who: Principal, request: RevealRequest, now: datetime
                     ) -> RevealResult:
        shop_id, account_id = shop_account(who, "a reveal")
        order_id = check_id("order", request.order_id)
        given = None  # malformed input is refused before any look-up
        if request.buyer_number is not None:
            given = normalize(request.buyer_number, self._region)
        if request.buyer_id is not None:
            check_id("buyer", request.buyer_id)
        facts, order = await self._read(shop_id, order_id, now)
        shop = facts.shop
        check_against(request, order, self._region, given)
        buyer, buyer_id = order.buyer_number, order.buyer_id
        window, window_end = velocity_window(self._policy, now)
        # The verdict within the velocity limit (a count of 0 is never over it) says whether
        # a quota unit is wanted: the counters then hit the velocity and take the unit in one
        # step, the unit only if the new count is within the limit.
        context = RevealContext(
            shop_id=shop.id, account_id=account_id, shop_level=shop.level,
            velocity_count=0, order_created_at=order.ordered_at, timezone=shop.timezone)
        within = assess(self._policy, context, now)
        ask = QuotaAsk(shop.id, within.quota.key, within.quota.limit, within.quota.resets_at,
                       order_id) if within.needs_quota else None
        count, take_now = await self._counters.hit(account_id, window, window_end, now,
                                                   velocity_limit=self._policy.velocity_limit,
                                                   quota=ask)
        assessment = assess(self._policy, replace(context, velocity_count=count), now)
        detail = {"order": order_id, "buyer": mask(buyer), "buyer_id": buyer_id,
                  "account": account_id}
        if assessment.kind is RevealKind.REFUSED:
            decision = finish(assessment, quota_taken=False)
            self._metrics.reveal(decision.kind.value, decision.rule.value)
            await self._audit.append(now=now, actor=who.actor, kind=AuditKind.REVEAL_REFUSED,
                                     shop_id=shop.id, subject=order_id,
                                     detail={**detail, "rule": decision.rule.value})
            retry = max(1, int((window_end - now).total_seconds()) + 1)
            raise RevealRateLimited(f"{decision.detail}; try again in {retry} s", retry)

        taken, used = False, 0
        take = QuotaTake(taken=False, used=0)
        if assessment.needs_quota:
            # One unit per (order, local day): revealing the order again that day is free.
            take = take_now if take_now is not None else await self._counters.take_quota(
                shop.id, assessment.quota.key, assessment.quota.limit,
                assessment.quota.resets_at, now, order_id=order_id)
            taken, used = take.taken, take.used
        decision = finish(assessment, taken)

        if decision.kind is RevealKind.PLAINTEXT:
            try:
                await self._audit.append(now=now, actor=who.actor,
                                         kind=AuditKind.REVEAL_PLAINTEXT, shop_id=shop.id,
                                         subject=order_id,
                                         detail={**detail, "rule": decision.rule.value,
                                                 "quota_day": decision.quota.key,
                                                 "quota_used": used})
            except BaseException:
                if take.first:
                    await self._counters.give_back_quota(shop.id, decision.quota.key,
                                                         order_id=order_id)
                raise
            self._metrics.reveal(decision.kind.value, decision.rule.value)
            return RevealResult(order_id=order_id, kind=decision.kind, rule=decision.rule,
                                rule_detail=decision.detail, quota=decision.quota,
                                quota_used=used, buyer_number=buyer)

        callers = list(facts.callers)
        issued = facts.active
        if issued is None:
            caller_a = choose_caller(callers, account_id)
            try:
                issued = await self._bindings.issue(shop.id, order_id, buyer_id, caller_a, buyer,
                                                    now, actor=who.actor)
            except Exception:
                self._metrics.allocation("failed")
                raise
        self._metrics.allocation("created" if issued.created else "repeat")
        await self._audit.append(now=now, actor=who.actor, kind=AuditKind.REVEAL_PRIVACY,
                                 shop_id=shop.id, subject=order_id,
                                 detail={**detail, "rule": decision.rule.value,
                                         "binding": issued.binding_id})
        self._metrics.reveal(decision.kind.value, decision.rule.value)
        return RevealResult(order_id=order_id, kind=decision.kind, rule=decision.rule,
                            rule_detail=decision.detail, quota=decision.quota,
                            binding=issued, other_callers=other_callers(callers, issued.caller_a),
                            calls_refused=await self._calls_refused(shop.id, issued.caller_a))

    async def _read(self, shop_id: str, order_id: str, now: datetime
                    ) -> tuple[RevealFacts, OrderView]:
        """The shop, the order, the shop's callers and the order's active binding in one
        read (a repeated click finds its binding there; otherwise issue(), which still
        returns an existing binding atomically if one appeared meanwhile). Refused in the
        order the single reads refused: no shop, service off, order not registered."""
        facts = await self._facts.load(shop_id, order_id, now)  # no such shop: NotFound
        if not facts.shop.enabled:
            raise ServiceNotEnabled(f"shop {shop_id} has not enabled the privacy-number "
                                    "service")
        if facts.order is None:
            raise NotFound(f"order {order_id} of shop {shop_id} is not registered")
        return facts, facts.order

    async def _calls_refused(self, shop_id: str, caller_a: str) -> str | None:
        if self._call_rules is None:
            return None
        # the call path's view of the rules (cached a few seconds): one read per shop, not per
        # reveal
        rules = (await self._call_rules.rules_for(frozenset({shop_id})))[shop_id]
        if not rules.require_caller_report:
            return None
        if caller_a in await self._call_rules.unreported_now(shop_id, frozenset({caller_a})):
            return Reason.CALLER_UNREPORTED.value
        return None

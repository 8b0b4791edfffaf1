"""The little eye: run the risk policy, take quota atomically, then reveal or bind.

Order of effects, so a failure leaves nothing half done: the velocity hit (always counts), the
quota unit (given back if the audit write then fails), the audit event; for a privacy result,
the binding (idempotent per order), then the audit event.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime

from api.metrics import Metrics
from api.schemas import QuotaOut, RevealRequest, RevealResponse
from api.services import ApiServices
from routing.api_ports import Principal, RevealRateLimited
from routing.binding_views import IssuedBinding
from routing.errors import CallerNotApproved, PermissionDenied, ServiceNotEnabled
from routing.model import CallerStatus
from routing.numbers import mask, normalize
from routing.risk import RevealContext, RevealKind, assess, finish, velocity_window
from routing.shop_views import CallerView, check_id

REVEAL_PLAINTEXT = "reveal.plaintext"
REVEAL_PRIVACY = "reveal.privacy"
REVEAL_REFUSED = "reveal.refused"


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


async def reveal(svc: ApiServices, who: Principal, order_id: str, body: RevealRequest,
                 now: datetime) -> RevealResponse:
    if who.is_admin or who.account_id is None or who.shop_id is None:
        raise PermissionDenied("a reveal is made by a shop account (use its token)")
    if who.role is None:  # the token's account does not exist: the shop never enabled
        raise ServiceNotEnabled(f"shop {who.shop_id} has not enabled the privacy-number service")
    order_id = check_id("order", order_id)
    buyer_id = check_id("buyer", body.buyer_id)
    buyer = normalize(body.buyer_number, svc.default_region)
    shop = await svc.shops.get(who.shop_id)
    if not shop.enabled:
        raise ServiceNotEnabled(f"shop {shop.id} has not enabled the privacy-number service")
    policy = svc.policy
    window, window_end = velocity_window(policy, now)
    count = await svc.counters.hit_velocity(who.account_id, window, window_end, now)
    assessment = assess(policy, RevealContext(
        shop_id=shop.id, account_id=who.account_id, shop_level=shop.level,
        velocity_count=count, order_created_at=body.order_created_at), now)
    metrics: Metrics = svc.metrics
    detail = {"order": order_id, "buyer": mask(buyer), "buyer_id": buyer_id,
              "account": who.account_id}
    if assessment.kind is RevealKind.REFUSED:
        decision = finish(assessment, quota_taken=False)
        metrics.reveal(decision.kind.value, decision.rule.value)
        await svc.audit.append(now=now, actor=who.actor, kind=REVEAL_REFUSED, shop_id=shop.id,
                               subject=order_id, detail={**detail, "rule": decision.rule.value})
        retry = max(1, int((window_end - now).total_seconds()) + 1)
        raise RevealRateLimited(f"{decision.detail}; try again in {retry} s", retry)

    taken = False
    used = 0
    if assessment.needs_quota:
        take = await svc.counters.take_quota(shop.id, assessment.quota.key,
                                             assessment.quota.limit, assessment.quota.resets_at,
                                             now)
        taken, used = take.taken, take.used
    decision = finish(assessment, taken)

    if decision.kind is RevealKind.PLAINTEXT:
        try:
            await svc.audit.append(now=now, actor=who.actor, kind=REVEAL_PLAINTEXT,
                                   shop_id=shop.id, subject=order_id,
                                   detail={**detail, "rule": decision.rule.value,
                                           "quota_day": decision.quota.key,
                                           "quota_used": used})
        except BaseException:
            await svc.counters.give_back_quota(shop.id, decision.quota.key)
            raise
        metrics.reveal(decision.kind.value, decision.rule.value)
        return RevealResponse(
            order_id=order_id, decision="plaintext", rule=decision.rule.value,
            rule_detail=decision.detail, buyer_number=buyer,
            quota=QuotaOut(used=used, limit=decision.quota.limit,
                           resets_at=decision.quota.resets_at))

    callers = await svc.callers.list_callers(shop.id)
    # A repeated click: the order's active binding, found with one indexed query. Otherwise
    # issue(), which still returns an existing binding atomically if one appeared meanwhile.
    existing = await svc.bindings.active_for_order(shop.id, order_id, now)
    if existing is not None:
        issued = IssuedBinding(**{f.name: getattr(existing, f.name)
                                  for f in fields(existing)}, created=False)
    else:
        caller_a = choose_caller(callers, who.account_id)
        try:
            issued = await svc.bindings.issue(shop.id, order_id, buyer_id, caller_a, buyer,
                                              now, actor=who.actor)
        except Exception:
            metrics.allocation("failed")
            raise
    metrics.allocation("created" if issued.created else "repeat")
    await svc.audit.append(now=now, actor=who.actor, kind=REVEAL_PRIVACY, shop_id=shop.id,
                           subject=order_id, detail={**detail, "rule": decision.rule.value,
                                                     "binding": issued.binding_id})
    metrics.reveal(decision.kind.value, decision.rule.value)
    others = [c.number for c in callers
              if c.status is CallerStatus.APPROVED and c.number != issued.caller_a]
    return RevealResponse(
        order_id=order_id, decision="privacy", rule=decision.rule.value,
        rule_detail=decision.detail, binding_id=issued.binding_id,
        virtual_number=issued.virtual_x, caller_number=issued.caller_a, other_callers=others,
        expires_at=issued.expires_at, created=issued.created)

"""The route decision, one rule per row, and a property over random worlds."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.decide import decide
from routing.model import (
    Action,
    BindingState,
    CallContext,
    CallerStatus,
    CallRequest,
    Direction,
    RouteBinding,
    ServiceState,
)
from routing.reasons import Reason

NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
A, B, X, STRANGER = "+8613800000001", "+8613900000001", "+8617000000001", "+8613700000009"
MAIN = "+8613800000009"  # the shop's main caller number


def binding(matched_as: Direction = Direction.MERCHANT, **changes: object) -> RouteBinding:
    base = RouteBinding(
        binding_id="b1", shop_id="shop1", order_id="o1", caller_a=A, virtual_x=X, buyer_b=B,
        expires_at=NOW + timedelta(hours=1), state=BindingState.ACTIVE, matched_as=matched_as,
        shop_service=ServiceState.ENABLED, caller_status=CallerStatus.APPROVED,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def call(caller: str | None = A, dialed: str | None = X) -> CallRequest:
    return CallRequest(caller=caller, dialed=dialed, uniqueid="u1", linkedid="l1")


def test_merchant_call_bridges_to_buyer_presenting_x() -> None:
    d = decide(call(), CallContext(True, (binding(),)), NOW, 600)
    assert (d.action, d.reason, d.direction) == (Action.BRIDGE, Reason.BRIDGED, Direction.MERCHANT)
    assert d.dial_number == B
    assert d.present_number == X
    assert d.max_seconds == 600
    assert (d.binding_id, d.shop_id, d.order_id) == ("b1", "shop1", "o1")


def test_buyer_callback_bridges_to_merchant_presenting_x() -> None:
    d = decide(call(caller=B), CallContext(True, (binding(Direction.CALLBACK),)), NOW, 600)
    assert (d.action, d.direction, d.dial_number, d.present_number) == (
        Action.BRIDGE, Direction.CALLBACK, A, X)


@pytest.mark.parametrize(
    ("request_", "context", "reason"),
    [
        (call(caller=None), CallContext(True, (binding(),)), Reason.NO_CALLER_ID),
        (call(dialed=None), CallContext(True, ()), Reason.NOT_PRIVACY_NUMBER),
        (call(), CallContext(False, ()), Reason.NOT_PRIVACY_NUMBER),
        (call(caller=STRANGER), CallContext(True, ()), Reason.CALLER_NOT_AUTHORIZED),
        (call(), CallContext(True, (binding(expires_at=NOW),)), Reason.BINDING_EXPIRED),
        (call(), CallContext(True, (binding(state=BindingState.RELEASED),)),
         Reason.BINDING_EXPIRED),
        (call(), CallContext(True, (binding(shop_service=ServiceState.DISABLED),)),
         Reason.SERVICE_DISABLED),
        (call(), CallContext(True, (binding(caller_status=CallerStatus.DISABLED),)),
         Reason.CALLER_DISABLED),
        (call(caller=B), CallContext(True, (binding(Direction.CALLBACK,
                                                    caller_status=CallerStatus.DISABLED),)),
         Reason.CALLER_DISABLED),
        # A binding for another X is no authorisation for this X.
        (call(), CallContext(True, (binding(virtual_x="+8617000000002"),)),
         Reason.CALLER_NOT_AUTHORIZED),
    ],
)
def test_rejects_carry_their_reason_and_never_a_dial_number(
    request_: CallRequest, context: CallContext, reason: Reason
) -> None:
    d = decide(request_, context, NOW, 600)
    assert d.action is Action.REJECT
    assert d.reason is reason
    assert d.dial_number == ""
    assert d.prompt == reason.prompt != ""


M, C = Direction.MERCHANT, Direction.CALLBACK
ON, OFF, NEVER = ServiceState.ENABLED, ServiceState.DISABLED, ServiceState.NOT_ENABLED
BRIDGED, REFUSED_CALLER, REFUSED_SHOP = Reason.BRIDGED, Reason.CALLER_DISABLED, \
    Reason.SERVICE_DISABLED


@pytest.mark.parametrize(
    ("direction", "status", "main", "shop", "reason", "dialled"),
    [
        # merchant calls: only from an approved caller number of an enabled shop
        (M, CallerStatus.APPROVED, MAIN, ON, BRIDGED, B),
        (M, CallerStatus.DISABLED, MAIN, ON, REFUSED_CALLER, ""),  # disabled or removed
        (M, CallerStatus.PENDING, MAIN, ON, REFUSED_CALLER, ""),
        (M, CallerStatus.REJECTED, MAIN, ON, REFUSED_CALLER, ""),
        (M, CallerStatus.APPROVED, MAIN, OFF, REFUSED_SHOP, ""),
        # a buyer's callback reaches A while A may call, else the shop's main number
        (C, CallerStatus.APPROVED, MAIN, ON, BRIDGED, A),
        (C, CallerStatus.DISABLED, MAIN, ON, BRIDGED, MAIN),  # disabled or removed
        (C, CallerStatus.PENDING, MAIN, ON, BRIDGED, MAIN),
        (C, CallerStatus.REJECTED, MAIN, ON, BRIDGED, MAIN),
        (C, CallerStatus.DISABLED, "", ON, REFUSED_CALLER, ""),  # main number unknown
        (C, CallerStatus.DISABLED, MAIN, OFF, REFUSED_SHOP, ""),
        (C, CallerStatus.APPROVED, MAIN, OFF, REFUSED_SHOP, ""),
        (C, CallerStatus.APPROVED, MAIN, NEVER, REFUSED_SHOP, ""),
    ],
)
def test_who_a_call_reaches_when_a_caller_number_or_the_shop_is_switched_off(
    direction: Direction, status: CallerStatus, main: str, shop: ServiceState, reason: Reason,
    dialled: str,
) -> None:
    caller = A if direction is Direction.MERCHANT else B
    bound = binding(direction, caller_status=status, main_caller=main, shop_service=shop)
    d = decide(call(caller=caller), CallContext(True, (bound,)), NOW, 600)
    assert (d.reason, d.dial_number) == (reason, dialled)
    assert d.action is (Action.BRIDGE if reason is Reason.BRIDGED else Action.REJECT)
    assert (d.direction, d.binding_id) == (direction, "b1")  # the call log names the binding
    if d.action is Action.BRIDGE:
        assert d.present_number == X  # whoever answers sees X, never the other party


def test_expiry_is_exact_to_the_second() -> None:
    ctx = CallContext(True, (binding(expires_at=NOW + timedelta(seconds=1)),))
    assert decide(call(), ctx, NOW, 600).action is Action.BRIDGE
    assert decide(call(), ctx, NOW + timedelta(seconds=1), 600).reason is Reason.BINDING_EXPIRED


def test_active_binding_wins_over_an_expired_one() -> None:
    old = binding(binding_id="old", expires_at=NOW - timedelta(hours=1), state=BindingState.EXPIRED)
    d = decide(call(), CallContext(True, (old, binding(binding_id="new"))), NOW, 600)
    assert (d.action, d.binding_id) == (Action.BRIDGE, "new")


def test_reject_for_a_known_binding_names_it_for_the_call_log() -> None:
    d = decide(call(), CallContext(True, (binding(expires_at=NOW),)), NOW, 600)
    assert (d.binding_id, d.shop_id, d.order_id, d.virtual_x) == ("b1", "shop1", "o1", X)


def test_repr_of_a_route_binding_masks_the_buyer() -> None:
    assert "13900000001" not in repr(binding())
    assert "139****0001" in repr(binding())


# --- property: bridged if and only if an active (A, X) or (B, X) binding exists -------------

PHONES = [f"+86138000000{i:02d}" for i in range(6)]
XS = [f"+86170000000{i:02d}" for i in range(3)]

bindings_st = st.lists(
    st.tuples(st.sampled_from(PHONES), st.sampled_from(PHONES), st.sampled_from(XS),
              st.integers(-3600, 3600), st.sampled_from(list(BindingState))),
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(world=bindings_st, caller=st.sampled_from([*PHONES, None]), dialed=st.sampled_from(XS),
       in_pool=st.booleans())
def test_bridged_iff_a_valid_active_pair_exists(
    world: list[tuple[str, str, str, int, BindingState]], caller: str | None, dialed: str,
    in_pool: bool,
) -> None:
    # What a store returns: every binding of any X that matches the caller as A or as B.
    matches = []
    for i, (a, b, x, offset, state) in enumerate(world):
        for who, role in ((a, Direction.MERCHANT), (b, Direction.CALLBACK)):
            if caller == who:
                matches.append(binding(role, binding_id=f"b{i}", caller_a=a, buyer_b=b,
                                       virtual_x=x, expires_at=NOW + timedelta(seconds=offset),
                                       state=state))
    d = decide(call(caller, dialed), CallContext(in_pool, tuple(matches)), NOW, 600)
    valid = [
        (a, b) for a, b, x, offset, state in world
        if x == dialed and state is BindingState.ACTIVE and offset > 0 and caller in (a, b)
    ]
    assert (d.action is Action.BRIDGE) == (bool(valid) and in_pool and caller is not None)
    if d.action is Action.BRIDGE:
        # A merchant match wins over a callback match; among several (only possible in this
        # unconstrained world, the store forbids it) any counterpart of a valid pair is right.
        as_merchant = {b for a, b in valid if a == caller}
        expected = as_merchant or {a for a, b in valid if b == caller}
        assert d.dial_number in expected
        assert d.present_number == dialed

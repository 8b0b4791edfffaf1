"""Calls to an extension number, one rule per row: collect, route, retry, give up, callback."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from routing.extension_calls import CollectPrompts, ExtensionOutcome, route_extension_call
from routing.extensions import Entry
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

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
A, B, B2, X = "+8613800000001", "+8613900000001", "+8613900000002", "+8617000000001"
PROMPTS = CollectPrompts(first="ask", again="wrong", timeout_seconds=4, max_tries=3)


def bnd(ext: str, matched_as: Direction = Direction.MERCHANT, buyer: str = B,
        **changes: object) -> RouteBinding:
    base = RouteBinding(
        binding_id=f"b{ext}", shop_id="s1", order_id=f"o{ext}", caller_a=A, virtual_x=X,
        buyer_b=buyer, expires_at=NOW + timedelta(hours=1), state=BindingState.ACTIVE,
        matched_as=matched_as, shop_service=ServiceState.ENABLED,
        caller_status=CallerStatus.APPROVED, extension=ext)
    return replace(base, **changes)  # type: ignore[arg-type]


def run(caller: str | None, entry: Entry | None, *bindings: RouteBinding) -> ExtensionOutcome:
    request = CallRequest(caller=caller, dialed=X, uniqueid="u1", linkedid="l1")
    return route_extension_call(request, x=X, length=4, entry=entry,
                                context=CallContext(True, bindings), now=NOW, max_seconds=600,
                                prompts=PROMPTS)


def test_merchant_is_asked_for_the_extension() -> None:
    out = run(A, None, bnd("0001"), bnd("0002"))
    assert out.decision is None and out.collect is not None
    assert (out.collect.length, out.collect.prompt, out.collect.timeout_seconds) == (4, "ask", 4)


def test_merchant_with_one_binding_is_asked_too() -> None:
    assert run(A, None, bnd("0001")).collect is not None


@pytest.mark.parametrize("attempt", [1, 2, 3])
def test_right_extension_bridges_to_its_buyer(attempt: int) -> None:
    out = run(A, Entry("0002", attempt), bnd("0002", buyer=B2))
    assert out.decision is not None and out.extension == "0002"
    assert (out.decision.action, out.decision.dial_number, out.decision.binding_id) == (
        Action.BRIDGE, B2, "b0002")


@pytest.mark.parametrize(("entry", "prompt"), [
    (Entry("9999", 1), "wrong"), (Entry("", 1), "ask"), (Entry("12", 2), "wrong"),
])
def test_a_failed_try_before_the_last_asks_again(entry: Entry, prompt: str) -> None:
    out = run(A, entry)  # the look-up found nothing on that extension
    assert out.collect is not None and out.collect.prompt == prompt


@pytest.mark.parametrize(("entry", "reason", "cause"), [
    (Entry("9999", 3), Reason.EXTENSION_INVALID, 28),
    (Entry("", 3), Reason.EXTENSION_TIMEOUT, 102),
])
def test_the_last_try_gives_up(entry: Entry, reason: Reason, cause: int) -> None:
    out = run(A, entry)
    assert out.decision is not None and out.decision.action is Action.REJECT
    assert out.decision.reason is reason and reason.hangup_cause == cause
    assert out.decision.virtual_x == X and reason.prompt


def test_an_expired_extension_says_expired() -> None:
    out = run(A, Entry("0001", 1), bnd("0001", state=BindingState.EXPIRED))
    assert out.decision is not None and out.decision.reason is Reason.BINDING_EXPIRED


def test_buyer_with_one_binding_on_x_goes_straight_to_the_shop() -> None:
    out = run(B, None, bnd("0007", Direction.CALLBACK))
    assert out.decision is not None and out.extension == "0007"
    assert (out.decision.action, out.decision.direction, out.decision.dial_number) == (
        Action.BRIDGE, Direction.CALLBACK, A)


def test_buyer_with_two_bindings_on_x_is_asked() -> None:
    out = run(B, None, bnd("0007", Direction.CALLBACK), bnd("0008", Direction.CALLBACK))
    assert out.collect is not None
    out = run(B, Entry("0008", 1), bnd("0008", Direction.CALLBACK))
    assert out.decision is not None and out.decision.binding_id == "b0008"


def test_buyer_whose_other_binding_ended_goes_straight_to_the_shop() -> None:
    out = run(B, None, bnd("0007", Direction.CALLBACK),
              bnd("0008", Direction.CALLBACK, state=BindingState.RELEASED))
    assert out.decision is not None and out.decision.binding_id == "b0007"


def test_no_caller_id_is_refused_without_asking() -> None:
    out = run(None, None)
    assert out.collect is None and out.decision is not None
    assert out.decision.reason is Reason.NO_CALLER_ID


@pytest.mark.parametrize(("caller", "entry", "bindings", "reason"), [
    # A stranger learns nothing: their extensions are simply wrong.
    ("+8613700000009", Entry("0001", 3), (), Reason.EXTENSION_INVALID),
    (A, Entry("0001", 1), (bnd("0001", state=BindingState.EXPIRED),), Reason.BINDING_EXPIRED),
])
def test_anyone_else_is_asked_then_refused(caller: str, entry: Entry,
                                           bindings: tuple[RouteBinding, ...],
                                           reason: Reason) -> None:
    # Before the extension the store looks the caller up as a buyer only.
    assert run(caller, None).collect is not None
    out = run(caller, entry, *bindings)
    assert out.decision is not None and out.decision.reason is reason
